//! POST /webhooks/paystack end to end, with charge verification against a local
//! server serving Paystack's documented `GET /transaction/verify/:reference` shape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse::store::attr::{get_n, get_s, get_ts};
use gatehouse_e2e::{Options, TestStack};
use serde_json::{json, Value};

#[derive(Default)]
struct FakePaystack {
    calls: AtomicUsize,
}

/// References script the answer: `ref_ok*` success, `ref_failed*` failed,
/// `ref_down*` 500, anything else 404.
async fn verify(State(fake): State<Arc<FakePaystack>>, Path(reference): Path<String>) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let body = |status: &str| {
        json!({"status": true, "message": "Verification successful", "data": {"id": 4099260516u64, "status": status,
            "reference": reference, "amount": 500000, "currency": "NGN", "paid_at": "2026-11-25T10:00:00.000Z"}})
        .to_string()
    };
    let reply = |code: StatusCode, text: String| {
        (code, [("content-type", "application/json")], text).into_response()
    };
    if reference.starts_with("ref_ok") {
        reply(StatusCode::OK, body("success"))
    } else if reference.starts_with("ref_failed") {
        reply(StatusCode::OK, body("failed"))
    } else if reference.starts_with("ref_down") {
        reply(StatusCode::INTERNAL_SERVER_ERROR, "{}".into())
    } else {
        reply(
            StatusCode::NOT_FOUND,
            json!({"status": false, "message": "Transaction reference not found"}).to_string(),
        )
    }
}

async fn fake_paystack() -> (String, Arc<FakePaystack>) {
    let fake = Arc::new(FakePaystack::default());
    let app = axum::Router::new()
        .route("/transaction/verify/{reference}", get(verify))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

fn charge(id: u64, reference: &str, email: &str) -> String {
    json!({"event": "charge.success", "data": {"id": id, "domain": "test", "status": "success", "reference": reference,
        "amount": 500000, "currency": "NGN", "paid_at": "2026-11-25T10:00:00.000Z", "channel": "card",
        "customer": {"id": 84312, "first_name": "Kola", "email": email, "customer_code": "CUS_hdhye17yj8qd2tx"},
        "plan": {"id": 1, "name": "Premium Monthly", "plan_code": "PLN_premium_monthly", "interval": "monthly"}}})
    .to_string()
}

/// A subscription event as Paystack documents it: `created_at` is when the
/// subscription was created (`subscription.create` also has `createdAt`), and
/// no field says when the change itself happened.
fn subscription(event: &str, email: &str, next_payment_date: &str, created_at: &str) -> String {
    let mut data = json!({"id": 5000, "subscription_code": "SUB_vsyqdmlzble3uii", "status": "active",
        "next_payment_date": next_payment_date, "created_at": created_at,
        "customer": {"email": email, "customer_code": "CUS_hdhye17yj8qd2tx"},
        "plan": {"plan_code": "PLN_premium_monthly", "interval": "monthly"}});
    if event == "subscription.create" {
        data["createdAt"] = json!(created_at);
    }
    json!({"event": event, "data": data}).to_string()
}

async fn sub_state(t: &TestStack, email: &str) -> (String, Option<chrono::DateTime<chrono::Utc>>) {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(email).expect("user");
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    (
        get_s(subs[0], "state").unwrap().to_string(),
        get_ts(subs[0], "access_until"),
    )
}

#[tokio::test]
async fn signature_is_hmac_sha512_of_the_body() {
    let t = TestStack::start().await;
    let body = charge(1, "ref_x", &t.email("sig"));
    let (status, problem) = t.post_paystack_with(&body, None).await;
    assert_eq!(status, 401);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("missing X-Paystack-Signature"));
    let wrong = gatehouse::signature::hmac_sha512_hex(b"not the key", body.as_bytes());
    let (status, problem) = t.post_paystack_with(&body, Some(&wrong)).await;
    assert_eq!(status, 401);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    assert!(t.snapshot().await.events().is_empty());
}

