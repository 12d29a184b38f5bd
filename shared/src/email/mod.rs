//! Email templates, rendered in Rust (moto has no SESv2 templates). Every email
//! has an HTML and a text part; values are HTML-escaped in the HTML part.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::domain::JobId;
use crate::domain::Secret;
use crate::setup_token;

pub use crate::domain::Template;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("email job is missing field {0}")]
    MissingField(&'static str),
}

pub struct RenderContext<'a> {
    pub frontend_url: &'a str,
    pub token_key: &'a Secret,
}

pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Where a member fixes their card: `GET /account/billing` redirects to the
/// provider's page for the signed-in member.
pub fn billing_link(frontend_url: &str) -> String {
    format!("{}/account/billing", frontend_url.trim_end_matches('/'))
}

/// `${FRONTEND_URL}/account/setup#token=…&email=…`: the fragment never reaches
/// server logs or Referer headers.
pub fn setup_link(frontend_url: &str, token: &str, email: &str) -> String {
    format!(
        "{}/account/setup#token={}&email={}",
        frontend_url.trim_end_matches('/'),
        token,
        utf8_percent_encode(email, NON_ALPHANUMERIC)
    )
}

fn field<'a>(
    data: &'a BTreeMap<String, String>,
    name: &'static str,
) -> Result<&'a str, RenderError> {
    data.get(name)
        .map(String::as_str)
        .ok_or(RenderError::MissingField(name))
}

fn page(paragraphs: &[String]) -> String {
    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\">",
    );
    for p in paragraphs {
        html.push_str("<p>");
        html.push_str(p);
        html.push_str("</p>");
    }
    html.push_str("</body></html>");
    html
}

