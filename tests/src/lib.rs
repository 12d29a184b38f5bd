//! Test harness: a fresh local stack per test (its own table, queues, admin
//! address and ephemeral port) on the moto server `make test` starts.

pub mod fault_proxy;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gatehouse::config::{Secret, Settings, EMBEDDED_PLANS};
use gatehouse::domain::{CourseCatalog, Email, PlanCatalog};
use gatehouse::service::Clock;
use gatehouse::signature::hmac_sha256_hex;
use gatehouse_local::bootstrap::ResourceNames;
use gatehouse_local::inspect::Snapshot;
use gatehouse_local::moto::{sent_emails, SentEmail};
use gatehouse_local::{LocalStack, StackConfig};
use serde_json::Value;

pub const KAJABI_SECRET: &str = "test-kajabi-secret-0123456789";
pub const URL_TOKENS: [&str; 2] = ["test-url-token-old", "test-url-token-new"];
pub const PAYSTACK_SECRET: &str = "sk_test_paystack_gatehouse";
/// The second is the older secret, still accepted during rotation.
pub const STRIPE_SECRETS: [&str; 2] = ["whsec_test_new_0123456789", "whsec_test_old_0123456789"];
pub const TOKEN_KEY: &str = "test-token-signing-key-0123456789abcdef";
/// Session keys, oldest first: `test-old` verifies, `test-new` signs.
pub const SESSION_KEYS: &str = "test-old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8,test-new:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
/// The local admin credentials tests sign with, and the principal they stand for.
pub const ADMIN_ACCESS_KEY: &str = "AKIDTESTADMIN0000001";
pub const ADMIN_SECRET_KEY: &str = "test-admin-secret-key-0123456789";
pub const ADMIN_PRINCIPAL: &str = "arn:aws:iam::000000000000:user/test-admin";
pub const SESSION_ISSUER: &str = "https://gatehouse.test";
pub const SESSION_AUDIENCE: &str = "gatehouse-members";

/// Seeded orderings each ordering property test plays: 32 keeps `make test`
/// inside its budget on 2 cores; `ORDERING_RUNS=500 cargo nextest run …`
/// plays more (the seeds are fixed, so a run repeats).
pub fn ordering_runs() -> u64 {
    std::env::var("ORDERING_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32)
}

/// The moto endpoint for tests (`make test` starts one on its own port).
pub fn endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5056".to_string())
}

pub fn random_suffix() -> String {
    hex::encode(rand::random::<[u8; 5]>())
}

/// Polls `probe` until it returns `Some`, failing the test at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A settable clock for expiry tests.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now())))
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
    pub fn clock(&self) -> Clock {
        let inner = Arc::clone(&self.0);
        Arc::new(move || *inner.lock().unwrap())
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The shipped course, and one matched by its Kajabi form (as v1 hooks carry it).
pub const TEST_COURSES: &str = r#"{"courses": {
    "ai_foundations_for_educators": {"name": "AI Foundations for Educators", "points": 20},
    "data_literacy": {"name": "Data Literacy", "points": 35, "forms": ["frm_data_literacy"]}
}}"#;

pub struct Options {
    pub email_pump: bool,
    pub clock: Option<Clock>,
    pub visibility_timeout: Option<u32>,
    pub queue_name: Option<String>,
    pub table_name: Option<String>,
    pub resend_global_per_minute: u32,
    /// Base URL of a fake Stripe API; sets a test secret key too.
    pub stripe_api: Option<String>,
    /// Base URL of a fake Paystack API; turns charge verification on.
    pub paystack_api: Option<String>,
    /// Setup links and APP_URL point at this stack (for the browser journey).
    pub urls_from_listener: bool,
    /// Failed logins allowed per address and per source IP.
    pub login_limits: (u32, u32),
    /// `ADMIN_PRINCIPALS` for the functions (default: the test admin).
    pub admin_principals: Option<String>,
    /// One fake server for every provider API (admin verify and sync):
    /// Stripe, Paystack and Kajabi keys are set; charge verification stays off.
    pub provider_apis: Option<String>,
    /// `KAJABI_VERIFY_PURCHASES` (with `provider_apis`, against its fake Kajabi).
    pub kajabi_verify_purchases: bool,
    /// The functions' AWS calls go through this endpoint (a fault proxy)
    /// instead of straight to moto.
    pub function_endpoint: Option<String>,
    /// `PAYMENTS_ENABLED` (on by default, as deployed).
    pub payments_enabled: bool,
}

