//! The buyer's way back from the provider's hosted checkout:
//! - `GET /payments/stripe/success?session_id=…` verifies the session with
//!   Stripe's API, `GET /payments/paystack/callback?reference=…` the
//!   transaction with Paystack's; a paid one is applied through the event
//!   runner under the key its webhook has, so the two have one effect;
//! - `GET /payments/stripe/cancel?reference=…` marks a pending payment `cancelled`;
//! - each redirects (303) to `GET /account/return`, the page that shows the
//!   outcome as stored and links on to `APP_URL`.
//!
//! The page is rendered here, with no script and a Content-Security-Policy
//! that allows only its own pinned style.

use chrono::{DateTime, Utc};
use gatehouse::domain::{PaymentReference, Provider, Refusal, UserId};
use gatehouse::email::escape_html;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::checkout::{plan_access, ReturnOutcome};
use gatehouse::service::{ServiceError, Services};
use gatehouse::session::{csp_hash, SESSION_COOKIE};

const TEMPLATE: &str = include_str!("../assets/return.html");
const STYLE: &str = include_str!("../assets/return.css");

/// What the return page says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub title: String,
    pub message: String,
    pub paid: bool,
    /// Where the button goes: the app, or back to the plans to try again.
    pub next: Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    App,
    Plans,
    Reload,
}

fn human_date(at: DateTime<Utc>) -> String {
    at.format("%B %-d, %Y").to_string()
}

/// The sentence for a paid plan's access.
pub fn access_sentence(recurring: bool, access: Option<Option<DateTime<Utc>>>) -> String {
    let what = if recurring { "Subscription" } else { "Access" };
    match access {
        Some(Some(until)) => format!(
            "Payment successful. {what} active until {}.",
            human_date(until)
        ),
        Some(None) => "Payment successful. Your access does not expire.".to_string(),
        None => "Payment successful. Your access is being set up; reload this page in a moment."
            .to_string(),
    }
}

fn problem_page(title: &str, message: &str, next: Next) -> Page {
    Page {
        status: 200,
        title: title.into(),
        message: message.into(),
        paid: false,
        next,
    }
}

pub struct CheckoutReturn {
    services: Services,
    csp: String,
}

impl CheckoutReturn {
    pub fn new(services: Services) -> Self {
        let csp = format!(
            "default-src 'none'; style-src {}; img-src 'none'; form-action 'none'; \
             base-uri 'none'; frame-ancestors 'none'",
            csp_hash(STYLE)
        );
        Self { services, csp }
    }

    fn render(&self, page: &Page) -> ApiResponse {
        let (href, label) = match page.next {
            Next::App => (self.services.settings.app_url.clone(), "Continue"),
            // The app shows the plans; Gatehouse's `/plans` is JSON.
            Next::Plans => (
                self.services.settings.app_url.clone(),
                "Back to choose a plan",
            ),
            Next::Reload => (String::new(), "Reload"),
        };
        let html = TEMPLATE
            .replace("{{STYLE}}", STYLE)
            .replace("{{CLASS}}", if page.paid { "paid" } else { "problem" })
            .replace("{{TITLE}}", &escape_html(&page.title))
            .replace("{{MESSAGE}}", &escape_html(&page.message))
            .replace("{{NEXT_URL}}", &escape_html(&href))
            .replace("{{NEXT_LABEL}}", label);
        ApiResponse::html(page.status, html, &self.csp)
    }

    /// The member the session cookie names, if it verifies; a missing or
    /// stale cookie is no one (the provider's redirect may come without it).
    fn signed_in(&self, request: &ApiRequest) -> Option<UserId> {
        let token = request.cookie(SESSION_COOKIE)?;
        let keys = self.services.session_keys().ok()?;
        keys.verify(token, self.services.now())
            .ok()
            .map(|claims| UserId::from_stored(claims.sub))
    }

    fn redirect_to_page(&self, provider: Provider, outcome: &ReturnOutcome) -> ApiResponse {
        let mut location = format!(
            "{}/account/return?outcome={}",
            self.services.settings.frontend_url,
            outcome.code()
        );
        match outcome {
            ReturnOutcome::Refused(why) => {
                location.push_str(&format!("&why={}", why.code()));
            }
            other => {
                if let Some(payment) = other.payment() {
                    location.push_str(&format!(
                        "&provider={provider}&reference={}",
                        payment.reference
                    ));
                }
            }
        }
        ApiResponse::see_other(location)
    }

    /// A return that could not be judged: 503 (reload) when the provider or
    /// storage did not answer, 502 when the provider refused Gatehouse
    /// itself (a wrong key), 500 when a provider is not configured here.
    fn unavailable(&self, request: &ApiRequest, error: &ServiceError) -> ApiResponse {
        tracing::error!(request_id = %request.request_id, error = %error, "checkout return failed");
        let (status, message) = match error {
            ServiceError::ProviderApi(e) if !e.is_transient() => (
                502,
                "The payment provider refused to let us check your payment. Nothing is lost: your access arrives when the provider confirms the payment, and the site owner has been alerted.",
            ),
            ServiceError::Internal(_) => (
                500,
                "Payments are not fully configured on this site. Nothing is lost: your access arrives when the provider confirms the payment.",
            ),
            _ => (
                503,
                "The payment provider or our storage did not answer. Nothing is lost: reload this page in a moment, or wait for the confirmation email.",
            ),
        };
        let mut page = self.render(&problem_page(
            "We could not confirm your payment yet",
            message,
            Next::Reload,
        ));
        page.status = status;
        if status == 503 {
            page.with_header("retry-after", "5")
        } else {
            page
        }
    }

