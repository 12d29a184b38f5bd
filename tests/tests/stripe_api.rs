//! The Stripe API client, against a local server serving Stripe's documented
//! line-items shape: a match, an unknown price, 404, 5xx and 429 with Retry-After.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use gatehouse::store::attr::get_s;
use gatehouse_e2e::{stripe_checkout, stripe_event, Options, TestStack, STRIPE_API_KEY};
use serde_json::json;

#[derive(Default)]
struct FakeStripe {
    calls: AtomicUsize,
    /// Customer id -> email, as `GET /v1/customers/{id}` answers.
    customers: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

fn json_body(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Stripe's 401 for a request without the test key.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {STRIPE_API_KEY}"));
    (!authorized).then(|| {
        json_body(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"type": "invalid_request_error"}}),
        )
    })
}

/// Session ids script the answer: `cs_ok_*`, `cs_unknown_*`, `cs_missing_*`,
/// `cs_down_*` (always 500) and `cs_busy_*` (429 once, then the items).
async fn line_items(
    State(fake): State<Arc<FakeStripe>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    let items = |price: &str, product: &str| {
        json_body(
            StatusCode::OK,
            json!({"object": "list", "url": format!("/v1/checkout/sessions/{id}/line_items"), "has_more": false,
                "data": [{"id": "li_1", "object": "item", "amount_total": 19900, "currency": "usd", "quantity": 1,
                    "price": {"id": price, "object": "price", "product": product, "type": "one_time", "unit_amount": 19900}}]}),
        )
    };
    if id.starts_with("cs_ok") {
        items("price_premium_lifetime", "prod_premium_lifetime")
    } else if id.starts_with("cs_unknown") {
        items("price_nope", "prod_nope")
    } else if id.starts_with("cs_busy") && n == 0 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response()
    } else if id.starts_with("cs_busy") {
        items("price_premium_lifetime", "prod_premium_lifetime")
    } else if id.starts_with("cs_down") {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    } else {
        json_body(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "resource_missing"}}),
        )
    }
}

/// Subscription ids script the answer: `sub_ok*` an active monthly
/// subscription in Stripe's documented shape, `sub_down*` 500, else 404.
async fn subscription(Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    if id.starts_with("sub_ok") {
        let customer = id.trim_start_matches("sub_ok_").to_string();
        json_body(
            StatusCode::OK,
            gatehouse_e2e::stripe_subscription(&id, &customer, "active", false, PERIOD_END),
        )
    } else if id.starts_with("sub_down") {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    } else {
        json_body(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "resource_missing"}}),
        )
    }
}

/// A customer the test registered, in Stripe's documented shape; `cus_down*`
/// answers 500, `cus_gone*` a deleted customer, anything else 404.
async fn customer(
    State(fake): State<Arc<FakeStripe>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = unauthorized(&headers) {
        return refused;
    }
    if id.starts_with("cus_down") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    if id.starts_with("cus_gone") {
        return json_body(
            StatusCode::OK,
            json!({"id": id, "object": "customer", "deleted": true}),
        );
    }
    let email = fake.customers.lock().unwrap().get(&id).cloned();
    match email {
        Some(email) => json_body(
            StatusCode::OK,
            json!({"id": id, "object": "customer", "email": email, "name": "Grace Hopper",
                "created": 1_700_000_000, "livemode": false, "metadata": {}}),
        ),
        None => json_body(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "resource_missing", "type": "invalid_request_error"}}),
        ),
    }
}

/// The period end the fake's subscriptions carry.
const PERIOD_END: i64 = 1_900_000_000;

async fn fake_stripe() -> (String, Arc<FakeStripe>) {
    let fake = Arc::new(FakeStripe::default());
    let app = axum::Router::new()
        .route("/v1/checkout/sessions/{id}/line_items", get(line_items))
        .route("/v1/subscriptions/{id}", get(subscription))
        .route("/v1/customers/{id}", get(customer))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

fn one_time(t: &TestStack, session: &str, email: &str) -> String {
    stripe_event(
        &t.id(session),
        "checkout.session.completed",
        Utc::now().timestamp(),
        stripe_checkout(
            &format!("{session}_{}", t.run),
            &t.id("cus"),
            email,
            "payment",
            None,
        ),
    )
}

#[tokio::test]
async fn plan_comes_from_line_items_when_metadata_has_none() {
    let (base, fake) = fake_stripe().await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(base),
        ..Options::default()
    })
    .await;
    let email = t.email("items");
    let (_, r) = t.post_stripe(&one_time(&t, "cs_ok", &email)).await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(get_s(subs[0], "plan_id"), Some("premium_lifetime"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    let (_, r) = t
        .post_stripe(&one_time(&t, "cs_unknown", &t.email("u")))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("price_nope"), "{r}");

    let (_, r) = t
        .post_stripe(&one_time(&t, "cs_missing", &t.email("m")))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("404"), "{r}");
}

#[tokio::test]
async fn a_busy_api_is_retried_after_retry_after_and_a_down_one_answers_503() {
    let (base, fake) = fake_stripe().await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(base),
        ..Options::default()
    })
    .await;
    let (_, r) = t
        .post_stripe(&one_time(&t, "cs_busy", &t.email("busy")))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "one 429, then the retry"
    );

    let body = one_time(&t, "cs_down", &t.email("down"));
    let (status, problem) = t.post_stripe(&body).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        5,
        "three bounded attempts"
    );
    // Nothing was recorded as final: Stripe's retry processes it again.
    let snap = t.snapshot().await;
    // A paid checkout is keyed by its session.
    let key = format!("checkout.paid:cs_down_{}", t.run);
    assert!(snap.event("stripe", &key).is_none());
}