/// Renders a job. `data` holds the values captured when the job was written.
pub fn render(
    template: Template,
    job: &JobId,
    data: &BTreeMap<String, String>,
    ctx: &RenderContext<'_>,
) -> Result<RenderedEmail, RenderError> {
    let name = data
        .get("first_name")
        .map(String::as_str)
        .unwrap_or("there");
    let plan = data
        .get("plan_name")
        .map(String::as_str)
        .unwrap_or("your membership");
    Ok(match template {
        Template::Welcome => {
            let email = field(data, "email")?;
            let token = setup_token::derive(ctx.token_key, job);
            let link = setup_link(ctx.frontend_url, &token, email);
            RenderedEmail {
                subject: format!("Welcome! Set up your password for {plan}"),
                html: page(&[
                    format!("Hi {},", escape_html(name)),
                    format!("Thanks for joining {}. Set your password to activate your account:", escape_html(plan)),
                    format!("<a href=\"{0}\">{0}</a>", escape_html(&link)),
                    "The link works once and expires in 24 hours.".into(),
                ]),
                text: format!(
                    "Hi {name},\n\nThanks for joining {plan}. Set your password to activate your account:\n\n{link}\n\nThe link works once and expires in 24 hours.\n"
                ),
            }
        }
        Template::AdminNewSignup | Template::AdminExistingLinked => {
            let member = field(data, "email")?;
            let partner = data.get("partner").map(String::as_str).unwrap_or("-");
            let what = if template == Template::AdminNewSignup {
                "New signup"
            } else {
                "Existing user linked"
            };
            RenderedEmail {
                subject: format!("{what}: {member} ({plan})"),
                html: page(&[
                    format!("{what}."),
                    format!(
                        "Member: {}<br>Plan: {}<br>Partner: {}",
                        escape_html(member),
                        escape_html(plan),
                        escape_html(partner)
                    ),
                ]),
                text: format!("{what}.\n\nMember: {member}\nPlan: {plan}\nPartner: {partner}\n"),
            }
        }
        Template::CancelNotice => {
            let until = field(data, "access_until")?;
            RenderedEmail {
                subject: format!("Your {plan} subscription was canceled"),
                html: page(&[
                    format!("Hi {},", escape_html(name)),
                    format!(
                        "Your {} subscription was canceled. You keep access until {}.",
                        escape_html(plan),
                        escape_html(until)
                    ),
                ]),
                text: format!(
                    "Hi {name},\n\nYour {plan} subscription was canceled. You keep access until {until}.\n"
                ),
            }
        }
        Template::PaymentSuccessful => {
            let until = data
                .get("access_until")
                .map(String::as_str)
                .unwrap_or("your next renewal");
            // A pass queued behind one still running says when it starts.
            let sentence = match data.get("starts_at") {
                Some(start) => format!(
                    "Thanks for your payment. Your new {plan} starts when your current one ends, on {start}, and runs until {until}."
                ),
                None => format!("Thanks for your payment. {plan} is active until {until}."),
            };
            RenderedEmail {
                subject: format!("Payment successful: {plan}"),
                html: page(&[
                    format!("Hi {},", escape_html(name)),
                    escape_html(&sentence),
                ]),
                text: format!("Hi {name},\n\n{sentence}\n"),
            }
        }
        Template::PaymentFailed => {
            let until = data
                .get("access_until")
                .map(String::as_str)
                .unwrap_or("a few days");
            // A stable link: it makes a fresh provider session when opened.
            let billing = match data.get("subscription") {
                Some(id) => format!(
                    "{}?subscription={}",
                    billing_link(ctx.frontend_url),
                    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => billing_link(ctx.frontend_url),
            };
            RenderedEmail {
                subject: format!("Payment failed: {plan}"),
                html: page(&[
                    format!("Hi {},", escape_html(name)),
                    format!(
                        "We could not take the payment for {}. Please update your payment method; your access continues until {}.",
                        escape_html(plan),
                        escape_html(until)
                    ),
                    format!(
                        "Update your card: <a href=\"{0}\">{0}</a> (sign in first if asked).",
                        escape_html(&billing)
                    ),
                ]),
                text: format!(
                    "Hi {name},\n\nWe could not take the payment for {plan}. Please update your payment method; your access continues until {until}.\n\nUpdate your card: {billing} (sign in first if asked).\n"
                ),
            }
        }
        Template::RefundNotice => RenderedEmail {
            subject: format!("Your {plan} payment was refunded"),
            html: page(&[
                format!("Hi {},", escape_html(name)),
                format!("Your payment for {} was refunded, and the access it gave has ended.", escape_html(plan)),
            ]),
            text: format!("Hi {name},\n\nYour payment for {plan} was refunded, and the access it gave has ended.\n"),
        },
        Template::ExpiryNotice => RenderedEmail {
            subject: format!("Your {plan} subscription has expired"),
            html: page(&[
                format!("Hi {},", escape_html(name)),
                format!(
                    "Your {} subscription has expired and access has ended.",
                    escape_html(plan)
                ),
            ]),
            text: format!(
                "Hi {name},\n\nYour {plan} subscription has expired and access has ended.\n"
            ),
        },
        Template::CompletionsDigest => {
            let count = field(data, "count")?;
            let lines = field(data, "lines")?;
            let review = "Review them with `gatehouse-admin completions list`, then link each to a member (`completions link ID --user USER_ID`) or dismiss it (`completions dismiss ID --reason R`).";
            let listed: Vec<String> = lines.lines().map(escape_html).collect();
            RenderedEmail {
                subject: format!("{count} course completions wait for review"),
                html: page(&[
                    format!("{} course completions match no member's email, so their points wait:", escape_html(count)),
                    listed.join("<br>"),
                    escape_html(review),
                ]),
                text: format!(
                    "{count} course completions match no member's email, so their points wait:\n\n{lines}\n\n{review}\n"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(key: &Secret) -> RenderContext<'_> {
        RenderContext {
            frontend_url: "https://app.example/",
            token_key: key,
        }
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn welcome_has_fragment_link_with_encoded_email() {
        let key = Secret::new("k".repeat(32));
        let job = JobId::from_stored("job_1");
        let email = render(
            Template::Welcome,
            &job,
            &data(&[
                ("email", "a+b@example.com"),
                ("first_name", "Ann & Co"),
                ("plan_name", "NSSA"),
            ]),
            &ctx(&key),
        )
        .unwrap();
        let token = setup_token::derive(&key, &job);
        let link =
            format!("https://app.example/account/setup#token={token}&email=a%2Bb%40example%2Ecom");
        assert!(email.text.contains(&link), "{}", email.text);
        assert!(email.html.contains("Ann &amp; Co"));
        assert!(email.html.contains(&link.replace('&', "&amp;")));
        assert!(!email.html.contains("Ann & Co"));
    }

    #[test]
    fn missing_fields_are_errors() {
        let key = Secret::new("k".repeat(32));
        let job = JobId::from_stored("job_1");
        assert_eq!(
            render(Template::Welcome, &job, &data(&[]), &ctx(&key)),
            Err(RenderError::MissingField("email"))
        );
        assert_eq!(
            render(Template::CancelNotice, &job, &data(&[]), &ctx(&key)),
            Err(RenderError::MissingField("access_until"))
        );
    }

    #[test]
    fn the_payment_failed_email_links_to_the_card_page() {
        let key = Secret::new("k".repeat(32));
        let e = render(
            Template::PaymentFailed,
            &JobId::from_stored("job_1"),
            &data(&[("email", "m@example.com"), ("plan_name", "Premium")]),
            &ctx(&key),
        )
        .unwrap();
        let link = billing_link(ctx(&key).frontend_url);
        assert!(link.ends_with("/account/billing"));
        assert!(e.text.contains(&link), "{}", e.text);
        assert!(e.html.contains(&format!("href=\"{link}\"")), "{}", e.html);
    }

    #[test]
    fn every_template_renders_and_round_trips() {
        let key = Secret::new("k".repeat(32));
        let job = JobId::from_stored("job_1");
        let d = data(&[
            ("email", "m@example.com"),
            ("access_until", "2027-01-01"),
            ("plan_name", "<b>Plan</b>"),
            ("count", "2"),
            ("lines", "<b>Plan</b> · a\nb"),
        ]);
        for t in [
            Template::Welcome,
            Template::AdminNewSignup,
            Template::AdminExistingLinked,
            Template::CancelNotice,
            Template::ExpiryNotice,
            Template::PaymentSuccessful,
            Template::PaymentFailed,
            Template::RefundNotice,
            Template::CompletionsDigest,
        ] {
            assert_eq!(Template::parse(t.as_str()), Some(t));
            let e = render(t, &job, &d, &ctx(&key)).unwrap();
            assert!(!e.subject.is_empty() && !e.text.is_empty());
            assert!(!e.html.contains("<b>Plan</b>"), "{t:?} did not escape");
        }
    }
}
