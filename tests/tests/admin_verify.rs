//! Admin verify and sync against one local server serving Stripe's, Paystack's
//! and Kajabi's documented response shapes. For each provider: a match, a
//! mismatch (then synced), the provider's 404, a 5xx (502 naming its status)
//! and a 429 with Retry-After (retried, then a match). And, with
//! `KAJABI_VERIFY_PURCHASES`, Kajabi purchases confirmed through the same fake.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatehouse_e2e::{
    stripe_checkout, stripe_event, stripe_subscription, Auth, Options, TestStack, KAJABI_CLIENT_ID,
    KAJABI_CLIENT_SECRET, PAYSTACK_SECRET, STRIPE_API_KEY, STRIPE_SECRETS,
};
use serde_json::{json, Value};

/// The period end every fake "match" reports and every stored subscription has.
const PERIOD_END: i64 = 1_830_000_000; // 2027-12-27
const PERIOD_END_ISO: &str = "2027-12-27T12:00:00.000Z";

#[derive(Default)]
struct Fake {
    /// Calls per id, to script "429 once".
    calls: Mutex<HashMap<String, usize>>,
    tokens_issued: AtomicUsize,
}

impl Fake {
    fn call(&self, id: &str) -> usize {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(id.to_string()).or_default();
        *n += 1;
        *n
    }
}

fn json_reply(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn busy() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1")],
        "slow down",
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn stripe_subscription_api(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    assert_eq!(bearer(&headers), format!("Bearer {STRIPE_API_KEY}"));
    let n = fake.call(&id);
    let object_for = |cancel: bool, price: &str, product: &str| {
        json_reply(
            StatusCode::OK,
            json!({"id": id, "object": "subscription", "status": "active", "cancel_at_period_end": cancel,
                "customer": "cus_x", "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": PERIOD_END,
                "price": {"id": price, "product": product}}]}}),
        )
    };
    let object = |cancel: bool| object_for(cancel, "price_premium_monthly", "prod_premium_monthly");
    match id.split('_').nth(1).unwrap_or("") {
        "match" => object(false),
        "otherplan" => object_for(false, "price_premium_lifetime", "prod_premium_lifetime"),
        "mismatch" => object(true),
        "down" => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"type": "api_error"}}),
        ),
        "busy" if n == 1 => busy(),
        "busy" => object(false),
        _ => json_reply(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "resource_missing", "message": format!("No such subscription: '{id}'")}}),
        ),
    }
}

async fn paystack_subscription_api(
    State(fake): State<Arc<Fake>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    assert_eq!(bearer(&headers), format!("Bearer {PAYSTACK_SECRET}"));
    let n = fake.call(&code);
    let data = |status: &str| {
        json_reply(
            StatusCode::OK,
            json!({"status": true, "message": "Subscription retrieved", "data": {"subscription_code": code,
                "status": status, "next_payment_date": PERIOD_END_ISO, "plan": {"plan_code": "PLN_premium_monthly"}}}),
        )
    };
    match code.split('_').nth(1).unwrap_or("") {
        "match" => data("active"),
        "mismatch" => data("non-renewing"),
        "down" => json_reply(StatusCode::BAD_GATEWAY, json!({"status": false})),
        "busy" if n == 1 => busy(),
        "busy" => data("active"),
        _ => json_reply(
            StatusCode::NOT_FOUND,
            json!({"status": false, "message": "Subscription not found"}),
        ),
    }
}

async fn kajabi_token(State(fake): State<Arc<Fake>>, body: String) -> Response {
    let form: HashMap<String, String> = gatehouse::http::parse_query(&body).into_iter().collect();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    if form.get("client_id").map(String::as_str) != Some(KAJABI_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(KAJABI_CLIENT_SECRET)
    {
        return json_reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    fake.tokens_issued.fetch_add(1, Ordering::SeqCst);
    json_reply(
        StatusCode::OK,
        json!({"access_token": "kat_test", "token_type": "Bearer", "expires_in": 7200}),
    )
}

async fn kajabi_purchases(
    State(fake): State<Arc<Fake>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query: HashMap<String, String> = gatehouse::http::parse_query(&raw.unwrap_or_default())
        .into_iter()
        .collect();
    if bearer(&headers) != "Bearer kat_test" {
        return json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"status": "401"}]}),
        );
    }
    let customer = query
        .get("filter[customer_id]")
        .cloned()
        .unwrap_or_default();
    let n = fake.call(&customer);
    let purchase = |deactivated: Value| {
        json_reply(
            StatusCode::OK,
            json!({"data": [{"id": "901", "type": "purchases",
                "attributes": {"amount_in_cents": 19900, "payment_type": "subscription", "deactivated_at": deactivated, "created_at": "2026-11-01T00:00:00Z"},
                "relationships": {"offer": {"data": {"id": "off_456", "type": "offers"}}, "customer": {"data": {"id": customer, "type": "customers"}}}}],
                "links": {"self": "/v1/purchases"}}),
        )
    };
    match customer.split('_').nth(1).unwrap_or("") {
        "match" => purchase(Value::Null),
        // A customer Kajabi knows with no purchase: an empty page.
        "none" => json_reply(
            StatusCode::OK,
            json!({"data": [], "links": {"self": "/v1/purchases"}}),
        ),
        "mismatch" => purchase(json!("2026-11-20T00:00:00Z")),
        "down" => json_reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"errors": []})),
        "busy" if n == 1 => busy(),
        "busy" => purchase(Value::Null),
        // The cached token was revoked early: one 401, then a fresh token works.
        "reauth" if n == 1 => json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"status": "401"}]}),
        ),
        "reauth" => purchase(Value::Null),
        _ => json_reply(
            StatusCode::NOT_FOUND,
            json!({"errors": [{"status": "404", "title": "Not Found"}]}),
        ),
    }
}