    /// The page for `/account/return`, from the payment as stored.
    pub async fn return_page(&self, request: &ApiRequest) -> Result<Page, ServiceError> {
        let outcome = request.query("outcome").unwrap_or_default();
        if outcome == "refused" {
            let why = request
                .query("why")
                .and_then(|code| Refusal::parse(&code))
                .unwrap_or(Refusal::UnknownReference);
            return Ok(problem_page(
                "Nothing was granted",
                why.explain(),
                Next::Plans,
            ));
        }
        let payment = match (
            request.query("provider").and_then(|p| Provider::parse(&p)),
            request
                .query("reference")
                .and_then(|r| PaymentReference::parse(&r)),
        ) {
            (Some(provider), Some(reference)) => {
                self.services
                    .store
                    .get_checkout(provider, &reference)
                    .await?
            }
            _ => None,
        };
        let Some(payment) = payment else {
            return Ok(problem_page(
                "Nothing was granted",
                Refusal::UnknownReference.explain(),
                Next::Plans,
            ));
        };
        let plan = self.services.settings.plans.get(&payment.plan_id);
        let plan_name = plan
            .map(|p| p.name.clone())
            .unwrap_or(payment.plan_id.clone());
        Ok(match payment.status.as_str() {
            "succeeded" => {
                let now = self.services.now();
                let access = match self.services.store.load_member(&payment.user_id).await? {
                    Some(member) => plan_access(&member, &payment.plan_id, now),
                    None => None,
                };
                let recurring = plan
                    .and_then(|p| p.sale.as_ref())
                    .is_some_and(|s| s.recurring);
                Page {
                    status: 200,
                    title: format!("{plan_name}: payment successful"),
                    message: access_sentence(recurring, access),
                    paid: true,
                    next: Next::App,
                }
            }
            "failed" => problem_page(
                "Payment not completed",
                &format!(
                    "Your payment for {plan_name} was not completed ({}). Nothing was granted; you can choose a plan and try again.",
                    payment.reason.as_deref().unwrap_or("no reason given")
                ),
                Next::Plans,
            ),
            "cancelled" => problem_page(
                "Checkout cancelled",
                &format!("You left the checkout for {plan_name}. Nothing was charged."),
                Next::Plans,
            ),
            _ => problem_page(
                "Confirming your payment",
                &format!(
                    "We are waiting for the payment provider to confirm your payment for {plan_name}. Reload this page in a moment; you will also get an email."
                ),
                Next::Reload,
            ),
        })
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let path = request.path.trim_end_matches('/').to_string();
        if path.ends_with("/account/return") {
            return match self.return_page(&request).await {
                Ok(page) => self.render(&page),
                Err(e) => self.unavailable(&request, &e),
            };
        }
        let signed_in = self.signed_in(&request);
        let (provider, result) = if path.ends_with("/payments/stripe/success") {
            let session = request.query("session_id").unwrap_or_default();
            (
                Provider::Stripe,
                self.services
                    .stripe_return(&session, signed_in.as_ref())
                    .await,
            )
        } else if path.ends_with("/payments/stripe/cancel") {
            let reference = request.query("reference").unwrap_or_default();
            (
                Provider::Stripe,
                self.services
                    .stripe_cancelled(&reference, signed_in.as_ref())
                    .await,
            )
        } else if path.ends_with("/payments/paystack/callback") {
            // Paystack appends `trxref` and `reference` to the callback URL.
            let reference = request
                .query("reference")
                .or_else(|| request.query("trxref"))
                .unwrap_or_default();
            (
                Provider::Paystack,
                self.services
                    .paystack_return(&reference, signed_in.as_ref())
                    .await,
            )
        } else {
            return gatehouse::http::reject::not_found(&request.path);
        };
        match result {
            Ok(outcome) => self.redirect_to_page(provider, &outcome),
            Err(e) => self.unavailable(&request, &e),
        }
    }
}

impl HttpFunction for CheckoutReturn {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(CheckoutReturn::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_access_sentence_names_the_end_or_says_it_never_ends() {
        let until = Utc.with_ymd_and_hms(2027, 1, 7, 12, 0, 0).unwrap();
        assert_eq!(
            access_sentence(true, Some(Some(until))),
            "Payment successful. Subscription active until January 7, 2027."
        );
        assert_eq!(
            access_sentence(false, Some(None)),
            "Payment successful. Your access does not expire."
        );
        assert!(access_sentence(true, None).contains("being set up"));
    }
}