#[tokio::test]
async fn without_a_secret_key_the_event_fails_with_the_reason() {
    let t = TestStack::start().await;
    let (_, r) = t
        .post_stripe(&one_time(&t, "cs_ok", &t.email("nokey")))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("STRIPE_SECRET_KEY"),
        "{r}"
    );
}

#[tokio::test]
async fn a_subscription_checkout_reads_its_subscription_and_grants_access_alone() {
    let (base, _fake) = fake_stripe().await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(base),
        ..Options::default()
    })
    .await;
    let checkout = |session: &str, customer: &str, email: &str, sub: &str| {
        let mut object = stripe_checkout(session, customer, email, "subscription", None);
        object["subscription"] = json!(sub);
        stripe_event(
            &format!("evt_{session}"),
            "checkout.session.completed",
            Utc::now().timestamp() - 5,
            object,
        )
    };
    let state = |snap: &gatehouse_local::inspect::Snapshot, email: &str| {
        let user = snap.user_by_email(email).expect("user");
        snap.subscriptions_of(get_s(user, "user_id").unwrap())
            .first()
            .map(|s| {
                (
                    get_s(s, "state").unwrap().to_string(),
                    get_s(s, "provider_ref").map(str::to_string),
                )
            })
    };

    // No subscription event has arrived; the checkout alone grants access.
    let (email, customer) = (t.email("alone"), t.id("cus_alone"));
    let sub = format!("sub_ok_{customer}");
    let session = t.id("cs_alone");
    let (_, r) = t
        .post_stripe(&checkout(&session, &customer, &email, &sub))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    assert_eq!(
        state(&snap, &email),
        Some(("active".into(), Some(sub.clone())))
    );
    let read = snap
        .event("stripe", &format!("checkout.paid:{session}:subscription"))
        .expect("the read is recorded as an event");
    assert_eq!(get_s(read, "status"), Some("processed"));
    // The subscription's own, older event changes nothing.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("evt_created"),
            "customer.subscription.created",
            Utc::now().timestamp() - 10,
            gatehouse_e2e::stripe_subscription(&sub, &customer, "active", false, PERIOD_END),
        ))
        .await;
    assert_eq!(r["status"], "superseded", "{r}");

    // Stripe's API down: the checkout still makes the account, and the
    // subscription's own event grants access.
    let (email, customer) = (t.email("apidown"), t.id("cus_down"));
    let sub = format!("sub_down_{customer}");
    let (status, r) = t
        .post_stripe(&checkout(&t.id("cs_down"), &customer, &email, &sub))
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("processed")),
        "{r}"
    );
    assert_eq!(state(&t.snapshot().await, &email), None, "nothing read");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("evt_down_created"),
            "customer.subscription.created",
            Utc::now().timestamp(),
            gatehouse_e2e::stripe_subscription(&sub, &customer, "active", false, PERIOD_END),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(
        state(&t.snapshot().await, &email),
        Some(("active".into(), Some(sub)))
    );
}

#[tokio::test]
async fn an_unmapped_customer_of_a_known_member_is_resolved_through_stripes_api() {
    let (base, fake) = fake_stripe().await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(base),
        ..Options::default()
    })
    .await;
    // A member Gatehouse knows (a Kajabi buyer) starts a Stripe subscription;
    // its events arrive before the checkout.
    let email = t.email("known");
    let (_, r) = t
        .post_kajabi(
            &gatehouse_e2e::purchase(&t.id("kbuy"), &email, "off_456"),
            gatehouse_e2e::Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let customer = t.id("cus_known");
    fake.customers
        .lock()
        .unwrap()
        .insert(customer.clone(), email.to_uppercase());
    let subscription_event = |id: &str, customer: &str, sub: &str| {
        stripe_event(
            &t.id(id),
            "customer.subscription.created",
            Utc::now().timestamp(),
            gatehouse_e2e::stripe_subscription(sub, customer, "active", false, PERIOD_END),
        )
    };
    let sub = t.id("sub_known");
    let (_, r) = t
        .post_stripe(&subscription_event("e_known", &customer, &sub))
        .await;
    assert_eq!(r["status"], "processed", "applied at once: {r}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let stripe_rows: Vec<_> = snap
        .subscriptions_of(get_s(user, "user_id").unwrap())
        .into_iter()
        .filter(|s| get_s(s, "provider") == Some("stripe"))
        .collect();
    assert_eq!(stripe_rows.len(), 1);
    assert_eq!(get_s(stripe_rows[0], "state"), Some("active"));
    // The customer is now mapped: its next event needs no API call.
    let customer_item = snap
        .of_kind("PROVIDER_CUSTOMER")
        .into_iter()
        .find(|c| get_s(c, "pk") == Some(format!("CUSTOMER#stripe#{customer}").as_str()))
        .expect("the customer is mapped");
    assert_eq!(get_s(customer_item, "user_id"), get_s(user, "user_id"));

    // A customer whose email has no account yet, a deleted customer, and
    // Stripe's API down: each waits for its checkout, as without the API.
    let stranger = t.id("cus_stranger");
    fake.customers
        .lock()
        .unwrap()
        .insert(stranger.clone(), t.email("stranger"));
    for (id, cus) in [
        ("e_stranger", stranger),
        ("e_gone", t.id("cus_gone")),
        ("e_down", t.id("cus_down")),
    ] {
        let (status, r) = t
            .post_stripe(&subscription_event(id, &cus, &t.id(&format!("sub_{id}"))))
            .await;
        assert_eq!(
            (status, r["status"].as_str()),
            (200, Some("pending")),
            "{id}: {r}"
        );
    }
}