async fn fake_providers() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/v1/subscriptions/{id}", get(stripe_subscription_api))
        .route("/subscription/{code}", get(paystack_subscription_api))
        .route("/v1/oauth/token", post(kajabi_token))
        .route("/v1/purchases", get(kajabi_purchases))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

async fn verify(t: &TestStack, id: impl std::fmt::Display) -> (u16, Value) {
    t.admin(
        "GET",
        &format!("/admin/users/{id}/verify-subscription"),
        None,
    )
    .await
}

async fn sync(t: &TestStack, id: &str, key: &str) -> (u16, Value) {
    t.admin_with_key(
        "POST",
        &format!("/admin/users/{id}/sync-subscription"),
        None,
        Some(key),
    )
    .await
}

async fn user_id(t: &TestStack, email: &str) -> String {
    let prefix = email.split('@').next().unwrap();
    let (_, users) = t
        .admin("GET", &format!("/admin/users?email_prefix={prefix}"), None)
        .await;
    users["items"][0]["user_id"].as_str().unwrap().to_string()
}

/// A Stripe member whose subscription is `sub_<scenario>_<run>`.
async fn stripe_member(t: &TestStack, scenario: &str) -> String {
    let email = t.email(&format!("stripe-{scenario}"));
    let customer = format!("cus_{scenario}_{}", t.run);
    let checkout = stripe_event(
        &t.id(&format!("evt_co_{scenario}")),
        "checkout.session.completed",
        chrono::Utc::now().timestamp() - 10,
        stripe_checkout(
            &t.id(&format!("cs_{scenario}")),
            &customer,
            &email,
            "subscription",
            None,
        ),
    );
    let (_, r) = t.post_stripe(&checkout).await;
    assert_eq!(r["status"], "processed", "{r}");
    let created = stripe_event(
        &t.id(&format!("evt_sub_{scenario}")),
        "customer.subscription.created",
        chrono::Utc::now().timestamp() - 5,
        stripe_subscription(
            &format!("sub_{scenario}_{}", t.run),
            &customer,
            "active",
            false,
            PERIOD_END,
        ),
    );
    let (_, r) = t.post_stripe(&created).await;
    assert_eq!(r["status"], "processed", "{r}");
    let _ = STRIPE_SECRETS;
    user_id(t, &email).await
}

