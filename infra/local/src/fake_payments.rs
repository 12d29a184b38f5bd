//! A local stand-in for Stripe's and Paystack's checkout APIs and hosted
//! pages, serving their documented shapes and errors (see
//! `docs/providers.md`): Stripe's `POST /v1/checkout/sessions` (form body,
//! `Idempotency-Key`), `GET /v1/checkout/sessions/{id}` and
//! `GET /v1/subscriptions/{id}`; Paystack's `POST /transaction/initialize`
//! and `GET /transaction/verify/:reference`. The hosted pages have a "Pay"
//! button that settles the payment, sends the signed webhook, and redirects
//! back to the return URL; tests can instead settle a payment and build its
//! webhook by hand, to deliver the webhook and the return in either order.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};

/// What the fake's hosted page does when "Pay" is pressed.
#[derive(Clone, Debug, Default)]
pub struct WebhookTarget {
    /// The stack's base URL; the webhook goes to `/webhooks/stripe` or `/webhooks/paystack`.
    pub base_url: String,
    pub stripe_secret: String,
    pub paystack_secret: String,
}

/// A form body, in its order.
pub type Form = Vec<(String, String)>;

#[derive(Default)]
struct Fake {
    stripe_key: String,
    paystack_key: String,
    base: Mutex<String>,
    sessions: Mutex<BTreeMap<String, Value>>,
    /// Idempotency-Key -> (form, answer).
    idempotency: Mutex<HashMap<String, (Form, Value)>>,
    subscriptions: Mutex<BTreeMap<String, Value>>,
    transactions: Mutex<BTreeMap<String, Value>>,
    /// Paystack subscriptions by code.
    paystack_subscriptions: Mutex<BTreeMap<String, Value>>,
    /// Every Billing Portal session asked for: (customer, return_url).
    portals: Mutex<Vec<(String, String)>>,
    /// Stripe customers and their addresses.
    customers: Mutex<BTreeMap<String, String>>,
    /// What the stack answered each webhook the hosted pages sent.
    webhook_answers: Mutex<Vec<Value>>,
    counter: AtomicU64,
    /// The last event's `created`: each event is a second after the one before,
    /// as a test's changes would be at Stripe.
    last_event_at: std::sync::atomic::AtomicI64,
    /// Answer every create with a 5xx, as a provider outage does.
    down: AtomicBool,
    /// Every checkout-create request: (Idempotency-Key, form) for Stripe.
    stripe_creates: Mutex<Vec<(String, Form)>>,
    paystack_initializes: Mutex<Vec<Value>>,
    target: Mutex<Option<WebhookTarget>>,
    /// Send `customer.subscription.updated` when the API changes a subscription.
    subscription_updates: AtomicBool,
}

/// A running fake; dropped with the test (its task ends with the runtime).
#[derive(Clone)]
pub struct FakePayments {
    pub base_url: String,
    fake: Arc<Fake>,
}

fn reply(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn stripe_error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    reply(status, json!({ "error": error }))
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// A short random tag, so ids from two runs never collide in one table.
fn suffix() -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().gen();
    format!("{n:08x}")
}

/// Stripe's 401 for a request without the fake's secret key.
fn stripe_refuses(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    (bearer(headers) != fake.stripe_key).then(|| {
        stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "Invalid API Key provided",
        )
    })
}

