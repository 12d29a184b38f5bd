//! `make demo`: plays the main scenario against a running local stack, prints
//! what happened, and checks the state it reads back.
//!
//! 1. a new member's purchase (seed dialect, HMAC signature)
//! 2. the same member's purchase through Kajabi's native hook (v1 dialect, URL token): existing member linked
//! 3. a duplicate delivery of step 2
//! 4. password setup with the token from the email SES received (and the older link refused)
//! 5. a cancel
//! 6. an expiry
//!
//! with the member signing in after setup and reading `/account/me` (premium),
//! and reading it again after the expiry (free: roles are computed at read time);
//!
//! then a Stripe subscription: checkout, invoice paid, cancel at period end, deleted;
//! and a Paystack one: charge.success, subscription.create, not_renew, disable;
//! then the admin CLI lists users and events, signed with the local dev credentials;
//! then the LEAPS course journey; and pay-then-activate through Gatehouse's own
//! checkout with each provider, against the local fake of their hosted pages.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gatehouse::signature::hmac_sha256_hex;
use gatehouse::store::attr::{get_bool, get_s};
use serde_json::{json, Value};

use crate::inspect::{describe_event, describe_subscription, describe_user, Snapshot};
use crate::moto::{sent_emails, SentEmail};
use crate::LocalStack;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("check failed: {0}")]
    Check(String),
    #[error("{0}")]
    Io(String),
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what.into()))
    }
}

fn io<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Io(e.to_string())
}