/// The OAuth client the fake Kajabi API expects.
pub const KAJABI_CLIENT_ID: &str = "kajabi-test-client";
pub const KAJABI_CLIENT_SECRET: &str = "kajabi-test-client-secret";

/// The secret key the fake Stripe API expects.
pub const STRIPE_API_KEY: &str = "sk_test_gatehouse";

impl Default for Options {
    fn default() -> Self {
        Self {
            email_pump: true,
            clock: None,
            visibility_timeout: None,
            queue_name: None,
            table_name: None,
            resend_global_per_minute: 1000,
            stripe_api: None,
            paystack_api: None,
            urls_from_listener: false,
            login_limits: (5, 20),
            admin_principals: None,
            provider_apis: None,
            kajabi_verify_purchases: false,
            function_endpoint: None,
            payments_enabled: true,
        }
    }
}

pub enum Auth<'a> {
    Signature,
    Token(&'a str),
    BadSignature,
    None,
}

pub struct TestStack {
    pub stack: LocalStack,
    pub http: reqwest::Client,
    pub run: String,
    pub admin: String,
}

pub fn test_settings(run: &str, admin: &str, global_limit: u32) -> Settings {
    Settings {
        table_name: format!("gh-test-{run}"),
        email_queue_url: None,
        email_queue_name: None,
        kajabi_webhook_secret: Some(Secret::new(KAJABI_SECRET)),
        kajabi_url_tokens: URL_TOKENS.iter().map(|t| Secret::new(*t)).collect(),
        stripe_webhook_secrets: STRIPE_SECRETS.iter().map(|t| Secret::new(*t)).collect(),
        stripe_tolerance_secs: 300,
        stripe_api_base: "http://127.0.0.1:9".into(),
        stripe_secret_key: None,
        paystack_secret_key: Some(Secret::new(PAYSTACK_SECRET)),
        paystack_api_base: "http://127.0.0.1:9".into(),
        kajabi_api_base: "http://127.0.0.1:9".into(),
        kajabi_client_id: None,
        kajabi_client_secret: None,
        payments_enabled: true,
        paystack_verify_charges: false,
        kajabi_verify_purchases: false,
        provider_timeout: Duration::from_secs(2),
        provider_max_attempts: 3,
        past_due_grace: Duration::from_secs(7 * 86_400),
        token_signing_key: Some(Secret::new(TOKEN_KEY)),
        from_email: Email::parse("noreply@gatehouse.example").unwrap(),
        admin_email: Email::parse(admin).unwrap(),
        frontend_url: "http://app.test".into(),
        plans: PlanCatalog::from_json(EMBEDDED_PLANS).unwrap(),
        courses: CourseCatalog::from_json(TEST_COURSES).unwrap(),
        resend_per_address_per_hour: 3,
        resend_global_per_minute: global_limit,
        outbox_sweep_after: Duration::from_secs(900),
        setup_token_ttl: Duration::from_secs(24 * 3600),
        session_signing_keys: Some(Secret::new(SESSION_KEYS)),
        session_signing_kid: None,
        // Derived from the seeds by the local stack, as an operator derives it.
        session_public_keys: None,
        session_issuer: SESSION_ISSUER.into(),
        session_audience: SESSION_AUDIENCE.into(),
        session_ttl: Duration::from_secs(3600),
        app_url: "http://app.test/dashboard".into(),
        login_failures_per_address: 5,
        login_failures_per_ip: 20,
        login_window: Duration::from_secs(900),
        admin_principals: gatehouse::admin::AdminPrincipals::parse(ADMIN_PRINCIPAL).unwrap(),
    }
}