/// Paystack's 401 for a request without the fake's secret key.
fn paystack_refuses(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    (bearer(headers) != fake.paystack_key)
        .then(|| paystack_reply(StatusCode::UNAUTHORIZED, false, "Invalid key", None))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Price id -> (amount in cents, recurring): the prices the shipped plans sell.
fn stripe_price(price: &str) -> (i64, bool) {
    match price {
        "price_premium_monthly" => (1500, true),
        "price_premium_yearly" => (15000, true),
        "price_premium_lifetime" => (49900, false),
        "price_premium_90_day_pass" => (3900, false),
        _ => (1000, false),
    }
}

async fn create_session(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = stripe_refuses(&fake, &headers) {
        return refused;
    }
    if fake.down.load(Ordering::SeqCst) {
        return stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "An unknown error occurred",
        );
    }
    let form = gatehouse::http::parse_query(&body);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    fake.stripe_creates
        .lock()
        .unwrap()
        .push((key.clone(), form.clone()));
    if let Some((first_form, answer)) = fake.idempotency.lock().unwrap().get(&key) {
        if *first_form != form {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
            );
        }
        return reply(StatusCode::OK, answer.clone());
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(price) = field("line_items[0][price]") else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: line_items.",
        );
    };
    let mode = field("mode").unwrap_or_default();
    let (amount, recurring) = stripe_price(&price);
    if recurring != (mode == "subscription") {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "You must provide at least one recurring price in `subscription` mode when using prices.",
        );
    }
    let n = fake.counter.fetch_add(1, Ordering::SeqCst);
    let id = format!("cs_test_{n:04}{}", suffix());
    let base = fake.base.lock().unwrap().clone();
    let map_of = |prefix: &str| -> serde_json::Map<String, Value> {
        form.iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(']'))
                    .map(|name| (name.to_string(), json!(v)))
            })
            .collect()
    };
    let metadata = map_of("metadata[");
    // Only `subscription_data[metadata]` reaches the subscription.
    let subscription_metadata = map_of("subscription_data[metadata][");
    let session = json!({
        "id": id, "object": "checkout.session", "mode": mode,
        "url": format!("{base}/checkout/pay/{id}"),
        "status": "open", "payment_status": "unpaid",
        "customer": field("customer"), "customer_email": field("customer_email"),
        "customer_details": null,
        "client_reference_id": field("client_reference_id"),
        "metadata": metadata,
        "amount_total": amount, "currency": "usd",
        "payment_intent": null, "subscription": null,
        "success_url": field("success_url"), "cancel_url": field("cancel_url"),
        "created": now(), "expires_at": now() + 86_400, "livemode": false,
        "line_items_price": price,
        "subscription_metadata": subscription_metadata,
    });
    fake.sessions
        .lock()
        .unwrap()
        .insert(id.clone(), session.clone());
    let answer = without_private(&session);
    fake.idempotency
        .lock()
        .unwrap()
        .insert(key, (form, answer.clone()));
    reply(StatusCode::OK, answer)
}

/// The session as Stripe answers it (the fake's own notes removed).
fn without_private(session: &Value) -> Value {
    let mut session = session.clone();
    if let Some(o) = session.as_object_mut() {
        o.remove("line_items_price");
        o.remove("subscription_metadata");
    }
    session
}

async fn get_session(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = stripe_refuses(&fake, &headers) {
        return refused;
    }
    match fake.sessions.lock().unwrap().get(&id) {
        Some(session) => reply(StatusCode::OK, without_private(session)),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such checkout.session: '{id}'"),
        ),
    }
}

async fn get_subscription(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = stripe_refuses(&fake, &headers) {
        return refused;
    }
    match fake.subscriptions.lock().unwrap().get(&id) {
        Some(sub) => reply(StatusCode::OK, sub.clone()),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such subscription: '{id}'"),
        ),
    }
}

/// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`.
async fn update_subscription(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = stripe_refuses(&fake, &headers) {
        return refused;
    }
    let form = gatehouse::http::parse_query(&body);
    let updated = {
        let mut subscriptions = fake.subscriptions.lock().unwrap();
        subscriptions.get_mut(&id).map(|sub| {
            if let Some((_, cancel)) = form.iter().find(|(k, _)| k == "cancel_at_period_end") {
                sub["cancel_at_period_end"] = json!(cancel == "true");
            }
            sub.clone()
        })
    };
    let Some(answer) = updated else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such subscription: '{id}'"),
        );
    };
    if fake.subscription_updates.load(Ordering::SeqCst) {
        let handle = FakePayments {
            base_url: fake.base.lock().unwrap().clone(),
            fake: fake.clone(),
        };
        handle.send_stripe_subscription_webhook(&id).await;
    }
    reply(StatusCode::OK, answer)
}