#[tokio::test]
async fn a_verified_charge_provisions_once_and_records_the_payment() {
    let (base, fake) = fake_paystack().await;
    let t = TestStack::start_with(Options {
        paystack_api: Some(base),
        ..Options::default()
    })
    .await;
    let email = t.email("kola");
    let reference = format!("ref_ok_{}", t.run);
    let body = charge(302961, &reference, &email);
    let (_, r) = t.post_paystack(&body).await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(r["event"], "paystack:charge.success:302961");
    // The same charge delivered twice has one effect.
    let (_, again) = t.post_paystack(&body).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "verified once");

    let (state, until) = sub_state(&t, &email).await;
    assert_eq!(state, "active");
    assert!(until.unwrap() > chrono::Utc::now() + chrono::Duration::days(30));
    let snap = t.snapshot().await;
    let payment = snap
        .of_kind("PAYMENT")
        .into_iter()
        .find(|p| get_s(p, "reference") == Some(reference.as_str()))
        .unwrap();
    assert_eq!(get_n(payment, "amount"), Some(500000), "minor units (kobo)");
    assert_eq!(get_s(payment, "currency"), Some("ngn"));
    assert_eq!(get_s(payment, "provider"), Some("paystack"));
    assert_eq!(
        get_s(snap.user_by_email(&email).unwrap(), "auth_provider"),
        Some("paystack")
    );
    let emails = t.wait_emails(&email, 1).await;
    assert!(emails[0].subject.starts_with("Welcome"));
    assert_eq!(t.wait_emails(&t.admin, 1).await.len(), 1);
}

#[tokio::test]
async fn unconfirmed_charges_grant_nothing_and_a_down_api_answers_503() {
    let (base, _fake) = fake_paystack().await;
    let t = TestStack::start_with(Options {
        paystack_api: Some(base),
        ..Options::default()
    })
    .await;
    let (_, r) = t
        .post_paystack(&charge(2, &format!("ref_failed_{}", t.run), &t.email("f")))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("status failed"),
        "{r}"
    );
    let (_, r) = t
        .post_paystack(&charge(3, &format!("ref_missing_{}", t.run), &t.email("m")))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("404"), "{r}");
    let (status, _) = t
        .post_paystack(&charge(4, &format!("ref_down_{}", t.run), &t.email("d")))
        .await;
    assert_eq!(status, 503);
    assert!(t.snapshot().await.users().is_empty());
}

#[tokio::test]
async fn subscription_lifecycle_and_refund() {
    let t = TestStack::start().await;
    let email = t.email("ada");
    let reference = format!("ref_{}", t.run);
    let (_, r) = t.post_paystack(&charge(10, &reference, &email)).await;
    assert_eq!(
        r["status"], "processed",
        "verification is off in this stack: {r}"
    );
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T10:00:01.000Z",
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "active");

    // A failed renewal: past due. Its invoice's created_at orders it after the create.
    let failed = json!({"event": "invoice.payment_failed", "data": {"id": 77, "status": "failed", "paid": false, "paid_at": null, "created_at": "2026-11-25T10:00:03.000Z",
        "customer": {"email": email}, "subscription": {"plan": {"plan_code": "PLN_premium_monthly"}}}}).to_string();
    let (_, r) = t.post_paystack(&failed).await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "past_due");
    // not_renew carries only the subscription's created_at: the time it arrives
    // orders it. Canceled, with access until next_payment_date.
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.not_renew",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T10:00:01.000Z",
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let (state, until) = sub_state(&t, &email).await;
    assert_eq!(state, "canceled");
    assert_eq!(
        until.map(|d| d.to_rfc3339()),
        Some("2027-01-01T00:00:00+00:00".into())
    );

    // An older event is superseded.
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T09:00:00.000Z",
        ))
        .await;
    assert!(
        ["superseded", "duplicate"].contains(&r["status"].as_str().unwrap()),
        "{r}"
    );
    assert_eq!(sub_state(&t, &email).await.0, "canceled");

    // disable: ordered by arrival, after the not_renew.
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.disable",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T10:00:01.000Z",
        ))
        .await;
    assert_eq!(r["status"], "processed");
    assert_eq!(sub_state(&t, &email).await.0, "expired");

    // A refund of the charge revokes what it granted.
    let refund = json!({"event": "refund.processed", "data": {"id": 88, "status": "processed", "amount": 500000, "currency": "NGN",
        "transaction_reference": reference, "customer": {"email": email}}}).to_string();
    let (_, r) = t.post_paystack(&refund).await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "refunded");
    let emails = t.wait_emails(&email, 5).await;
    let subjects: Vec<&str> = emails.iter().map(|m| m.subject.as_str()).collect();
    for needle in [
        "Welcome",
        "canceled",
        "Payment failed",
        "expired",
        "refunded",
    ] {
        assert!(
            subjects.iter().any(|s| s.contains(needle)),
            "{needle} in {subjects:?}"
        );
    }
}