/// moto does not enforce IAM; the local stack checks every function's calls
/// against its policy in the template. A test fails when any call was refused,
/// even one whose error the code tolerated (a best-effort enqueue, say).
impl Drop for TestStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let denied = self.stack.iam.denied();
        assert!(
            denied.is_empty(),
            "calls the template's policies do not allow:\n{}",
            denied
                .iter()
                .map(|c| format!(
                    "  {} {}: {}",
                    c.function,
                    c.operation,
                    c.denied
                        .iter()
                        .map(|a| format!("{} on {}", a.action, a.loggable_resource()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let endpoint = endpoint();
        assert!(
            gatehouse_local::moto::is_up(&endpoint).await,
            "moto is not running at {endpoint}: run the tests with `make test`, which starts it"
        );
        let run = random_suffix();
        let admin = format!("admin-{run}@gatehouse.example");
        let queue = options
            .queue_name
            .unwrap_or_else(|| format!("gh-test-{run}-email"));
        let table = options
            .table_name
            .unwrap_or_else(|| format!("gh-test-{run}"));
        let mut settings = test_settings(&run, &admin, options.resend_global_per_minute);
        if let Some(base) = options.stripe_api {
            settings.stripe_api_base = base;
            settings.stripe_secret_key = Some(Secret::new(STRIPE_API_KEY));
        }
        (
            settings.login_failures_per_address,
            settings.login_failures_per_ip,
        ) = options.login_limits;
        if let Some(base) = &options.provider_apis {
            settings.stripe_api_base = base.clone();
            settings.stripe_secret_key = Some(Secret::new(STRIPE_API_KEY));
            settings.paystack_api_base = base.clone();
            settings.kajabi_api_base = base.clone();
            settings.kajabi_client_id = Some(KAJABI_CLIENT_ID.into());
            settings.kajabi_client_secret = Some(Secret::new(KAJABI_CLIENT_SECRET));
        }
        settings.kajabi_verify_purchases = options.kajabi_verify_purchases;
        settings.payments_enabled = options.payments_enabled;
        if let Some(list) = &options.admin_principals {
            settings.admin_principals = gatehouse::admin::AdminPrincipals::parse(list).unwrap();
        }
        if let Some(base) = options.paystack_api {
            settings.paystack_api_base = base;
            settings.paystack_verify_charges = true;
        }
        let config = StackConfig {
            endpoint,
            region: "us-east-1".into(),
            names: ResourceNames {
                table: table.clone(),
                dlq: format!("{queue}-dlq"),
                queue,
                visibility_timeout_override: options.visibility_timeout,
            },
            settings,
            addr: "127.0.0.1:0".parse().unwrap(),
            template_path: gatehouse_local::env::workspace_root().join("infra/template.yaml"),
            run_email_pump: options.email_pump,
            sweep_every: None,
            run_schedules: false,
            urls_from_listener: options.urls_from_listener,
            admin: Some(gatehouse_local::sigv4::AdminCredentials {
                access_key_id: ADMIN_ACCESS_KEY.into(),
                secret_access_key: Secret::new(ADMIN_SECRET_KEY),
                principal_arn: ADMIN_PRINCIPAL.into(),
                region: "us-east-1".into(),
            }),
            clock: options.clock,
            function_endpoint: options.function_endpoint,
        };
        let stack = LocalStack::start(config).await.expect("local stack starts");
        Self {
            stack,
            http: reqwest::Client::new(),
            run,
            admin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.stack.base_url(), path)
    }

    /// A recipient address unique to this test.
    pub fn email(&self, name: &str) -> String {
        format!("{name}.{}@example.com", self.run)
    }

    pub fn id(&self, name: &str) -> String {
        format!("{name}_{}", self.run)
    }

    pub async fn post_kajabi(&self, body: &str, auth: Auth<'_>) -> (u16, Value) {
        self.post_kajabi_as(body, auth, "application/json").await
    }

    pub async fn post_kajabi_as(
        &self,
        body: &str,
        auth: Auth<'_>,
        content_type: &str,
    ) -> (u16, Value) {
        let path = match auth {
            Auth::Token(t) => format!("/webhooks/kajabi?token={t}"),
            _ => "/webhooks/kajabi".to_string(),
        };
        let mut request = self
            .http
            .post(self.url(&path))
            .header("content-type", content_type)
            .body(body.to_string());
        match auth {
            Auth::Signature => {
                request = request.header(
                    "x-kajabi-signature",
                    hmac_sha256_hex(KAJABI_SECRET.as_bytes(), body.as_bytes()),
                )
            }
            Auth::BadSignature => {
                request = request.header(
                    "x-kajabi-signature",
                    hmac_sha256_hex(b"wrong", body.as_bytes()),
                )
            }
            Auth::Token(_) | Auth::None => {}
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a Stripe event signed with `secret` at `timestamp`.
    pub async fn post_stripe_at(&self, body: &str, secret: &str, timestamp: i64) -> (u16, Value) {
        self.post_stripe_with(body, Some(&stripe_header(body, secret, timestamp)))
            .await
    }

    pub async fn post_stripe(&self, body: &str) -> (u16, Value) {
        self.post_stripe_at(body, STRIPE_SECRETS[0], chrono::Utc::now().timestamp())
            .await
    }

    pub async fn post_stripe_with(&self, body: &str, header: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/webhooks/stripe"))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string());
        if let Some(h) = header {
            request = request.header("stripe-signature", h);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a Paystack event signed with the test secret key.
    pub async fn post_paystack(&self, body: &str) -> (u16, Value) {
        let sig =
            gatehouse::signature::hmac_sha512_hex(PAYSTACK_SECRET.as_bytes(), body.as_bytes());
        self.post_paystack_with(body, Some(&sig)).await
    }

    pub async fn post_paystack_with(&self, body: &str, signature: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/webhooks/paystack"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(sig) = signature {
            request = request.header("x-paystack-signature", sig);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends a request signed with the test admin's credentials (own signer).
    pub async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.admin_with_key(method, path, body, None).await
    }

    /// A client that signs as the test admin, for calls that are not JSON.
    /// Runs the admin CLI (what the binary runs) against this stack, signed
    /// with the test admin's credentials.
    pub async fn cli(&self, args: &[&str]) -> gatehouse_admin::Outcome {
        // `--local` reads these from infra/local.env unless the environment sets them.
        std::env::set_var("ADMIN_ACCESS_KEY_ID", ADMIN_ACCESS_KEY);
        std::env::set_var("ADMIN_SECRET_ACCESS_KEY", ADMIN_SECRET_KEY);
        let mut argv: Vec<String> =
            vec!["--local".into(), "--endpoint".into(), self.stack.base_url()];
        argv.extend(args.iter().map(|a| a.to_string()));
        gatehouse_admin::run(&argv).await
    }

    pub fn admin_client(&self) -> gatehouse_admin::AdminClient {
        gatehouse_admin::AdminClient::new(
            &self.stack.base_url(),
            aws_credential_types::Credentials::new(
                ADMIN_ACCESS_KEY,
                ADMIN_SECRET_KEY,
                None,
                None,
                "test",
            ),
            "us-east-1",
        )
    }

    pub async fn admin_with_key(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let answer = self
            .admin_client()
            .call(method, path, body, idempotency_key)
            .await
            .expect("admin request sent");
        (answer.status, answer.body)
    }

    pub async fn snapshot(&self) -> Snapshot {
        Snapshot::read(
            &self.stack.clients.dynamodb,
            self.stack.services.store.table(),
        )
        .await
        .expect("scan")
    }

    pub async fn emails_to(&self, address: &str) -> Vec<SentEmail> {
        sent_emails(&self.stack.endpoint)
            .await
            .expect("moto data")
            .into_iter()
            .filter(|m| m.is_to(address))
            .collect()
    }

    /// Waits until `address` has at least `count` emails.
    pub async fn wait_emails(&self, address: &str, count: usize) -> Vec<SentEmail> {
        eventually(
            &format!("{count} emails to {address}"),
            Duration::from_secs(20),
            || async {
                let emails = self.emails_to(address).await;
                (emails.len() >= count).then_some(emails)
            },
        )
        .await
    }

    /// A member `name` buys the `off_456` offer through Kajabi: their address
    /// and the setup token from the welcome email.
    pub async fn bought(&self, name: &str) -> (String, String) {
        let email = self.email(name);
        let (_, r) = self
            .post_kajabi(
                &purchase(&self.id(name), &email, "off_456"),
                Auth::Signature,
            )
            .await;
        assert_eq!(r["status"], "processed", "{r}");
        let (token, _) = self.wait_emails(&email, 1).await[0]
            .setup_link()
            .expect("the welcome email carries a setup link");
        (email, token)
    }

    /// Runs the sender over the queue until it is empty (for stacks without the pump).
    pub async fn drain_queue(&self) -> usize {
        let mut total = 0;
        loop {
            let n = gatehouse_local::glue::pump_once(
                &self.stack.clients.sqs,
                &self.stack.queue_url,
                &self.stack.sender,
                0,
            )
            .await
            .expect("pump");
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    pub async fn queue_depth(&self, url: &str) -> usize {
        let out = self
            .stack
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )
            .send()
            .await
            .expect("queue attributes");
        let attrs = out.attributes.unwrap_or_default();
        [
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<usize>().ok()))
        .sum()
    }
}

/// `t=…,v1=…` over `{t}.{body}`.
pub fn stripe_header(body: &str, secret: &str, timestamp: i64) -> String {
    let sig = hmac_sha256_hex(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={sig}")
}

/// A Stripe event envelope around `object`.
pub fn stripe_event(id: &str, event_type: &str, created: i64, object: Value) -> String {
    serde_json::json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": created,
        "livemode": false, "pending_webhooks": 1, "type": event_type, "data": {"object": object}})
    .to_string()
}

/// A Stripe subscription object for the premium monthly price.
pub fn stripe_subscription(
    sub_id: &str,
    customer: &str,
    status: &str,
    cancel_at_period_end: bool,
    period_end: i64,
) -> Value {
    serde_json::json!({"id": sub_id, "object": "subscription", "customer": customer, "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item", "current_period_end": period_end,
            "price": {"id": "price_premium_monthly", "object": "price", "product": "prod_premium_monthly"}}]}})
}

pub fn stripe_checkout(
    session_id: &str,
    customer: &str,
    email: &str,
    mode: &str,
    plan: Option<&str>,
) -> Value {
    let mut session = serde_json::json!({"id": session_id, "object": "checkout.session", "mode": mode, "payment_status": "paid",
        "customer": customer, "customer_details": {"email": email, "name": "Grace Hopper"}, "metadata": {}});
    if let Some(plan) = plan {
        session["metadata"]["plan"] = Value::String(plan.into());
    }
    session
}

/// A seed-dialect purchase body.
pub fn purchase(event_id: &str, email: &str, offer: &str) -> String {
    serde_json::json!({
        "type": "offer.purchased", "id": event_id,
        "member": {"id": "mem_1", "email": email, "first_name": "Ada", "last_name": "Lovelace"},
        "offer": {"id": offer, "name": "NSSA Annual Membership"}
    })
    .to_string()
}

pub fn lifecycle(kind: &str, event_id: &str, email: &str, extra: Value) -> String {
    let mut body = serde_json::json!({
        "type": format!("member.subscription.{kind}"), "id": event_id,
        "member": {"id": "mem_1", "email": email}, "offer": {"id": "off_456"}
    });
    if let (Some(obj), Some(more)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    body.to_string()
}

/// Delivers `bodies` in their order, except that some neighbours arrive
/// together: for each position whose bit of `seed` is set (cycling), that
/// delivery and the next are posted concurrently, as a provider's parallel
/// retries arrive. `seed` 0 delivers one at a time. Returns every answer.
pub async fn deliver_some_concurrently<F, Fut>(
    bodies: &[String],
    seed: u64,
    post: F,
) -> Vec<(u16, Value)>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = (u16, Value)>,
{
    let mut answers = Vec::with_capacity(bodies.len());
    let (mut i, mut bit) = (0, 0u32);
    while i < bodies.len() {
        if i + 1 < bodies.len() && (seed >> (bit % 64)) & 1 == 1 {
            let (a, b) = futures::join!(post(bodies[i].clone()), post(bodies[i + 1].clone()));
            answers.extend([a, b]);
            i += 2;
        } else {
            answers.push(post(bodies[i].clone()).await);
            i += 1;
        }
        bit += 1;
    }
    answers
}