/// `POST /v1/billing_portal/sessions`.
async fn billing_portal(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = stripe_refuses(&fake, &headers) {
        return refused;
    }
    let form = gatehouse::http::parse_query(&body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let customer = field("customer");
    if customer.is_empty() {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: customer.",
        );
    }
    fake.portals
        .lock()
        .unwrap()
        .push((customer.clone(), field("return_url")));
    let n = fake.counter.fetch_add(1, Ordering::SeqCst);
    reply(
        StatusCode::OK,
        json!({"id": format!("bps_{n:04}"), "object": "billing_portal.session", "customer": customer,
            "return_url": field("return_url"), "created": now(), "livemode": false,
            "url": format!("https://billing.stripe.com/p/session/test_{n:04}")}),
    )
}

fn paystack_reply(status: StatusCode, ok: bool, message: &str, data: Option<Value>) -> Response {
    let mut body = json!({"status": ok, "message": message});
    if let Some(data) = data {
        body["data"] = data;
    }
    reply(status, body)
}

async fn initialize(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    if let Some(refused) = paystack_refuses(&fake, &headers) {
        return refused;
    }
    if fake.down.load(Ordering::SeqCst) {
        return paystack_reply(StatusCode::BAD_GATEWAY, false, "An error occurred", None);
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return paystack_reply(StatusCode::BAD_REQUEST, false, "Invalid JSON", None);
    };
    fake.paystack_initializes
        .lock()
        .unwrap()
        .push(request.clone());
    let text = |k: &str| request.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(email), Some(amount)) = (
        text("email"),
        request.get("amount").and_then(|a| {
            a.as_i64()
                .or_else(|| a.as_str().and_then(|s| s.parse().ok()))
        }),
    ) else {
        return paystack_reply(
            StatusCode::BAD_REQUEST,
            false,
            "Invalid Email Address Passed",
            None,
        );
    };
    let reference = text("reference").unwrap_or_else(suffix);
    let mut transactions = fake.transactions.lock().unwrap();
    if transactions.contains_key(&reference) {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"status": false, "message": "Duplicate Transaction Reference",
                "meta": {"nextStep": "Try and create the Transaction or Charge with a new reference"},
                "type": "validation_error", "code": "duplicate_reference"}),
        );
    }
    let n = fake.counter.fetch_add(1, Ordering::SeqCst);
    let plan = text("plan");
    let access_code = format!("ac{n:04}{}", suffix());
    let created = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();
    let transaction = json!({
        "id": 4_000_000_000u64 + n, "domain": "test", "status": "abandoned",
        "reference": reference, "amount": amount, "requested_amount": amount,
        "currency": text("currency").unwrap_or_else(|| "NGN".into()),
        "gateway_response": "The transaction was not completed",
        "paid_at": null, "created_at": created, "channel": "card",
        "metadata": request.get("metadata").cloned().unwrap_or(json!("")),
        "customer": {"id": 180_000_000u64 + n, "email": email,
            "customer_code": format!("CUS_{n:04}{}", suffix()),
            "first_name": null, "last_name": null},
        "plan": plan,
        "plan_object": match &plan {
            Some(code) => json!({"plan_code": code, "name": code, "interval": "monthly", "amount": amount}),
            None => json!({}),
        },
        "callback_url": text("callback_url"),
    });
    transactions.insert(reference.clone(), transaction);
    let base = fake.base.lock().unwrap().clone();
    paystack_reply(
        StatusCode::OK,
        true,
        "Authorization URL created",
        Some(
            json!({"authorization_url": format!("{base}/paystack/pay/{access_code}?reference={reference}"),
            "access_code": access_code, "reference": reference}),
        ),
    )
}