/// A Paystack member whose subscription code is `SUB_<scenario>_<run>`.
async fn paystack_member(t: &TestStack, scenario: &str) -> String {
    let email = t.email(&format!("paystack-{scenario}"));
    let n = ["match", "mismatch", "missing", "down", "busy"]
        .iter()
        .position(|s| *s == scenario)
        .unwrap() as u64;
    let charge = json!({"event": "charge.success", "data": {"id": 10 + n, "status": "success", "reference": t.id(&format!("ref_{scenario}")),
        "amount": 500000, "currency": "NGN", "paid_at": "2026-11-25T10:00:00.000Z",
        "customer": {"email": email, "customer_code": format!("CUS_{scenario}")},
        "plan": {"plan_code": "PLN_premium_monthly"}}});
    let (_, r) = t.post_paystack(&charge.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    let create = json!({"event": "subscription.create", "data": {"id": 100 + n, "subscription_code": format!("SUB_{scenario}_{}", t.run),
        "status": "active", "next_payment_date": PERIOD_END_ISO, "createdAt": "2026-11-25T10:00:01.000Z",
        "customer": {"email": email, "customer_code": format!("CUS_{scenario}")},
        "plan": {"plan_code": "PLN_premium_monthly"}}});
    let (_, r) = t.post_paystack(&create.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    user_id(t, &email).await
}

/// A Kajabi member whose Kajabi customer id is `mem_<scenario>_<run>`.
async fn kajabi_member(t: &TestStack, scenario: &str) -> String {
    let email = t.email(&format!("kajabi-{scenario}"));
    let body = json!({"type": "offer.purchased", "id": t.id(&format!("k_{scenario}")),
        "member": {"id": format!("mem_{scenario}_{}", t.run), "email": email}, "offer": {"id": "off_456"}});
    let (_, r) = t.post_kajabi(&body.to_string(), Auth::Signature).await;
    assert_eq!(r["status"], "processed", "{r}");
    user_id(t, &email).await
}

#[tokio::test]
async fn verify_and_sync_for_every_provider() {
    let (base, fake) = fake_providers().await;
    let t = TestStack::start_with(Options {
        provider_apis: Some(base),
        ..Default::default()
    })
    .await;
    for provider in ["stripe", "paystack", "kajabi"] {
        let member = |scenario: &'static str| {
            let t = &t;
            async move {
                match provider {
                    "stripe" => stripe_member(t, scenario).await,
                    "paystack" => paystack_member(t, scenario).await,
                    _ => kajabi_member(t, scenario).await,
                }
            }
        };

        // A match: nothing to do.
        let (status, report) = verify(&t, member("match").await).await;
        assert_eq!(status, 200, "{provider}: {report}");
        assert_eq!(report["mismatch"], false, "{provider}: {report}");
        assert_eq!(report["recommended_action"], Value::Null);
        assert_eq!(report["subscriptions"][0]["provider_status"]["found"], true);

        // A mismatch: reported, then synced through the state machine.
        let id = member("mismatch").await;
        let (status, report) = verify(&t, &id).await;
        assert_eq!(status, 200);
        assert_eq!(report["mismatch"], true, "{provider}: {report}");
        let diff = report["subscriptions"][0]["differences"][0]
            .as_str()
            .unwrap();
        assert!(
            diff.starts_with("state: stored active"),
            "{provider}: {diff}"
        );
        assert!(report["recommended_action"]
            .as_str()
            .unwrap()
            .contains("sync-subscription"));
        let (status, synced) = sync(&t, &id, &format!("sync-{provider}")).await;
        assert_eq!(status, 200, "{provider}: {synced}");
        let result = &synced["results"][0];
        assert_eq!(result["old_status"], "active");
        let expected = if provider == "kajabi" {
            "expired"
        } else {
            "canceled"
        };
        assert_eq!(result["new_status"], expected, "{provider}: {synced}");
        assert_eq!(result["applied"], true);
        let (_, after) = verify(&t, &id).await;
        assert_eq!(after["mismatch"], false, "{provider} after sync: {after}");
        let (_, again) = sync(&t, &id, &format!("sync-{provider}")).await;
        assert_eq!(again, synced, "a replayed key answers the same");

        // The provider's 404: a mismatch with nothing found.
        let (status, report) = verify(&t, member("missing").await).await;
        assert_eq!(status, 200, "{provider}: {report}");
        assert_eq!(report["mismatch"], true);
        assert_eq!(
            report["subscriptions"][0]["provider_status"]["found"],
            false
        );

        // A provider 5xx: 502 naming the provider's status.
        let (status, problem) = verify(&t, member("down").await).await;
        assert_eq!(status, 502, "{provider}: {problem}");
        let expected_status = match provider {
            "stripe" => 503,
            "paystack" => 502,
            _ => 500,
        };
        assert_eq!(
            problem["provider_status"], expected_status,
            "{provider}: {problem}"
        );
        assert!(problem["detail"].as_str().unwrap().contains(provider));

        // A 429 with Retry-After: retried after the wait, then a match.
        let started = std::time::Instant::now();
        let (status, report) = verify(&t, member("busy").await).await;
        assert_eq!(status, 200, "{provider}: {report}");
        assert_eq!(report["mismatch"], false);
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(900),
            "Retry-After: 1 was honoured"
        );
    }
    // The Kajabi token was fetched once per function (verify and sync each
    // hold their own, as their Lambdas do) and reused across calls.
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), 2);
    // Each sync is an admin event in the log.
    let (_, events) = t
        .admin("GET", "/admin/events?provider=admin&type=admin.sync", None)
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 6, "{events}");
}