/// One line for an `/account/me` answer.
fn describe_me(me: &Value) -> String {
    let subs: Vec<String> = me["subscriptions"]
        .as_array()
        .map(|subs| {
            subs.iter()
                .map(|s| {
                    format!(
                        "{}:{} (access {}, until {})",
                        s["plan"].as_str().unwrap_or("?"),
                        s["state"].as_str().unwrap_or("?"),
                        s["access"],
                        s["access_until"].as_str().unwrap_or("-")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "/account/me: premium={} roles={} permissions={} points={} subscriptions=[{}]",
        me["premium"],
        me["roles"],
        me["permissions"],
        me["points"],
        subs.join(", ")
    )
}

pub struct Demo<'a> {
    stack: &'a LocalStack,
    http: reqwest::Client,
    pub log: String,
    /// The local fake of Stripe's and Paystack's checkout, for the pay-then-activate steps.
    payments: Option<crate::fake_payments::FakePayments>,
}

impl<'a> Demo<'a> {
    pub fn new(stack: &'a LocalStack) -> Self {
        Self {
            stack,
            http: reqwest::Client::new(),
            log: String::new(),
            payments: None,
        }
    }

    /// Plays the checkout steps against `fake` (the stack's provider APIs point at it).
    pub fn with_payments(mut self, fake: crate::fake_payments::FakePayments) -> Self {
        self.payments = Some(fake);
        self
    }

    fn say(&mut self, line: impl AsRef<str>) {
        println!("{}", line.as_ref());
        let _ = writeln!(self.log, "{}", line.as_ref());
    }

    async fn post(
        &self,
        path_and_query: &str,
        body: &Value,
        signed: bool,
    ) -> Result<(u16, Value), DemoError> {
        let raw = body.to_string();
        let mut request = self
            .http
            .post(format!("{}{}", self.stack.base_url(), path_and_query))
            .header("content-type", "application/json")
            .body(raw.clone());
        if signed {
            let secret = self
                .stack
                .services
                .settings
                .kajabi_webhook_secret
                .as_ref()
                .ok_or_else(|| DemoError::Io("KAJABI_WEBHOOK_SECRET is not set".into()))?;
            request = request.header(
                "x-kajabi-signature",
                hmac_sha256_hex(secret.expose().as_bytes(), raw.as_bytes()),
            );
        }
        let response = request.send().await.map_err(io)?;
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(Value::Null);
        Ok((status, json))
    }

    async fn post_stripe(
        &self,
        event_type: &str,
        id: String,
        created: i64,
        object: Value,
    ) -> Result<(u16, Value), DemoError> {
        let body = json!({"id": id, "object": "event", "created": created, "type": event_type, "data": {"object": object}}).to_string();
        let secret = self
            .stack
            .services
            .settings
            .stripe_webhook_secrets
            .first()
            .ok_or_else(|| DemoError::Io("STRIPE_WEBHOOK_SECRETS is empty".into()))?;
        let t = chrono::Utc::now().timestamp();
        let sig = hmac_sha256_hex(secret.expose().as_bytes(), format!("{t}.{body}").as_bytes());
        let response = self
            .http
            .post(format!("{}/webhooks/stripe", self.stack.base_url()))
            .header("content-type", "application/json")
            .header("stripe-signature", format!("t={t},v1={sig}"))
            .body(body)
            .send()
            .await
            .map_err(io)?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The Stripe journey: checkout, invoice paid, cancel at period end, deleted.
    async fn stripe_journey(&mut self, run: &str) -> Result<(), DemoError> {
        let email = format!("grace.{run}@example.com");
        let customer = format!("cus_{run}");
        let now = chrono::Utc::now().timestamp();
        let period_end = now + 30 * 86_400;
        let subscription = |status: &str, cancel: bool| {
            json!({"id": format!("sub_{run}"), "object": "subscription", "customer": customer, "status": status,
                "cancel_at_period_end": cancel,
                "items": {"data": [{"current_period_end": period_end, "price": {"id": "price_premium_monthly", "product": "prod_premium_monthly"}}]}})
        };
        let steps: Vec<(&str, &str, Value, &str)> = vec![
            (
                "7. Stripe checkout completes for a new member",
                "checkout.session.completed",
                json!({"id": format!("cs_{run}"), "mode": "subscription", "payment_status": "paid", "customer": customer,
                    "customer_details": {"email": email, "name": "Grace Hopper"}}),
                "processed",
            ),
            (
                "8. The subscription is created",
                "customer.subscription.created",
                subscription("active", false),
                "processed",
            ),
            (
                "9. The first invoice is paid",
                "invoice.paid",
                json!({"id": format!("in_{run}"), "customer": customer, "customer_email": email, "billing_reason": "subscription_create",
                    "parent": {"type": "subscription_details", "subscription_details": {"subscription": format!("sub_{run}")}},
                    "lines": {"data": [{"period": {"end": period_end}, "price": {"id": "price_premium_monthly", "product": "prod_premium_monthly"}}]}}),
                "processed",
            ),
            (
                "10. The member cancels at period end",
                "customer.subscription.updated",
                subscription("active", true),
                "processed",
            ),
            (
                "11. The period ends and Stripe deletes the subscription",
                "customer.subscription.deleted",
                subscription("canceled", false),
                "processed",
            ),
        ];
        for (i, (title, event_type, object, expected)) in steps.into_iter().enumerate() {
            self.say(format!("\n{title} ({event_type})"));
            let (status, body) = self
                .post_stripe(
                    event_type,
                    format!("evt_{run}_s{i}"),
                    now + i as i64,
                    object,
                )
                .await?;
            self.say(format!("   -> {status} {body}"));
            check(
                status == 200 && body["status"] == expected,
                format!("{event_type} is {expected}"),
            )?;
        }
        let emails = self.wait_for_emails(&email, 3).await?;
        self.show_member_ends_expired(&email, &emails, "Stripe")
            .await?;
        check(
            emails.iter().any(|m| m.subject.starts_with("Welcome")),
            "the Stripe member got a setup link",
        )?;
        check(
            emails.iter().any(|m| m.subject.contains("canceled")),
            "the Stripe member got the cancel notice",
        )?;
        check(
            emails.iter().any(|m| m.subject.contains("expired")),
            "the Stripe member got the expiry notice",
        )?;
        Ok(())
    }

    /// The Paystack journey: charge.success, subscription.create, not_renew, disable.
    async fn paystack_journey(&mut self, run: &str) -> Result<(), DemoError> {
        let email = format!("kola.{run}@example.com");
        let secret = self
            .stack
            .services
            .settings
            .paystack_secret_key
            .clone()
            .ok_or_else(|| DemoError::Io("PAYSTACK_SECRET_KEY is not set".into()))?;
        let now = chrono::Utc::now();
        let at = |secs: i64| (now + chrono::Duration::seconds(secs)).to_rfc3339();
        let next = (now + chrono::Duration::days(30)).to_rfc3339();
        let customer =
            json!({"email": email, "first_name": "Kola", "customer_code": format!("CUS_{run}")});
        let plan = json!({"plan_code": "PLN_premium_monthly", "interval": "monthly"});
        // Paystack's subscription payloads carry its creation time only; the
        // events after the create are ordered by when they arrive.
        let created = at(-4);
        let subscription = |event: &str| {
            let mut data = json!({"id": 5000, "subscription_code": format!("SUB_{run}"), "next_payment_date": next,
                "created_at": created, "customer": customer, "plan": plan});
            if event == "subscription.create" {
                data["createdAt"] = json!(created);
            }
            data
        };
        let steps: Vec<(&str, Value)> = vec![
            (
                "charge.success",
                json!({"id": format!("{run}1"), "reference": format!("ref_{run}"), "status": "success", "amount": 500000,
                "currency": "NGN", "paid_at": at(-5), "customer": customer, "plan": plan}),
            ),
            ("subscription.create", subscription("subscription.create")),
            (
                "subscription.not_renew",
                subscription("subscription.not_renew"),
            ),
            ("subscription.disable", subscription("subscription.disable")),
        ];
        for (i, (event, data)) in steps.into_iter().enumerate() {
            self.say(format!("\n{}. Paystack {event}", 12 + i));
            let body = json!({"event": event, "data": data}).to_string();
            let sig =
                gatehouse::signature::hmac_sha512_hex(secret.expose().as_bytes(), body.as_bytes());
            let response = self
                .http
                .post(format!("{}/webhooks/paystack", self.stack.base_url()))
                .header("content-type", "application/json")
                .header("x-paystack-signature", sig)
                .body(body)
                .send()
                .await
                .map_err(io)?;
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            self.say(format!("   -> {status} {answer}"));
            check(
                status == 200 && answer["status"] == "processed",
                format!("{event} is processed"),
            )?;
        }
        let emails = self.wait_for_emails(&email, 3).await?;
        self.show_member_ends_expired(&email, &emails, "Paystack")
            .await?;
        check(
            emails.iter().any(|m| m.subject.contains("canceled")),
            "the Paystack member got the cancel notice",
        )?;
        Ok(())
    }

    /// Prints a journey's member, subscription and emails, and checks that its
    /// one subscription ended expired.
    async fn show_member_ends_expired(
        &mut self,
        email: &str,
        emails: &[SentEmail],
        provider: &str,
    ) -> Result<(), DemoError> {
        let snapshot = self.snapshot().await?;
        let user = snapshot
            .user_by_email(email)
            .ok_or_else(|| DemoError::Check(format!("the {provider} member exists")))?;
        self.say(format!("   {}", describe_user(user)));
        let subs = snapshot.subscriptions_of(get_s(user, "user_id").unwrap_or_default());
        for s in &subs {
            self.say(format!("   {}", describe_subscription(s)));
        }
        for m in emails {
            self.say(format!(
                "   email to {} : {}",
                m.destinations.to.join(","),
                m.subject
            ));
        }
        check(
            subs.len() == 1 && get_s(subs[0], "state") == Some("expired"),
            format!("the {provider} subscription ends expired"),
        )
    }

    /// The admin CLI, signed with the local dev credentials, as an operator would run it.
    async fn admin_cli(&mut self, member: &str) -> Result<(), DemoError> {
        let base = self.stack.base_url();
        let prefix = member.split('@').next().unwrap_or(member).to_string();
        for (title, args) in [
            (
                "Admin: gatehouse-admin --local users list",
                vec!["users", "list", "--limit", "10"],
            ),
            (
                "Admin: gatehouse-admin --local events list --limit 8",
                vec!["events", "list", "--limit", "8"],
            ),
        ] {
            self.say(format!("\n== {title}"));
            let mut argv = vec!["--local".to_string(), "--endpoint".into(), base.clone()];
            argv.extend(args.iter().map(|a| a.to_string()));
            let out = gatehouse_admin::run(&argv).await;
            check(out.code == 0, format!("{title}: {}", out.stderr))?;
            for line in out.stdout.lines() {
                self.say(format!("   {line}"));
            }
            if args[0] == "users" {
                check(
                    out.stdout.contains(&prefix),
                    "the CLI lists the demo member",
                )?;
            }
        }
        Ok(())
    }

    /// Runs the admin CLI as an operator would, printing what it prints.
    async fn cli(&mut self, args: &[&str]) -> Result<String, DemoError> {
        let mut argv = vec![
            "--local".to_string(),
            "--endpoint".into(),
            self.stack.base_url(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = gatehouse_admin::run(&argv).await;
        check(
            out.code == 0,
            format!("gatehouse-admin {}: {}", args.join(" "), out.stderr),
        )?;
        for line in out.stdout.lines() {
            self.say(format!("   {line}"));
        }
        Ok(out.stdout)
    }

    /// The LEAPS journey (course completions to points): a member completes
    /// a course, an unknown email's completion waits until an admin links
    /// it, a CSV import awards nothing twice, and the member sees the points.
    async fn leaps_journey(
        &mut self,
        run: &str,
        member: &str,
        session: &str,
    ) -> Result<(), DemoError> {
        const COURSE: &str = "AI Foundations for Educators";
        let completion = |id: String, email: &str| {
            json!({"event_type": "form.submitted", "event_id": id,
                "data": {"form": {"id": "form_completion", "name": "Course Completion Form"},
                    "submission": {"id": format!("sub_{run}"), "fields": {
                        "email": email, "course_name": COURSE, "completion_date": "2026-11-02"}}}})
        };
        self.say(format!(
            "\n7. LEAPS: {member} completes \"{COURSE}\" (the seed's form.submitted)"
        ));
        let (status, body) = self
            .post(
                "/webhooks/kajabi",
                &completion(format!("evt_{run}_7"), member),
                true,
            )
            .await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "processed",
            "the completion awards its points",
        )?;
        let personal = format!("grace.personal.{run}@example.com");
        self.say(format!(
            "\n8. A completion arrives from {personal}, an address no member has"
        ));
        let (status, body) = self
            .post(
                "/webhooks/kajabi",
                &completion(format!("evt_{run}_8"), &personal),
                true,
            )
            .await?;
        self.say(format!("   -> {status} {}", body["status"]));
        check(
            status == 200 && body["status"] == "unmatched",
            "an unknown email's completion is kept for review",
        )?;
        self.say("   Admin: gatehouse-admin --local completions list");
        let listed = self.cli(&["completions", "list"]).await?;
        check(
            listed.contains(&personal),
            "the review list shows the unmatched completion",
        )?;
        let grace = format!("grace.{run}@example.com");
        let snapshot = self.snapshot().await?;
        let grace_id = snapshot
            .user_by_email(&grace)
            .and_then(|u| get_s(u, "user_id"))
            .ok_or_else(|| DemoError::Check("the Stripe member exists".into()))?
            .to_string();
        self.say("   Admin: it is Grace's personal address; link it to her");
        let key = format!("kajabi:evt_{run}_8");
        let linked = self
            .cli(&["completions", "link", &key, "--user", &grace_id])
            .await?;
        check(
            linked.contains("unmatched -> processed"),
            "the link awards the course to Grace",
        )?;

        self.say("\n9. Admin imports last term's completions from a CSV (gatehouse-admin completions import)");
        let csv = format!(
            "email,course,completion_date\n{member},{COURSE},2026-10-01\n{grace},{COURSE},2026-10-01\nnew.learner.{run}@example.com,{COURSE},2026-10-01\n{member},Underwater Basket Weaving,2026-10-01\n"
        );
        let file = std::env::temp_dir().join(format!("gatehouse-demo-{run}.csv"));
        std::fs::write(&file, csv).map_err(io)?;
        let path = file.to_string_lossy().to_string();
        let imported = self.cli(&["completions", "import", &path]).await;
        let _ = std::fs::remove_file(&file);
        let imported = imported?;
        check(
            imported.contains("0 awarded, 2 already awarded, 1 unmatched, 1 invalid"),
            "the import awards nothing twice and names the bad row",
        )?;

        self.say("\n10. The member reads /account/me: the balance and the ledger");
        let me = self.account_me(session).await?;
        let entries = me["points_ledger"]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        self.say(format!(
            "   points={} ledger={}",
            me["points"],
            Value::Array(entries.clone())
        ));
        check(
            me["points"] == 20 && entries.len() == 1,
            "the member has the course's 20 points, once",
        )?;
        Ok(())
    }

    /// `POST /account/login`; returns the session token.
    async fn login(&mut self, email: &str, password: &str) -> Result<String, DemoError> {
        let (status, body) = self
            .post(
                "/account/login",
                &json!({"email": email, "password": password}),
                false,
            )
            .await?;
        let token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kid = token
            .split('.')
            .next()
            .and_then(|h| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h)
                    .ok()
            })
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .map(|h| h["kid"].clone())
            .unwrap_or(Value::Null);
        self.say(format!(
            "   login -> {status}: EdDSA session (kid {kid}), roles {}, expires in {}s",
            body["roles"], body["expires_in"]
        ));
        check(
            status == 200 && !token.is_empty(),
            "login returns a session",
        )?;
        Ok(token)
    }

    /// `GET /account/me` with a Bearer session.
    async fn account_me(&self, token: &str) -> Result<Value, DemoError> {
        let response = self
            .http
            .get(format!("{}/account/me", self.stack.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .map_err(io)?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(io)?;
        check(
            status == 200,
            format!("/account/me answers 200, got {status}: {body}"),
        )?;
        Ok(body)
    }

    async fn emails_to(&self, address: &str) -> Result<Vec<SentEmail>, DemoError> {
        Ok(sent_emails(&self.stack.endpoint)
            .await
            .map_err(io)?
            .into_iter()
            .filter(|m| m.is_to(address))
            .collect())
    }

    /// Polls SES (moto) until `address` has `count` emails, or the deadline passes.
    async fn wait_for_emails(
        &self,
        address: &str,
        count: usize,
    ) -> Result<Vec<SentEmail>, DemoError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let emails = self.emails_to(address).await?;
            if emails.len() >= count {
                return Ok(emails);
            }
            if Instant::now() > deadline {
                return Err(DemoError::Check(format!(
                    "{address} has {} emails, expected {count} within 20 s",
                    emails.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, DemoError> {
        Snapshot::read(
            &self.stack.clients.dynamodb,
            self.stack.services.store.table(),
        )
        .await
        .map_err(DemoError::Io)
    }

    /// Pay-then-activate through Gatehouse's own checkout, for each provider,
    /// against the local fake of Stripe's and Paystack's checkout pages: a
    /// visitor chooses a plan, pays on the provider's page, and comes back to
    /// "Payment successful. Subscription active until …"; the provider's
    /// webhook and the return have one effect, and one setup link is sent.
    async fn pay_then_activate(&mut self, run: &str) -> Result<(), DemoError> {
        let Some(fake) = self.payments.clone() else {
            return Ok(());
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(io)?;
        for (n, provider) in [("11a", "stripe"), ("11b", "paystack")] {
            let email = format!("grace.{provider}.{run}@example.com");
            self.say(format!(
                "\n{n}. A visitor buys Premium Monthly through Gatehouse's checkout with {provider} (local fake of its hosted page)"
            ));
            let (status, body) = self
                .post(
                    "/account/checkout",
                    &json!({"email": email, "plan": "premium_monthly", "provider": provider}),
                    false,
                )
                .await?;
            check(status == 201, format!("checkout opened: {status} {body}"))?;
            let url = body["url"].as_str().unwrap_or_default().to_string();
            let reference = body["reference"].as_str().unwrap_or_default().to_string();
            self.say(format!(
                "   POST /account/checkout -> 201, pending payment {reference}"
            ));
            self.say(format!("   the buyer is sent to {url}"));
            // "Pay" on the provider's page: the webhook, then the way back.
            let pay = match provider {
                "stripe" => url.clone(),
                _ => format!("{}/paystack/pay/{reference}", fake.base_url),
            };
            let paid = http.post(&pay).send().await.map_err(io)?;
            let back = paid
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let answer = fake.webhook_answers().pop().unwrap_or(Value::Null);
            self.say(format!("   pays: the {provider} webhook -> {answer}"));
            check(
                answer["status"] == "processed",
                "the provider's webhook applies the payment",
            )?;
            let verified = http.get(&back).send().await.map_err(io)?;
            let page_url = verified
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            self.say(format!(
                "   returns to {} -> {} {page_url}",
                back.split('?').next().unwrap_or_default(),
                verified.status().as_u16()
            ));
            let page = http
                .get(&page_url)
                .send()
                .await
                .map_err(io)?
                .text()
                .await
                .map_err(io)?;
            let message = page
                .split("<p id=\"message\">")
                .nth(1)
                .and_then(|rest| rest.split("</p>").next())
                .unwrap_or_default()
                .to_string();
            self.say(format!("   the return page: {message}"));
            check(
                message.starts_with("Payment successful. Subscription active until"),
                "the return page shows the plan active",
            )?;
            let emails = self.wait_for_emails(&email, 1).await?;
            check(
                emails.iter().filter(|m| m.setup_link().is_some()).count() == 1,
                "one setup link, after payment",
            )?;
            self.say(format!(
                "   one email: \"{}\" (the webhook and the return were one event)",
                emails[0].subject
            ));
        }
        Ok(())
    }

    pub async fn run(&mut self) -> Result<(), DemoError> {
        let run = hex::encode(rand::random::<[u8; 3]>());
        let member = format!("ada.{run}@example.com");
        let admin = self.stack.services.settings.admin_email.to_string();
        let admin_before = self.emails_to(&admin).await?.len();
        let token = self
            .stack
            .services
            .settings
            .kajabi_url_tokens
            .first()
            .map(|t| t.expose().to_string())
            .ok_or_else(|| DemoError::Io("KAJABI_URL_TOKENS is empty".into()))?;
        self.say(format!(
            "Gatehouse demo on {} (table {})",
            self.stack.base_url(),
            self.stack.services.store.table()
        ));

        // 1. New member
        self.say("\n1. New member buys NSSA Annual (seed dialect, X-Kajabi-Signature)");
        let purchase = json!({
            "type": "offer.purchased", "id": format!("evt_{run}_1"),
            "member": {"id": format!("mem_{run}"), "email": format!("  Ada.{run}@Example.com "), "first_name": "Ada", "last_name": "Lovelace"},
            "offer": {"id": "off_456", "name": "NSSA Annual Membership"}
        });
        let (status, body) = self.post("/webhooks/kajabi", &purchase, true).await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "processed",
            "new purchase is processed",
        )?;
        self.wait_for_emails(&member, 1).await?;

        // 2. Existing member linked, through Kajabi's unsigned native hook.
        self.say("\n2. Kajabi's native hook reports a purchase for the same member (v1 JSON:API dialect, URL token)");
        let native = json!({
            "id": format!("hook_{run}_2"), "event": "purchase",
            "payload": [
                {"id": format!("mem_{run}"), "type": "customers", "attributes": {"email": member, "name": "Ada Lovelace"}},
                {"id": "2150", "type": "offers", "attributes": {"title": "NSSA Annual"}}
            ]
        });
        let path = format!("/webhooks/kajabi?token={token}");
        let (status, body) = self.post(&path, &native, false).await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "processed",
            "existing member's purchase is processed",
        )?;

        // 3. Duplicate
        self.say("\n3. Kajabi retries that delivery");
        let (status, body) = self.post(&path, &native, false).await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "duplicate",
            "retry is a duplicate",
        )?;

        // 4. Password setup from the newest email.
        self.say(
            "\n4. The member opens the newest setup email that SES received and sets a password",
        );
        let emails = self.wait_for_emails(&member, 2).await?;
        let links: Vec<(String, String)> =
            emails.iter().filter_map(SentEmail::setup_link).collect();
        check(
            links.len() == 2,
            format!("two welcome emails with setup links, got {}", links.len()),
        )?;
        let (old_token, _) = links[0].clone();
        let (new_token, link_email) = links[1].clone();
        check(
            link_email == member,
            "the link carries the normalized email",
        )?;
        let (status, body) = self
            .post("/account/setup-password", &json!({"email": link_email, "token": old_token, "password": "correct horse battery"}), false)
            .await?;
        self.say(format!("   older link -> {status} {}", body["detail"]));
        check(status == 400, "the superseded link is refused")?;
        let (status, body) = self
            .post("/account/setup-password", &json!({"email": link_email, "token": new_token, "password": "correct horse battery"}), false)
            .await?;
        // The session itself is a bearer credential: show what it says, not the token.
        self.say(format!(
            "   newest link -> {status} {}: signed in, session for {} with roles {}",
            body["status"], body["session"]["email"], body["session"]["roles"]
        ));
        check(
            status == 200 && body["status"] == "activated",
            "password setup activates the account",
        )?;
        let (status, _) = self
            .post("/account/setup-password", &json!({"email": link_email, "token": new_token, "password": "another horse battery"}), false)
            .await?;
        self.say(format!("   same link again -> {status}"));
        check(status == 400, "a used link is refused")?;

        self.say("\n4b. The member signs in and reads /account/me");
        let session = self.login(&member, "correct horse battery").await?;
        let me = self.account_me(&session).await?;
        self.say(format!("   {}", describe_me(&me)));
        check(me["premium"] == true, "a paying member is premium")?;

        // 5. Cancel
        self.say("\n5. The member cancels; access continues to the end of the paid year");
        let cancel = json!({"type": "member.subscription.canceled", "id": format!("evt_{run}_5"),
            "member": {"id": format!("mem_{run}"), "email": member}, "offer": {"id": "off_456"}});
        let (status, body) = self.post("/webhooks/kajabi", &cancel, true).await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "processed",
            "cancel is processed",
        )?;

        // 6. Expiry
        self.say("\n6. The subscription expires");
        let expire = json!({"type": "member.subscription.expired", "id": format!("evt_{run}_6"),
            "member": {"id": format!("mem_{run}"), "email": member}, "offer": {"id": "off_456"}});
        let (status, body) = self.post("/webhooks/kajabi", &expire, true).await?;
        self.say(format!("   -> {status} {body}"));
        check(
            status == 200 && body["status"] == "processed",
            "expiry is processed",
        )?;
        self.say("   the same session reads /account/me again:");
        let me = self.account_me(&session).await?;
        self.say(format!("   {}", describe_me(&me)));
        check(
            me["premium"] == false && me["roles"] == json!(["free-user"]),
            "an expired member is back to free-user",
        )?;

        // Summary and checks.
        let emails = self.wait_for_emails(&member, 4).await?;
        let admin_emails = self.wait_for_emails(&admin, admin_before + 2).await?;
        let snapshot = self.snapshot().await?;
        self.say("\n== Users");
        let user = snapshot
            .user_by_email(&member)
            .ok_or_else(|| DemoError::Check("member user exists".into()))?;
        self.say(format!("   {}", describe_user(user)));
        let user_id = get_s(user, "user_id").unwrap_or_default().to_string();
        self.say("== Subscriptions");
        let subs = snapshot.subscriptions_of(&user_id);
        for s in &subs {
            self.say(format!("   {}", describe_subscription(s)));
        }
        self.say("== Emails as SES received them");
        for m in emails.iter().chain(admin_emails.iter().skip(admin_before)) {
            self.say(format!(
                "   to {} : {}",
                m.destinations.to.join(","),
                m.subject
            ));
        }
        self.say("== Event log");
        for e in snapshot.events() {
            if get_s(e, "event_id").is_some_and(|id| id.contains(&run)) {
                self.say(format!("   {}", describe_event(e)));
            }
        }

        check(
            snapshot
                .users()
                .iter()
                .filter(|u| get_s(u, "email") == Some(member.as_str()))
                .count()
                == 1,
            "exactly one user for the member",
        )?;
        check(
            get_bool(user, "is_active") == Some(true),
            "the member is active",
        )?;
        check(
            subs.len() == 1 && get_s(subs[0], "state") == Some("expired"),
            "one subscription, now expired",
        )?;
        let subjects: Vec<&str> = emails.iter().map(|m| m.subject.as_str()).collect();
        check(
            emails.len() == 4,
            format!("member got 4 emails (2 welcome, cancel, expiry), got {subjects:?}"),
        )?;
        check(
            subjects.iter().any(|s| s.contains("canceled")),
            "cancel notice sent",
        )?;
        check(
            subjects.iter().any(|s| s.contains("expired")),
            "expiry notice sent",
        )?;
        let admin_new: Vec<&SentEmail> = admin_emails
            .iter()
            .skip(admin_before)
            .filter(|m| m.subject.contains(&member))
            .collect();
        check(admin_new.len() == 2, "admin got two notices for the member")?;
        check(
            admin_new
                .iter()
                .any(|m| m.subject.starts_with("New signup")),
            "admin got 'new signup'",
        )?;
        check(
            admin_new
                .iter()
                .any(|m| m.subject.starts_with("Existing user linked")),
            "admin got 'existing user linked'",
        )?;
        self.stripe_journey(&run).await?;
        self.paystack_journey(&run).await?;
        self.admin_cli(&member).await?;
        self.leaps_journey(&run, &member, &session).await?;
        self.pay_then_activate(&run).await?;
        self.say("\nAll demo checks passed.");
        Ok(())
    }
}