#[tokio::test]
async fn unknown_plan_codes_and_keys_without_ids() {
    let t = TestStack::start().await;
    let mut odd: Value = serde_json::from_str(&charge(20, "ref_odd", &t.email("odd"))).unwrap();
    odd["data"]["plan"]["plan_code"] = json!("PLN_nope");
    let (_, r) = t.post_paystack(&odd.to_string()).await;
    assert_eq!(r["status"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("PLN_nope"), "{r}");
    // No data.id: keyed by data.reference.
    let mut by_ref: Value =
        serde_json::from_str(&charge(21, &format!("ref_r_{}", t.run), &t.email("r"))).unwrap();
    by_ref["data"].as_object_mut().unwrap().remove("id");
    let (_, r) = t.post_paystack(&by_ref.to_string()).await;
    assert_eq!(
        r["event"],
        format!("paystack:charge.success:ref_r_{}", t.run),
        "{r}"
    );
    // Neither: keyed by the body hash.
    let (_, r) = t
        .post_paystack(&json!({"event": "transfer.success", "data": {}}).to_string())
        .await;
    assert_eq!(r["status"], "ignored");
    assert!(r["event"].as_str().unwrap().starts_with("paystack:sha256:"));
}

#[tokio::test]
async fn a_one_time_charge_uses_the_plan_duration_days() {
    let t = TestStack::start().await;
    let email = t.email("pass");
    let mut body: Value =
        serde_json::from_str(&charge(30, &format!("ref_p_{}", t.run), &email)).unwrap();
    body["data"].as_object_mut().unwrap().remove("plan");
    body["data"]["metadata"] = json!({"plan": "premium_90_day_pass"});
    let (_, r) = t.post_paystack(&body.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(get_s(subs[0], "plan_id"), Some("premium_90_day_pass"));
    let days = (get_ts(subs[0], "access_until").unwrap() - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");
}

#[tokio::test]
async fn a_subscription_before_the_first_charge_waits_and_the_charge_applies_it() {
    let t = TestStack::start().await;
    let email = t.email("early");
    let code = format!("CUS_early{}", t.run);
    let with_code = |body: String| body.replace("CUS_hdhye17yj8qd2tx", &code);
    let (status, r) = t
        .post_paystack(&with_code(subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T10:00:01.000Z",
        )))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "pending", "{r}");
    assert!(t.snapshot().await.user_by_email(&email).is_none());

    let reference = format!("ref_early_{}", t.run);
    let (_, r) = t
        .post_paystack(&with_code(charge(20, &reference, &email)))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (state, until) = sub_state(&t, &email).await;
    assert_eq!(state, "active");
    assert_eq!(
        until.map(|u| u.to_rfc3339()),
        Some("2027-01-01T00:00:00+00:00".to_string()),
        "the waiting subscription event set the period"
    );
}

/// Sets or removes the member a Paystack customer is mapped to, as a charge's
/// commit does, without the drain that follows it.
async fn map_customer(t: &TestStack, code: &str, user: Option<&str>) {
    use aws_sdk_dynamodb::types::AttributeValue;
    use gatehouse::domain::Provider;
    use gatehouse::store::keys;
    let update = t
        .stack
        .clients
        .dynamodb
        .update_item()
        .table_name(t.stack.services.store.table())
        .key(
            "pk",
            AttributeValue::S(keys::customer(Provider::Paystack, code)),
        )
        .key("sk", AttributeValue::S(keys::CUSTOMER.into()));
    match user {
        Some(user) => update
            .update_expression("SET user_id = :u")
            .expression_attribute_values(":u", AttributeValue::S(user.into())),
        None => update.update_expression("REMOVE user_id"),
    }
    .send()
    .await
    .expect("customer item updated");
}

#[tokio::test]
async fn a_redelivered_charge_applies_what_its_first_attempt_left_waiting() {
    let t = TestStack::start().await;
    let email = t.email("crash");
    let code = format!("CUS_crash{}", t.run);
    let with_code = |body: String| body.replace("CUS_hdhye17yj8qd2tx", &code);
    let charge_body = with_code(charge(30, &format!("ref_crash_{}", t.run), &email));
    let (_, r) = t.post_paystack(&charge_body).await;
    assert_eq!(r["status"], "processed", "{r}");
    let user = t
        .snapshot()
        .await
        .user_by_email(&email)
        .map(|u| get_s(u, "user_id").unwrap().to_string())
        .unwrap();
    // The state a first attempt leaves when it stops after its commit: the
    // customer mapped, the charge processed, a subscription event waiting.
    map_customer(&t, &code, None).await;
    let (_, r) = t
        .post_paystack(&with_code(subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            "2026-11-25T10:00:01.000Z",
        )))
        .await;
    assert_eq!(r["status"], "processed", "the email names the member: {r}");
    let (_, r) = t
        .post_paystack(&with_code(
            subscription(
                "subscription.not_renew",
                "nobody-yet@gatehouse.example",
                "2027-01-01T00:00:00.000Z",
                "2026-11-25T10:00:02.000Z",
            )
            .replace("\"status\":\"active\"", "\"status\":\"non-renewing\""),
        ))
        .await;
    assert_eq!(r["status"], "pending", "{r}");
    map_customer(&t, &code, Some(&user)).await;

    let (status, r) = t.post_paystack(&charge_body).await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "duplicate", "{r}");
    assert_eq!(
        sub_state(&t, &email).await.0,
        "canceled",
        "the redelivery applied the waiting not_renew"
    );
}