/// `GET /subscription/{code}`.
async fn fetch_paystack_subscription(
    State(fake): State<Arc<Fake>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = paystack_refuses(&fake, &headers) {
        return refused;
    }
    match fake.paystack_subscriptions.lock().unwrap().get(&code) {
        Some(sub) => paystack_reply(
            StatusCode::OK,
            true,
            "Subscription retrieved",
            Some(sub.clone()),
        ),
        None => paystack_reply(StatusCode::NOT_FOUND, false, "Subscription not found", None),
    }
}

/// `POST /subscription/disable` and `/subscription/enable`: `{code, token}`.
async fn toggle_paystack_subscription(
    fake: Arc<Fake>,
    headers: HeaderMap,
    body: String,
    enable: bool,
) -> Response {
    if let Some(refused) = paystack_refuses(&fake, &headers) {
        return refused;
    }
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let code = request["code"].as_str().unwrap_or_default();
    let mut subscriptions = fake.paystack_subscriptions.lock().unwrap();
    match subscriptions.get_mut(code) {
        Some(sub) if sub["email_token"] == request["token"] => {
            sub["status"] = json!(if enable { "active" } else { "cancelled" });
            let message = if enable {
                "Subscription enabled successfully"
            } else {
                "Subscription disabled successfully"
            };
            paystack_reply(StatusCode::OK, true, message, None)
        }
        Some(_) => paystack_reply(StatusCode::BAD_REQUEST, false, "Invalid token", None),
        None => paystack_reply(StatusCode::NOT_FOUND, false, "Subscription not found", None),
    }
}

async fn disable_paystack_subscription(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    toggle_paystack_subscription(fake, headers, body, false).await
}

async fn enable_paystack_subscription(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    toggle_paystack_subscription(fake, headers, body, true).await
}

/// `GET /subscription/{code}/manage/link`.
async fn paystack_manage_link(
    State(fake): State<Arc<Fake>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = paystack_refuses(&fake, &headers) {
        return refused;
    }
    if !fake
        .paystack_subscriptions
        .lock()
        .unwrap()
        .contains_key(&code)
    {
        return paystack_reply(StatusCode::NOT_FOUND, false, "Subscription not found", None);
    }
    paystack_reply(
        StatusCode::OK,
        true,
        "Link generated",
        Some(
            json!({"link": format!("https://paystack.com/manage/subscriptions/{code}?subscription_token=test")}),
        ),
    )
}

/// A transaction as verify answers it (the fake's own notes removed).
fn verify_view(transaction: &Value) -> Value {
    let mut data = transaction.clone();
    if let Some(o) = data.as_object_mut() {
        o.remove("callback_url");
        o.remove("subscription_code");
        // Verify answers metadata as the API reference says it is sent: a JSON string.
        if let Some(meta) = o.get("metadata").filter(|m| m.is_object()).cloned() {
            o.insert("metadata".into(), json!(meta.to_string()));
        }
    }
    data
}

async fn verify(
    State(fake): State<Arc<Fake>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = paystack_refuses(&fake, &headers) {
        return refused;
    }
    match fake.transactions.lock().unwrap().get(&reference) {
        Some(t) => paystack_reply(
            StatusCode::OK,
            true,
            "Verification successful",
            Some(verify_view(t)),
        ),
        None => paystack_reply(
            StatusCode::NOT_FOUND,
            false,
            "Transaction reference not found",
            None,
        ),
    }
}

/// The hosted Stripe page: "Pay" settles the session, sends the webhook,
/// and returns the buyer to the success URL; "Cancel" goes to the cancel URL.
async fn stripe_page(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Response {
    let Some(session) = fake.sessions.lock().unwrap().get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    };
    let cancel = session["cancel_url"]
        .as_str()
        .unwrap_or_default()
        .replace("{CHECKOUT_SESSION_ID}", &id);
    hosted_page(
        "Stripe Checkout (local fake)",
        &format!("/checkout/pay/{id}"),
        &cancel,
    )
}

