//! DynamoDB round trips per event (design: a new purchase in 2, a duplicate in 1).
//! Counted by an SDK interceptor on the function's own client.

use gatehouse::aws::RoundTripCounter;
use gatehouse::store::Store;
use gatehouse_e2e::{purchase, TestStack, KAJABI_SECRET};

/// A webhook POST with its signature header.
fn signed(path: &str, header: &str, signature: String, body: &str) -> gatehouse::http::ApiRequest {
    gatehouse::http::ApiRequest {
        method: "POST".into(),
        path: path.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (header.into(), signature),
        ],
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn request(body: &str) -> gatehouse::http::ApiRequest {
    signed(
        "/webhooks/kajabi",
        "x-kajabi-signature",
        gatehouse::signature::hmac_sha256_hex(KAJABI_SECRET.as_bytes(), body.as_bytes()),
        body,
    )
}

/// One function's services, held to its policy, with `counter` on their DynamoDB client.
fn counted(
    t: &TestStack,
    counter: &RoundTripCounter,
    binary: &str,
) -> gatehouse::service::Services {
    let mut services = t
        .stack
        .services_for(binary)
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    services.store = Store::new(
        counter.instrument(services.store.client()),
        services.store.table(),
    );
    services
}

#[tokio::test]
async fn new_purchase_takes_two_round_trips_and_a_duplicate_one() {
    let t = TestStack::start().await;
    let counter = RoundTripCounter::default();
    let function = kajabi_webhook::KajabiWebhook::new(counted(&t, &counter, "kajabi-webhook"));
    let body = purchase(&t.id("evt"), &t.email("count"), "off_456");

    let response = function.handle(request(&body)).await;
    assert_eq!(response.body_json()["status"], "processed");
    assert_eq!(counter.take(), vec!["BatchGetItem", "TransactWriteItems"]);

    let response = function.handle(request(&body)).await;
    assert_eq!(response.body_json()["status"], "duplicate");
    assert_eq!(counter.take(), vec!["BatchGetItem"]);

    let ignored = serde_json::json!({"type": "contact.deleted", "id": t.id("tag")}).to_string();
    let response = function.handle(request(&ignored)).await;
    assert_eq!(response.body_json()["status"], "ignored");
    assert_eq!(
        counter.take(),
        vec!["PutItem"],
        "an ignored event is one conditional put"
    );
}

fn json_request(method: &str, path: &str, body: serde_json::Value) -> gatehouse::http::ApiRequest {
    gatehouse::http::ApiRequest {
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        source_ip: Some("203.0.113.7".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn login_does_the_same_requests_for_any_failure_and_me_one_query() {
    let t = TestStack::start().await;
    let email = t.email("trips");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("trips"), &email, "off_456"),
            gatehouse_e2e::Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let (token, _) = t.wait_emails(&email, 1).await[0].setup_link().unwrap();
    let password = "correct horse battery";
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &serde_json::json!({"email": email, "token": token, "password": password}),
        )
        .await;
    assert_eq!(status, 200);

    let counter = RoundTripCounter::default();
    let login = account_login::AccountLogin::new(counted(&t, &counter, "account-login"));
    let response = login
        .handle(json_request(
            "POST",
            "/account/login",
            serde_json::json!({"email": email, "password": password}),
        ))
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        counter.take(),
        vec![
            "TransactWriteItems",
            "GetItem",
            "Query",
            "TransactWriteItems"
        ],
        "claim an attempt, email, member, give the attempt back"
    );

    let response = login
        .handle(json_request(
            "POST",
            "/account/login",
            serde_json::json!({"email": email, "password": "wrong password"}),
        ))
        .await;
    assert_eq!(response.status, 401);
    let wrong_password = counter.take();
    assert_eq!(
        wrong_password,
        vec!["TransactWriteItems", "GetItem", "Query"]
    );
    let response = login
        .handle(json_request(
            "POST",
            "/account/login",
            serde_json::json!({"email": t.email("nobody"), "password": "wrong password"}),
        ))
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(
        counter.take(),
        wrong_password,
        "an unknown address does the same requests as a wrong password"
    );

    let jwt = t
        .post_json(
            "/account/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = account_me::AccountMe::new(counted(&t, &counter, "account-me"));
    let mut request = json_request("GET", "/account/me", serde_json::json!(null));
    request.headers = vec![("authorization".into(), format!("Bearer {jwt}"))];
    let response = me.handle(request).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(counter.take(), vec!["Query"]);
}

#[tokio::test]
async fn a_new_paystack_charge_takes_two_round_trips_and_its_duplicate_one() {
    let t = TestStack::start().await;
    let counter = RoundTripCounter::default();
    let function =
        paystack_webhook::PaystackWebhook::new(counted(&t, &counter, "paystack-webhook"));
    let body =
        serde_json::json!({"event": "charge.success", "data": {"id": 4242, "status": "success",
        "reference": format!("ref_trips_{}", t.run), "amount": 500000, "currency": "NGN",
        "paid_at": chrono::Utc::now().to_rfc3339(),
        "customer": {"email": t.email("paytrips"), "customer_code": format!("CUS_trips{}", t.run)},
        "plan": {"plan_code": "PLN_premium_monthly"}}})
        .to_string();
    let request = signed(
        "/webhooks/paystack",
        "x-paystack-signature",
        gatehouse::signature::hmac_sha512_hex(
            gatehouse_e2e::PAYSTACK_SECRET.as_bytes(),
            body.as_bytes(),
        ),
        &body,
    );
    let response = function.handle(request.clone()).await;
    assert_eq!(response.body_json()["status"], "processed");
    assert_eq!(counter.take(), vec!["BatchGetItem", "TransactWriteItems"]);

    let response = function.handle(request).await;
    assert_eq!(response.body_json()["status"], "duplicate");
    assert_eq!(
        counter.take(),
        vec!["BatchGetItem"],
        "the event and its customer in one round trip"
    );
}

#[tokio::test]
async fn a_stripe_subscription_change_takes_three_round_trips_with_its_notice() {
    let t = TestStack::start().await;
    let (cus, email, sub) = (t.id("cus_trips"), t.email("subtrips"), t.id("sub_trips"));
    let at = chrono::Utc::now().timestamp() - 60;
    let (_, r) = t
        .post_stripe(&gatehouse_e2e::stripe_event(
            &t.id("co"),
            "checkout.session.completed",
            at,
            gatehouse_e2e::stripe_checkout(&t.id("cs"), &cus, &email, "subscription", None),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let counter = RoundTripCounter::default();
    let function = stripe_webhook::StripeWebhook::new(counted(&t, &counter, "stripe-webhook"));
    let post = |id: &str, kind: &str, created: i64, cancel: bool| {
        let body = gatehouse_e2e::stripe_event(
            &t.id(id),
            kind,
            created,
            gatehouse_e2e::stripe_subscription(&sub, &cus, "active", cancel, at + 86_400),
        );
        let header = gatehouse_e2e::stripe_header(
            &body,
            gatehouse_e2e::STRIPE_SECRETS[0],
            chrono::Utc::now().timestamp(),
        );
        signed("/webhooks/stripe", "stripe-signature", header, &body)
    };
    // A new subscription's row, then a cancel at period end with its notice:
    // the member's partition (profile and rows) is one Query either way.
    for (id, kind, created, cancel) in [
        ("e1", "customer.subscription.created", at + 1, false),
        ("e2", "customer.subscription.updated", at + 2, true),
    ] {
        let response = function.handle(post(id, kind, created, cancel)).await;
        assert_eq!(response.body_json()["status"], "processed", "{id}");
        assert_eq!(
            counter.take(),
            vec!["BatchGetItem", "Query", "TransactWriteItems"],
            "{id}"
        );
    }
    let snap = t.snapshot().await;
    assert_eq!(
        snap.jobs_to(&email).len(),
        2,
        "the welcome and the cancel notice"
    );
}

/// Resend does the same work for an address with an account waiting for
/// setup and for one with no account: the same DynamoDB requests, one queue
/// message, the same answer.
#[tokio::test]
async fn resend_does_the_same_requests_whether_or_not_the_address_exists() {
    let t = TestStack::start_with(gatehouse_e2e::Options {
        email_pump: false,
        ..Default::default()
    })
    .await;
    let waiting = t.email("waiting");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("waiting"), &waiting, "off_456"),
            gatehouse_e2e::Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let counter = RoundTripCounter::default();
    let resend =
        resend_setup_email::ResendSetupEmail::new(counted(&t, &counter, "resend-setup-email"));
    let mut answers = Vec::new();
    for address in [waiting.clone(), t.email("nobody")] {
        let before = t.queue_depth(&t.stack.queue_url).await;
        let response = resend
            .handle(json_request(
                "POST",
                "/account/resend-setup-email",
                serde_json::json!({ "email": address }),
            ))
            .await;
        let queued = t.queue_depth(&t.stack.queue_url).await - before;
        answers.push((response.status, response.body, counter.take(), queued));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 202);
    assert_eq!(answers[0].2, vec!["GetItem", "TransactWriteItems"]);
    assert_eq!(answers[0].3, 1, "one queue message each");
}