#[tokio::test]
async fn a_subscription_whose_email_and_customer_name_two_members_fails_with_the_reason() {
    let t = TestStack::start().await;
    let (ana, ben) = (t.email("ana"), t.email("ben"));
    let (ana_code, ben_code) = (format!("CUS_ana{}", t.run), format!("CUS_ben{}", t.run));
    for (id, email, code) in [(40, &ana, &ana_code), (41, &ben, &ben_code)] {
        let body = charge(id, &format!("ref_two_{id}_{}", t.run), email)
            .replace("CUS_hdhye17yj8qd2tx", code);
        let (_, r) = t.post_paystack(&body).await;
        assert_eq!(r["status"], "processed", "{r}");
    }
    // Ana's email with Ben's customer code: neither member may take it.
    let (status, r) = t
        .post_paystack(
            &subscription(
                "subscription.disable",
                &ana,
                "2027-01-01T00:00:00.000Z",
                "2026-11-25T10:00:01.000Z",
            )
            .replace("CUS_hdhye17yj8qd2tx", &ben_code)
            .replace("\"status\":\"active\"", "\"status\":\"complete\""),
        )
        .await;
    assert_eq!(status, 200, "re-reading cannot fix this: {r}");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("belongs to member"),
        "{r}"
    );
    assert_eq!(
        sub_state(&t, &ana).await.0,
        "active",
        "Ana keeps her access"
    );
    assert_eq!(
        sub_state(&t, &ben).await.0,
        "active",
        "Ben keeps his access"
    );
}