async fn paystack_page(
    State(fake): State<Arc<Fake>>,
    Path(_code): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let reference = gatehouse::http::parse_query(&query.unwrap_or_default())
        .into_iter()
        .find(|(k, _)| k == "reference")
        .map(|(_, v)| v)
        .unwrap_or_default();
    if !fake.transactions.lock().unwrap().contains_key(&reference) {
        return (StatusCode::NOT_FOUND, "no such transaction").into_response();
    }
    hosted_page(
        "Paystack Checkout (local fake)",
        &format!("/paystack/pay/{reference}"),
        "",
    )
}

fn hosted_page(title: &str, pay_action: &str, cancel: &str) -> Response {
    let cancel_link = if cancel.is_empty() {
        String::new()
    } else {
        format!(
            "<a id=\"cancel\" href=\"{}\">Cancel</a>",
            gatehouse::email::escape_html(cancel)
        )
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
         <h1>{title}</h1><form method=\"post\" action=\"{pay_action}\">\
         <button id=\"pay\" type=\"submit\">Pay</button></form>{cancel_link}</body></html>"
    );
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

async fn stripe_pay(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Response {
    let handle = FakePayments {
        base_url: fake.base.lock().unwrap().clone(),
        fake: fake.clone(),
    };
    let Some(session) = handle.pay_stripe(&id) else {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    };
    handle.send_stripe_webhook(&id).await;
    let success = session["success_url"]
        .as_str()
        .unwrap_or_default()
        .replace("{CHECKOUT_SESSION_ID}", &id);
    (StatusCode::SEE_OTHER, [("location", success)]).into_response()
}

async fn paystack_pay(State(fake): State<Arc<Fake>>, Path(reference): Path<String>) -> Response {
    let handle = FakePayments {
        base_url: fake.base.lock().unwrap().clone(),
        fake: fake.clone(),
    };
    let Some(transaction) = handle.pay_paystack(&reference) else {
        return (StatusCode::NOT_FOUND, "no such transaction").into_response();
    };
    handle.send_paystack_webhook(&reference).await;
    // Paystack appends the reference (as `trxref` and `reference`) to the callback URL.
    let callback = transaction["callback_url"].as_str().unwrap_or_default();
    let joint = if callback.contains('?') { '&' } else { '?' };
    let location = format!("{callback}{joint}trxref={reference}&reference={reference}");
    (StatusCode::SEE_OTHER, [("location", location)]).into_response()
}

impl FakePayments {
    /// Starts the fake on a free local port, accepting these secret keys.
    pub async fn start(stripe_key: &str, paystack_key: &str) -> Self {
        let fake = Arc::new(Fake {
            stripe_key: stripe_key.to_string(),
            paystack_key: paystack_key.to_string(),
            ..Fake::default()
        });
        let app = axum::Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route(
                "/v1/subscriptions/{id}",
                get(get_subscription).post(update_subscription),
            )
            .route("/v1/billing_portal/sessions", post(billing_portal))
            .route("/subscription/disable", post(disable_paystack_subscription))
            .route("/subscription/enable", post(enable_paystack_subscription))
            .route("/subscription/{code}", get(fetch_paystack_subscription))
            .route(
                "/subscription/{code}/manage/link",
                get(paystack_manage_link),
            )
            .route("/transaction/initialize", post(initialize))
            .route("/transaction/verify/{reference}", get(verify))
            .route("/checkout/pay/{id}", get(stripe_page).post(stripe_pay))
            .route(
                "/paystack/pay/{code}",
                get(paystack_page).post(paystack_pay),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the fake payments server");
        let base_url = format!("http://{}", listener.local_addr().expect("local address"));
        *fake.base.lock().unwrap() = base_url.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url, fake }
    }

    /// Where "Pay" on a hosted page sends the signed webhook.
    pub fn send_webhooks_to(&self, target: WebhookTarget) {
        *self.fake.target.lock().unwrap() = Some(target);
    }

    /// From now on, a subscription the API changes sends its
    /// `customer.subscription.updated` (before the API answers), as Stripe does.
    pub fn send_subscription_updates(&self, on: bool) {
        self.fake.subscription_updates.store(on, Ordering::SeqCst);
    }

    /// Answer every checkout create with a 5xx from now on (or stop).
    pub fn set_down(&self, down: bool) {
        self.fake.down.store(down, Ordering::SeqCst);
    }

    /// Every `POST /v1/checkout/sessions`: its `Idempotency-Key` and form.
    pub fn stripe_creates(&self) -> Vec<(String, Form)> {
        self.fake.stripe_creates.lock().unwrap().clone()
    }

    /// Every `POST /transaction/initialize` body.
    pub fn paystack_initializes(&self) -> Vec<Value> {
        self.fake.paystack_initializes.lock().unwrap().clone()
    }

    /// A Stripe subscription as the fake holds it now.
    pub fn stripe_subscription(&self, id: &str) -> Option<Value> {
        self.fake.subscriptions.lock().unwrap().get(id).cloned()
    }

    pub fn stripe_session(&self, id: &str) -> Option<Value> {
        self.fake
            .sessions
            .lock()
            .unwrap()
            .get(id)
            .map(without_private)
    }

    /// Settles a session as Stripe does when the buyer pays: `complete` and
    /// `paid`, a customer, and the payment intent or the subscription.
    pub fn pay_stripe(&self, id: &str) -> Option<Value> {
        let mut sessions = self.fake.sessions.lock().unwrap();
        let session = sessions.get_mut(id)?;
        if session["status"] == "complete" {
            return Some(session.clone());
        }
        let n = self.fake.counter.fetch_add(1, Ordering::SeqCst);
        let suffix = suffix();
        let mut customers = self.fake.customers.lock().unwrap();
        // A known customer pays with its own address; a new buyer types theirs.
        let (customer, email) = match session["customer"].as_str() {
            Some(c) => (Some(c.to_string()), customers.get(c).cloned()),
            None => (None, session["customer_email"].as_str().map(str::to_string)),
        };
        let subscription = session["mode"] == "subscription";
        // Checkout makes a customer for a subscription; a one-time payment
        // stays a guest (`customer_creation` defaults to `if_required`).
        let customer = customer.or_else(|| subscription.then(|| format!("cus_{n:04}{suffix}")));
        if let (Some(c), Some(e)) = (&customer, &email) {
            customers.entry(c.clone()).or_insert_with(|| e.clone());
        }
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["customer"] = json!(customer);
        session["customer_details"] = json!({"email": email, "name": null});
        session["url"] = Value::Null;
        if subscription {
            let sub_id = format!("sub_{n:04}{suffix}");
            let price = session["line_items_price"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let product = price.replacen("price_", "prod_", 1);
            let period_end = now() + 31 * 86_400;
            self.fake.subscriptions.lock().unwrap().insert(
                sub_id.clone(),
                json!({"id": sub_id, "object": "subscription", "customer": customer, "status": "active",
                    "cancel_at_period_end": false,
                    "metadata": session["subscription_metadata"].clone(),
                    "items": {"object": "list", "data": [{"id": format!("si_{n:04}"), "object": "subscription_item",
                        "current_period_end": period_end,
                        "price": {"id": price, "object": "price", "product": product}}]}}),
            );
            session["subscription"] = json!(sub_id);
        } else {
            session["payment_intent"] = json!(format!("pi_{n:04}{suffix}"));
        }
        Some(without_private(session))
    }

    /// Lets a session lapse unpaid, as Stripe expires it.
    pub fn expire_stripe(&self, id: &str) {
        if let Some(session) = self.fake.sessions.lock().unwrap().get_mut(id) {
            session["status"] = json!("expired");
            session["url"] = Value::Null;
        }
    }

    /// `checkout.session.completed` for a settled session, as Stripe sends it.
    pub fn stripe_webhook_body(&self, id: &str) -> Option<String> {
        let session = without_private(self.fake.sessions.lock().unwrap().get(id)?);
        let n = self.fake.counter.fetch_add(1, Ordering::SeqCst);
        Some(
            json!({"id": format!("evt_{n:04}{}", suffix()), "object": "event",
                "api_version": "2025-03-31.basil", "created": self.event_time(), "livemode": false,
                "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
                "type": "checkout.session.completed", "data": {"object": session}})
            .to_string(),
        )
    }

    /// Settles a transaction as Paystack does when the buyer pays.
    pub fn pay_paystack(&self, reference: &str) -> Option<Value> {
        let mut transactions = self.fake.transactions.lock().unwrap();
        let t = transactions.get_mut(reference)?;
        t["status"] = json!("success");
        t["gateway_response"] = json!("Successful");
        t["paid_at"] = json!(chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string());
        // A plan's first charge starts its subscription, as Paystack does.
        if let (Some(_), None) = (t["plan"].as_str(), t["subscription_code"].as_str()) {
            let n = self.fake.counter.fetch_add(1, Ordering::SeqCst);
            let code = format!("SUB_{n:04}{}", suffix());
            let next = (chrono::Utc::now() + chrono::Duration::days(31))
                .format("%Y-%m-%dT%H:%M:%S.000Z")
                .to_string();
            let created = chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S.000Z")
                .to_string();
            self.fake.paystack_subscriptions.lock().unwrap().insert(
                code.clone(),
                json!({"id": n, "domain": "test", "status": "active", "subscription_code": code,
                    "email_token": format!("tok{n:04}{}", suffix()), "amount": t["amount"].clone(),
                    "cron_expression": "0 0 1 * *", "next_payment_date": next, "open_invoice": null,
                    "createdAt": created, "created_at": created,
                    "plan": t["plan_object"].clone(),
                    "customer": t["customer"].clone()}),
            );
            t["subscription_code"] = json!(code);
        }
        Some(t.clone())
    }

    /// The Paystack subscription a plan's first charge started.
    pub fn paystack_subscription_code(&self, reference: &str) -> Option<String> {
        self.fake.transactions.lock().unwrap().get(reference)?["subscription_code"]
            .as_str()
            .map(str::to_string)
    }

    /// `subscription.create` (as documented: no `email_token`), or, after a
    /// disable, `subscription.disable` (which carries it), for `code`.
    pub fn paystack_subscription_webhook_body(&self, code: &str) -> Option<String> {
        let sub = self
            .fake
            .paystack_subscriptions
            .lock()
            .unwrap()
            .get(code)?
            .clone();
        let (event, data) = if sub["status"] == "cancelled" {
            let mut data = sub.clone();
            data["status"] = json!("complete");
            ("subscription.disable", data)
        } else {
            let mut data = sub.clone();
            if let Some(o) = data.as_object_mut() {
                o.remove("email_token");
            }
            ("subscription.create", data)
        };
        Some(json!({"event": event, "data": data}).to_string())
    }

    /// A `created` for a new event: after now (Gatehouse orders what it read
    /// from the API at the read's own time, to the millisecond, and Stripe's
    /// seconds would tie with it) and after the event before.
    fn event_time(&self) -> i64 {
        let now = now() + 1;
        let mut last = self.fake.last_event_at.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self.fake.last_event_at.compare_exchange(
                last,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// `customer.subscription.updated` for a Stripe subscription as it stands.
    pub fn stripe_subscription_webhook_body(&self, id: &str) -> Option<String> {
        let sub = self.fake.subscriptions.lock().unwrap().get(id)?.clone();
        let n = self.fake.counter.fetch_add(1, Ordering::SeqCst);
        Some(
            json!({"id": format!("evt_{n:04}{}", suffix()), "object": "event",
                "api_version": "2025-03-31.basil", "created": self.event_time(), "livemode": false,
                "pending_webhooks": 1, "type": "customer.subscription.updated", "data": {"object": sub}})
            .to_string(),
        )
    }

    /// Keeps the stack's answer to a webhook; its status.
    async fn noted(&self, response: reqwest::Response) -> u16 {
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        self.fake.webhook_answers.lock().unwrap().push(body);
        status
    }

    /// What the stack answered each webhook sent (`{"status": "processed", ...}`).
    pub fn webhook_answers(&self) -> Vec<Value> {
        self.fake.webhook_answers.lock().unwrap().clone()
    }

    /// Changes what Paystack reports asked for a transaction, as a tampered
    /// or misconfigured payment would be.
    pub fn set_paystack_requested_amount(&self, reference: &str, amount: i64) {
        if let Some(t) = self.fake.transactions.lock().unwrap().get_mut(reference) {
            t["requested_amount"] = json!(amount);
            t["amount"] = json!(amount);
        }
    }

    /// Every Billing Portal session asked for: (customer, return URL).
    pub fn portals(&self) -> Vec<(String, String)> {
        self.fake.portals.lock().unwrap().clone()
    }

    /// `charge.success` for a transaction, as Paystack sends it: `plan` is an
    /// object there (`{}` without one), where verify answers a code.
    pub fn paystack_webhook_body(&self, reference: &str) -> Option<String> {
        let transaction = self
            .fake
            .transactions
            .lock()
            .unwrap()
            .get(reference)?
            .clone();
        let mut data = verify_view(&transaction);
        data["metadata"] = transaction["metadata"].clone();
        let plan_object = data["plan_object"].clone();
        if let Some(o) = data.as_object_mut() {
            o.remove("plan_object");
            o.insert("plan".into(), plan_object);
        }
        Some(json!({"event": "charge.success", "data": data}).to_string())
    }

    /// Sends a settled session's webhook, signed, to the configured target.
    pub async fn send_stripe_webhook(&self, id: &str) -> Option<u16> {
        let body = self.stripe_webhook_body(id)?;
        self.send_stripe_body(body).await
    }

    async fn send_stripe_body(&self, body: String) -> Option<u16> {
        let target = self.fake.target.lock().unwrap().clone()?;
        let t = now();
        let signature = gatehouse::signature::hmac_sha256_hex(
            target.stripe_secret.as_bytes(),
            format!("{t}.{body}").as_bytes(),
        );
        let response = reqwest::Client::new()
            .post(format!("{}/webhooks/stripe", target.base_url))
            .header("stripe-signature", format!("t={t},v1={signature}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        Some(self.noted(response).await)
    }

    /// Sends a subscription's `customer.subscription.updated`, signed, to the configured target.
    pub async fn send_stripe_subscription_webhook(&self, id: &str) -> Option<u16> {
        let body = self.stripe_subscription_webhook_body(id)?;
        self.send_stripe_body(body).await
    }

    /// Sends a transaction's `charge.success`, signed, to the configured target.
    pub async fn send_paystack_webhook(&self, reference: &str) -> Option<u16> {
        let target = self.fake.target.lock().unwrap().clone()?;
        let body = self.paystack_webhook_body(reference)?;
        let signature = gatehouse::signature::hmac_sha512_hex(
            target.paystack_secret.as_bytes(),
            body.as_bytes(),
        );
        let response = reqwest::Client::new()
            .post(format!("{}/webhooks/paystack", target.base_url))
            .header("x-paystack-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        Some(self.noted(response).await)
    }
}