#[tokio::test]
async fn kajabi_cancels_plan_changes_and_revoked_tokens() {
    let (base, fake) = fake_providers().await;
    let t = TestStack::start_with(Options {
        provider_apis: Some(base),
        ..Default::default()
    })
    .await;

    // Canceled in Gatehouse, still running at Kajabi (its purchases cannot say
    // "canceled"): a match, and sync changes nothing.
    let id = kajabi_member(&t, "match").await;
    let email = t.email("kajabi-match");
    let cancel = json!({"type": "member.subscription.canceled", "id": t.id("k_cancel"),
        "member": {"id": format!("mem_match_{}", t.run), "email": email}, "offer": {"id": "off_456"}});
    let (_, r) = t.post_kajabi(&cancel.to_string(), Auth::Signature).await;
    assert_eq!(r["status"], "processed", "{r}");
    let (status, report) = verify(&t, &id).await;
    assert_eq!(status, 200);
    assert_eq!(report["mismatch"], false, "{report}");
    let (_, synced) = sync(&t, &id, "sync-cancel").await;
    assert_eq!(synced["results"][0]["applied"], false, "{synced}");
    assert_eq!(synced["results"][0]["new_status"], "canceled");

    // A token revoked early: one 401, a fresh token, and the answer.
    let before = fake.tokens_issued.load(Ordering::SeqCst);
    let (status, report) = verify(&t, kajabi_member(&t, "reauth").await).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["mismatch"], false);
    assert_eq!(fake.tokens_issued.load(Ordering::SeqCst), before + 1);

    // The provider moved the subscription to another plan's price: reported,
    // and left to the provider's webhook rather than applied to the old plan.
    let id = stripe_member(&t, "otherplan").await;
    let (_, report) = verify(&t, &id).await;
    assert_eq!(report["mismatch"], true);
    let diff = report["subscriptions"][0]["differences"][0]
        .as_str()
        .unwrap();
    assert!(diff.starts_with("plan: stored premium_monthly"), "{diff}");
    let (_, synced) = sync(&t, &id, "sync-otherplan").await;
    assert_eq!(synced["results"][0]["applied"], false, "{synced}");
    assert!(synced["results"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("left to the provider"));
}

/// With `KAJABI_VERIFY_PURCHASES`, a purchase grants access only when Kajabi's
/// API confirms it; what the API denies is `failed` with the reason, Kajabi
/// down is a 503 (Kajabi retries), and a redelivery does not ask again.
#[tokio::test]
async fn kajabi_purchases_are_confirmed_through_kajabis_api_when_asked() {
    let (base, fake) = fake_providers().await;
    let t = TestStack::start_with(Options {
        provider_apis: Some(base),
        kajabi_verify_purchases: true,
        ..Default::default()
    })
    .await;
    let purchase = |scenario: &str, member_id: Option<String>| {
        let mut member = json!({"email": t.email(scenario)});
        if let Some(id) = member_id {
            member["id"] = json!(id);
        }
        json!({"type": "offer.purchased", "id": t.id(scenario), "member": member,
            "offer": {"id": "off_456"}})
        .to_string()
    };
    let customer = |scenario: &str| format!("mem_{scenario}_{}", t.run);
    let confirmed = purchase("match", Some(customer("match")));
    let (status, r) = t.post_kajabi(&confirmed, Auth::Signature).await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("processed")),
        "{r}"
    );
    let (_, r) = t.post_kajabi(&confirmed, Auth::Signature).await;
    assert_eq!(r["status"], "duplicate", "{r}");
    assert_eq!(
        fake.calls.lock().unwrap()[&customer("match")],
        1,
        "a redelivery is settled without asking Kajabi again"
    );
    for (scenario, member_id, expected) in [
        (
            "mismatch",
            Some(customer("mismatch")),
            "a deactivated purchase",
        ),
        ("none", Some(customer("none")), "no purchase"),
        ("unknown", Some(customer("unknown")), "404"),
        ("anonymous", None, "names no Kajabi customer id"),
    ] {
        let (status, r) = t
            .post_kajabi(&purchase(scenario, member_id), Auth::Signature)
            .await;
        assert_eq!(status, 200, "{scenario}: {r}");
        assert_eq!(r["status"], "failed", "{scenario}: {r}");
        assert!(
            r["reason"].as_str().unwrap_or_default().contains(expected),
            "{scenario}: {r}"
        );
        assert!(
            t.snapshot()
                .await
                .user_by_email(&t.email(scenario))
                .is_none(),
            "{scenario}: no account"
        );
    }
    // Kajabi's API down: transient, so Kajabi is asked to deliver again.
    let (status, r) = t
        .post_kajabi(&purchase("down", Some(customer("down"))), Auth::Signature)
        .await;
    assert_eq!(status, 503, "{r}");
    assert!(t.snapshot().await.user_by_email(&t.email("down")).is_none());
}