/// A charge as Paystack sends it for the plan, paid at `paid_at`.
fn charge_at(
    id: u64,
    reference: &str,
    email: &str,
    paid_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut body: Value = serde_json::from_str(&charge(id, reference, email)).unwrap();
    body["data"]["paid_at"] = json!(paid_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    body.to_string()
}

/// Paystack time as its payloads write it.
fn iso(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A member's first charge at `paid`, then `subscription.create` two seconds
/// later with `next_payment_date`: what Paystack sends when a plan is bought.
/// Returns the subscription's `created_at`.
async fn subscribe(
    t: &TestStack,
    email: &str,
    charge_id: u64,
    paid: chrono::DateTime<chrono::Utc>,
    next_payment_date: chrono::DateTime<chrono::Utc>,
) -> String {
    let (_, r) = t
        .post_paystack(&charge_at(
            charge_id,
            &format!("ref_{charge_id}_{}", t.run),
            email,
            paid,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let created = iso(paid + chrono::Duration::seconds(2));
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.create",
            email,
            &iso(next_payment_date),
            &created,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    created
}

fn provider_ref(snap: &gatehouse_local::inspect::Snapshot, email: &str) -> Option<String> {
    let user = snap.user_by_email(email).expect("user");
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    get_s(subs[0], "provider_ref").map(str::to_string)
}

#[tokio::test]
async fn three_renewals_keep_the_code_and_a_later_not_renew_and_disable_still_apply() {
    let t = TestStack::start().await;
    let email = t.email("renews");
    let start = chrono::Utc::now() - chrono::Duration::days(91);
    let next = iso(start + chrono::Duration::days(120));
    let created = subscribe(&t, &email, 50, start, start + chrono::Duration::days(120)).await;
    for month in 1..=3u64 {
        let paid = start + chrono::Duration::days(30 * month as i64);
        let (_, r) = t
            .post_paystack(&charge_at(
                50 + month,
                &format!("ref_r{month}_{}", t.run),
                &email,
                paid,
            ))
            .await;
        assert_eq!(r["status"], "processed", "renewal {month}: {r}");
        assert!(
            r.get("reason").is_none_or(Value::is_null),
            "renewal {month} applied: {r}"
        );
        let snap = t.snapshot().await;
        assert_eq!(
            provider_ref(&snap, &email).as_deref(),
            Some("SUB_vsyqdmlzble3uii"),
            "renewal {month} keeps the subscription code"
        );
        assert_eq!(sub_state(&t, &email).await.0, "active");
    }
    // Both carry only the subscription's created_at, months older than the
    // last renewal: the time they arrive orders them.
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.not_renew",
            &email,
            &next,
            &created,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "canceled");
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.disable",
            &email,
            &next,
            &created,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "expired");
}

#[tokio::test]
async fn a_charge_delivered_after_the_disable_keeps_the_payment_and_not_the_access() {
    let t = TestStack::start().await;
    let email = t.email("late");
    let start = chrono::Utc::now() - chrono::Duration::days(40);
    let created = start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (_, r) = t
        .post_paystack(&charge_at(60, &format!("ref_l0_{}", t.run), &email, start))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            &created,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_paystack(&subscription(
            "subscription.disable",
            &email,
            "2027-01-01T00:00:00.000Z",
            &created,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(sub_state(&t, &email).await.0, "expired");

    // The renewal paid before the disable, whose delivery Paystack retried.
    let late_ref = format!("ref_l1_{}", t.run);
    let (status, r) = t
        .post_paystack(&charge_at(
            61,
            &late_ref,
            &email,
            start + chrono::Duration::days(30),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    assert_eq!(
        sub_state(&t, &email).await.0,
        "expired",
        "the disable stands"
    );
    let record = snap
        .event("paystack", "charge.success:61")
        .expect("recorded");
    assert!(
        get_s(record, "reason").is_some_and(|r| r.contains("access is unchanged")),
        "the record says why access did not change"
    );
    assert!(
        snap.of_kind("PAYMENT")
            .iter()
            .any(|p| get_s(p, "reference") == Some(late_ref.as_str())),
        "the payment is kept, so a refund of it still finds it"
    );
}

#[tokio::test]
async fn a_not_renew_or_failed_invoice_arriving_after_the_disable_does_not_reopen_access() {
    let t = TestStack::start().await;
    let email = t.email("afterend");
    let created = "2026-11-25T10:00:01.000Z";
    let (_, r) = t
        .post_paystack(&charge(70, &format!("ref_end_{}", t.run), &email))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    for event in ["subscription.create", "subscription.disable"] {
        let (_, r) = t
            .post_paystack(&subscription(
                event,
                &email,
                "2027-01-01T00:00:00.000Z",
                created,
            ))
            .await;
        assert_eq!(r["status"], "processed", "{event}: {r}");
    }
    assert_eq!(sub_state(&t, &email).await.0, "expired");
    // Paystack retried these deliveries; they arrive after the disable.
    let late_failure = json!({"event": "invoice.payment_failed", "data": {"id": 71, "status": "failed", "paid": false,
        "paid_at": null, "created_at": chrono::Utc::now().to_rfc3339(),
        "customer": {"email": email}, "subscription": {"plan": {"plan_code": "PLN_premium_monthly"}}}})
    .to_string();
    let late_not_renew = subscription(
        "subscription.not_renew",
        &email,
        "2027-01-01T00:00:00.000Z",
        created,
    );
    for (what, body) in [
        ("not_renew", late_not_renew),
        ("payment_failed", late_failure),
    ] {
        let (status, r) = t.post_paystack(&body).await;
        assert_eq!(status, 200);
        assert_eq!(r["status"], "superseded", "{what}: {r}");
        let (state, until) = sub_state(&t, &email).await;
        assert_eq!(state, "expired", "{what} leaves it ended");
        assert!(
            until.is_some_and(|u| u <= chrono::Utc::now()),
            "{what}: no access"
        );
    }
}

#[tokio::test]
async fn a_create_older_than_its_charge_still_leaves_the_subscription_code() {
    let t = TestStack::start().await;
    let email = t.email("codeonly");
    let code = format!("CUS_code{}", t.run);
    let with_code = |body: String| body.replace("CUS_hdhye17yj8qd2tx", &code);
    let created = chrono::Utc::now() - chrono::Duration::days(2);
    let iso = created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The create arrives first (it waits), and its charge was paid a day later.
    let (_, r) = t
        .post_paystack(&with_code(subscription(
            "subscription.create",
            &email,
            "2027-01-01T00:00:00.000Z",
            &iso,
        )))
        .await;
    assert_eq!(r["status"], "pending", "{r}");
    let (_, r) = t
        .post_paystack(&with_code(charge_at(
            80,
            &format!("ref_code_{}", t.run),
            &email,
            created + chrono::Duration::days(1),
        )))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    assert_eq!(
        get_s(
            snap.event("paystack", "subscription.create:5000").unwrap(),
            "status"
        ),
        Some("superseded"),
        "the charge's state is newer"
    );
    assert_eq!(
        provider_ref(&snap, &email).as_deref(),
        Some("SUB_vsyqdmlzble3uii"),
        "admin verify and sync can still find it"
    );
    assert_eq!(sub_state(&t, &email).await.0, "active");
}

#[tokio::test]
async fn a_renewal_delivered_after_the_not_renew_still_extends_to_its_paid_end() {
    let t = TestStack::start().await;
    let email = t.email("paidlate");
    let now = chrono::Utc::now();
    let next = iso(now + chrono::Duration::days(1));
    let created = subscribe(
        &t,
        &email,
        90,
        now - chrono::Duration::days(30),
        now + chrono::Duration::days(1),
    )
    .await;
    // not_renew with no next payment date: access runs to the known period end.
    let mut not_renew: Value = serde_json::from_str(&subscription(
        "subscription.not_renew",
        &email,
        &next,
        &created,
    ))
    .unwrap();
    not_renew["data"]["next_payment_date"] = Value::Null;
    let (_, r) = t.post_paystack(&not_renew.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    let (state, until) = sub_state(&t, &email).await;
    assert_eq!(state, "canceled");
    assert!(
        until.unwrap() < now + chrono::Duration::days(2),
        "{until:?}"
    );

    // The renewal paid an hour before the not_renew, delivered after it.
    let paid = now - chrono::Duration::hours(1);
    let (_, r) = t
        .post_paystack(&charge_at(91, &format!("ref_pl1_{}", t.run), &email, paid))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (state, until) = sub_state(&t, &email).await;
    assert_eq!(state, "canceled", "the cancel stands");
    assert_eq!(
        until.map(|u| u.timestamp()),
        Some((paid + chrono::Duration::days(31)).timestamp()),
        "access runs to the end of the period it paid for"
    );
}
