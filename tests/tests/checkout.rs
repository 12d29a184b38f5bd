//! Checkout end to end over HTTP, against the local fake of Stripe's and
//! Paystack's checkout APIs and hosted pages (`gatehouse_local::fake_payments`):
//! plans for sale; a checkout for a member and for a visitor with each
//! provider; the verified return before the webhook and after it (one
//! effect, one email); unknown, forged and foreign references; an unpaid
//! verification; the provider down; payments disabled; Stripe's cancel.

use gatehouse::domain::{PaymentReference, Provider};
use gatehouse::store::CheckoutPayment;
use gatehouse_e2e::{
    purchase, Auth, Options, TestStack, PAYSTACK_SECRET, STRIPE_API_KEY, STRIPE_SECRETS,
};
use gatehouse_local::fake_payments::{FakePayments, WebhookTarget};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

async fn stack_with(payments_enabled: bool) -> (TestStack, FakePayments) {
    let fake = FakePayments::start(STRIPE_API_KEY, PAYSTACK_SECRET).await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(fake.base_url.clone()),
        paystack_api: Some(fake.base_url.clone()),
        urls_from_listener: true,
        email_pump: false,
        payments_enabled,
        ..Options::default()
    })
    .await;
    fake.send_webhooks_to(WebhookTarget {
        base_url: t.stack.base_url(),
        stripe_secret: STRIPE_SECRETS[0].into(),
        paystack_secret: PAYSTACK_SECRET.into(),
    });
    (t, fake)
}

async fn stack() -> (TestStack, FakePayments) {
    stack_with(true).await
}

/// A member who bought through Kajabi and set a password: address and session token.
async fn member(t: &TestStack, name: &str) -> (String, String) {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    t.drain_queue().await;
    let (token, _) = t.emails_to(&email).await[0].setup_link().unwrap();
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let session = body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (email, session)
}

async fn checkout(t: &TestStack, session: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = t.http.post(t.url("/account/checkout")).json(&body);
    if let Some(token) = session {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GETs `url` (on the stack), expecting a 303 to the return page: its query, and the page.
async fn returned(url: &str, cookie: Option<&str>) -> (Vec<(String, String)>, String) {
    let mut request = no_redirects().get(url);
    if let Some(token) = cookie {
        request = request.header("cookie", format!("gatehouse_session={token}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "{url}");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("/account/return?"), "{location}");
    let query = gatehouse::http::parse_query(location.split_once('?').unwrap().1);
    let page = reqwest::get(&location).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    (query, page.text().await.unwrap())
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn payment(t: &TestStack, provider: Provider, reference: &str) -> CheckoutPayment {
    t.stack
        .services
        .store
        .get_checkout(provider, &PaymentReference::parse(reference).unwrap())
        .await
        .unwrap()
        .expect("the checkout's payment is stored")
}

async fn me(t: &TestStack, session: &str) -> Value {
    t.http
        .get(t.url("/account/me"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The stored status of the event `id` from `provider`.
async fn event_status(t: &TestStack, provider: Provider, id: &str) -> String {
    let key = gatehouse::domain::EventKey::new(provider, id);
    let record = t.stack.services.store.get_event(&key).await.unwrap();
    record
        .expect("the event is recorded")
        .status
        .as_str()
        .to_string()
}

#[tokio::test]
async fn plans_for_sale_are_listed_with_each_providers_price() {
    let (t, _fake) = stack().await;
    let body: Value = reqwest::get(t.url("/plans"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["payments_enabled"], true);
    let plans = body["plans"].as_array().unwrap();
    let monthly = plans.iter().find(|p| p["id"] == "premium_monthly").unwrap();
    assert_eq!(monthly["name"], "Premium Monthly");
    assert_eq!(monthly["kind"], "subscription");
    assert_eq!(monthly["period_days"], 31);
    assert_eq!(
        monthly["prices"]["stripe"]["price"],
        "price_premium_monthly"
    );
    assert_eq!(monthly["prices"]["paystack"]["display"], "5000.00 NGN");
    assert!(
        plans.iter().all(|p| p["id"] != "nssa_annual"),
        "a plan that is not for sale is not listed"
    );
}

/// A member's Stripe subscription checkout: the return comes first and
/// applies it; the webhook after it is the same event and changes nothing.
#[tokio::test]
async fn a_members_stripe_return_then_its_webhook_have_one_effect() {
    let (t, fake) = stack().await;
    let (email, session) = member(&t, "stripe-member").await;
    let (status, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_monthly", "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reference = body["reference"].as_str().unwrap().to_string();
    let url = body["url"].as_str().unwrap();
    assert!(url.starts_with(&fake.base_url), "{url}");
    let (key, form) = fake.stripe_creates().pop().unwrap();
    assert_eq!(key, format!("checkout-{reference}"));
    let field = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("mode").as_deref(), Some("subscription"));
    assert_eq!(
        field("line_items[0][price]").as_deref(),
        Some("price_premium_monthly")
    );
    assert_eq!(
        field("client_reference_id").as_deref(),
        Some(reference.as_str())
    );
    assert_eq!(field("customer_email").as_deref(), Some(email.as_str()));
    assert_eq!(field("metadata[plan]").as_deref(), Some("premium_monthly"));
    let pending = payment(&t, Provider::Stripe, &reference).await;
    assert_eq!(pending.status, "pending");
    let session_id = pending.session_id.clone().unwrap();
    assert_eq!(pending.email.as_str(), email);

    fake.pay_stripe(&session_id).unwrap();
    let success = t.url(&format!("/payments/stripe/success?session_id={session_id}"));
    let (query, page) = returned(&success, None).await;
    assert_eq!(param(&query, "outcome"), Some("paid"), "{query:?}");
    assert!(
        page.contains("Payment successful. Subscription active until"),
        "{page}"
    );
    assert_eq!(
        payment(&t, Provider::Stripe, &reference).await.status,
        "succeeded"
    );
    let key_id = format!("checkout.paid:{session_id}");
    assert_eq!(
        event_status(&t, Provider::Stripe, &key_id).await,
        "processed"
    );
    let view = me(&t, &session).await;
    assert!(
        view["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["plan"] == "premium_monthly" && s["access"] == true),
        "{view}"
    );
    t.drain_queue().await;
    let emails_after_return = t.emails_to(&email).await.len();

    // The webhook for the same payment: recorded, as the same event.
    let webhook = fake.stripe_webhook_body(&session_id).unwrap();
    let (status, answer) = t.post_stripe(&webhook).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    // A second return (the buyer reloads) is the same event too.
    let (query, _) = returned(&success, None).await;
    assert_eq!(param(&query, "outcome"), Some("paid"));
    t.drain_queue().await;
    assert_eq!(
        t.emails_to(&email).await.len(),
        emails_after_return,
        "the webhook and the reload send nothing more"
    );
}

/// A visitor's Paystack checkout: the account is created inactive, the
/// webhook comes first, then the return; one welcome with the setup link.
#[tokio::test]
async fn a_visitors_paystack_webhook_then_return_sends_one_setup_link() {
    let (t, fake) = stack().await;
    let email = t.email("paystack-visitor");
    let (status, body) = checkout(
        &t,
        None,
        json!({"email": email.to_uppercase(), "plan": "premium_monthly", "provider": "paystack"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reference = body["reference"].as_str().unwrap().to_string();
    let sent = fake.paystack_initializes().pop().unwrap();
    assert_eq!(sent["email"], email);
    assert_eq!(sent["amount"], 500000);
    assert_eq!(sent["currency"], "NGN");
    assert_eq!(sent["plan"], "PLN_premium_monthly");
    assert_eq!(sent["reference"], reference);
    assert_eq!(sent["metadata"]["plan"], "premium_monthly");
    assert!(sent["callback_url"]
        .as_str()
        .unwrap()
        .ends_with("/payments/paystack/callback"));
    let record = t
        .stack
        .services
        .store
        .get_email(&gatehouse::domain::Email::parse(&email).unwrap())
        .await
        .unwrap()
        .expect("the visitor's account exists before payment");
    assert!(!record.is_active, "created inactive");
    t.drain_queue().await;
    assert!(
        t.emails_to(&email).await.is_empty(),
        "no setup link before payment"
    );

    fake.pay_paystack(&reference).unwrap();
    let webhook = fake.paystack_webhook_body(&reference).unwrap();
    let (status, answer) = t.post_paystack(&webhook).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "processed", "{answer}");
    let (query, page) = returned(
        &t.url(&format!(
            "/payments/paystack/callback?trxref={reference}&reference={reference}"
        )),
        None,
    )
    .await;
    assert_eq!(param(&query, "outcome"), Some("paid"), "{query:?}");
    assert!(
        page.contains("Payment successful. Subscription active until"),
        "{page}"
    );
    let stored = payment(&t, Provider::Paystack, &reference).await;
    assert_eq!(stored.status, "succeeded");
    assert_eq!(
        stored.user_id, record.user_id,
        "bound to the account made at checkout"
    );
    t.drain_queue().await;
    let emails = t.emails_to(&email).await;
    let setup_links = emails.iter().filter(|e| e.setup_link().is_some()).count();
    assert_eq!(setup_links, 1, "one setup link, after payment: {emails:?}");
    let (token, _) = emails
        .iter()
        .find_map(|e| e.setup_link())
        .expect("setup link");
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The return before the webhook, for Paystack; then the webhook is the same event.
#[tokio::test]
async fn a_paystack_return_before_its_webhook_applies_once() {
    let (t, fake) = stack().await;
    let (email, session) = member(&t, "paystack-member").await;
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_90_day_pass", "provider": "paystack"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    let sent = fake.paystack_initializes().pop().unwrap();
    assert!(
        sent.get("plan").is_none(),
        "a one-time pass has no plan code"
    );
    assert_eq!(sent["amount"], 1200000);
    fake.pay_paystack(&reference).unwrap();
    let (query, page) = returned(
        &t.url(&format!(
            "/payments/paystack/callback?reference={reference}"
        )),
        Some(&session),
    )
    .await;
    assert_eq!(param(&query, "outcome"), Some("paid"));
    assert!(
        page.contains("Payment successful. Access active until"),
        "{page}"
    );
    t.drain_queue().await;
    let before = t.emails_to(&email).await.len();
    let (status, answer) = t
        .post_paystack(&fake.paystack_webhook_body(&reference).unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "duplicate", "{answer}");
    t.drain_queue().await;
    assert_eq!(t.emails_to(&email).await.len(), before);
    let view = me(&t, &session).await;
    let passes = view["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["plan"] == "premium_90_day_pass")
        .count();
    assert_eq!(passes, 1, "{view}");
}

#[tokio::test]
async fn unknown_forged_and_foreign_references_grant_nothing() {
    let (t, fake) = stack().await;
    // Not a reference Gatehouse makes, and one of its shape it never made.
    for reference in [
        "M7_a1b2c3d4e5f6g7h8",
        &PaymentReference::generate().to_string(),
    ] {
        let (query, page) = returned(
            &t.url(&format!(
                "/payments/paystack/callback?reference={reference}"
            )),
            None,
        )
        .await;
        assert_eq!(param(&query, "outcome"), Some("refused"));
        assert_eq!(param(&query, "why"), Some("unknown-reference"));
        assert!(page.contains("no checkout with this reference"), "{page}");
    }
    let (query, page) = returned(
        &t.url("/payments/stripe/success?session_id=cs_test_forged"),
        None,
    )
    .await;
    assert_eq!(param(&query, "why"), Some("not-at-provider"));
    assert!(page.contains("does not know this payment"), "{page}");

    // Ann pays; Bob, signed in, opens Ann's return: nothing is granted to
    // either of them, and Ann's own return still applies it.
    let (_, ann) = member(&t, "ann").await;
    let (_, bob) = member(&t, "bob").await;
    let (_, body) = checkout(
        &t,
        Some(&ann),
        json!({"plan": "premium_lifetime", "provider": "stripe"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &reference)
        .await
        .session_id
        .unwrap();
    fake.pay_stripe(&session_id).unwrap();
    let success = t.url(&format!("/payments/stripe/success?session_id={session_id}"));
    let (query, page) = returned(&success, Some(&bob)).await;
    assert_eq!(param(&query, "why"), Some("other-account"));
    assert!(page.contains("started from another account"), "{page}");
    assert_eq!(
        payment(&t, Provider::Stripe, &reference).await.status,
        "pending"
    );
    let lifetime = |view: &Value| {
        view["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["plan"] == "premium_lifetime")
    };
    assert!(!lifetime(&me(&t, &bob).await));
    assert!(!lifetime(&me(&t, &ann).await));
    let (query, page) = returned(&success, Some(&ann)).await;
    assert_eq!(param(&query, "outcome"), Some("paid"));
    assert!(
        page.contains("Payment successful. Your access does not expire."),
        "{page}"
    );
    assert!(lifetime(&me(&t, &ann).await));
}

#[tokio::test]
async fn an_unpaid_verification_fails_the_payment_with_the_gateways_answer() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "unpaid").await;
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_monthly", "provider": "paystack"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    // The buyer closes Paystack's page and comes back unpaid.
    let (query, page) = returned(
        &t.url(&format!(
            "/payments/paystack/callback?reference={reference}"
        )),
        None,
    )
    .await;
    assert_eq!(param(&query, "outcome"), Some("unpaid"));
    assert!(
        page.contains(
            "was not completed (not paid: abandoned (The transaction was not completed))"
        ),
        "{page}"
    );
    let stored = payment(&t, Provider::Paystack, &reference).await;
    assert_eq!(stored.status, "failed");
    assert_eq!(
        stored.reason.as_deref(),
        Some("not paid: abandoned (The transaction was not completed)"),
        "the gateway's own answer is kept"
    );

    // A Stripe session that expired unpaid fails the same way.
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_lifetime", "provider": "stripe"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &reference)
        .await
        .session_id
        .unwrap();
    fake.expire_stripe(&session_id);
    let (query, _) = returned(
        &t.url(&format!("/payments/stripe/success?session_id={session_id}")),
        None,
    )
    .await;
    assert_eq!(param(&query, "outcome"), Some("unpaid"));
    assert_eq!(
        payment(&t, Provider::Stripe, &reference).await.status,
        "failed"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_answers_502_and_fails_the_payment() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "down").await;
    fake.set_down(true);
    for provider in ["stripe", "paystack"] {
        let (status, body) = checkout(
            &t,
            Some(&session),
            json!({"plan": "premium_monthly", "provider": provider}),
        )
        .await;
        assert_eq!(status, 502, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(provider), "{detail}");
        let reference = body["reference"].as_str().unwrap();
        let provider = Provider::parse(provider).unwrap();
        let stored = payment(&t, provider, reference).await;
        assert_eq!(stored.status, "failed");
        assert!(
            stored.reason.as_deref().unwrap().contains("answered"),
            "the provider's answer is kept: {:?}",
            stored.reason
        );
    }
}

#[tokio::test]
async fn payments_disabled_are_refused_with_403() {
    let (t, fake) = stack_with(false).await;
    let (status, body) = checkout(
        &t,
        None,
        json!({"email": t.email("early"), "plan": "premium_monthly", "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["detail"], "payments are disabled");
    assert!(fake.stripe_creates().is_empty());
}

#[tokio::test]
async fn bad_choices_get_specific_errors() {
    let (t, fake) = stack().await;
    let visitor = t.email("chooser");
    for (body, status, slug) in [
        (
            json!({"email": visitor, "plan": "nssa_annual", "provider": "stripe"}),
            400,
            "unknown-plan",
        ),
        (
            json!({"email": visitor, "plan": "premium_monthly", "provider": "paypal"}),
            400,
            "unknown-provider",
        ),
        (
            json!({"email": visitor, "plan": "premium_lifetime", "provider": "paystack"}),
            409,
            "not-sold-there",
        ),
        (
            json!({"plan": "premium_monthly", "provider": "stripe"}),
            400,
            "email-required",
        ),
        (
            json!({"email": "not-an-email", "plan": "premium_monthly", "provider": "stripe"}),
            400,
            "invalid-email",
        ),
    ] {
        let (got, answer) = checkout(&t, None, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["type"].as_str().unwrap().ends_with(slug),
            "{body}: {answer}"
        );
    }
    let (status, _) = checkout(
        &t,
        Some("not.a.token"),
        json!({"plan": "premium_monthly", "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 401);
    assert!(fake.stripe_creates().is_empty());
    assert!(fake.paystack_initializes().is_empty());
}

#[tokio::test]
async fn a_cookie_session_from_another_site_is_refused() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "csrf").await;
    let attempt = |origin: String| {
        t.http
            .post(t.url("/account/checkout"))
            .header("cookie", format!("gatehouse_session={session}"))
            .header("origin", origin)
            .json(&json!({"plan": "premium_monthly", "provider": "stripe"}))
            .send()
    };
    let response = attempt("https://evil.example".into()).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(fake.stripe_creates().is_empty());
    let response = attempt(t.stack.base_url()).await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn leaving_stripe_checkout_cancels_the_pending_payment() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "leaver").await;
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_yearly", "provider": "stripe"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &reference)
        .await
        .session_id
        .unwrap();
    let cancel_url = fake.stripe_session(&session_id).unwrap()["cancel_url"]
        .as_str()
        .unwrap()
        .replace("{CHECKOUT_SESSION_ID}", &session_id);
    let (query, page) = returned(&cancel_url, None).await;
    assert_eq!(param(&query, "outcome"), Some("cancelled"));
    assert!(page.contains("Nothing was charged"), "{page}");
    assert_eq!(
        payment(&t, Provider::Stripe, &reference).await.status,
        "cancelled"
    );
}

/// The fake's hosted page: "Pay" sends the webhook and then the buyer
/// returns, as a browser would follow it: the webhook applies, the return is
/// the same event, and the buyer gets one setup link.
#[tokio::test]
async fn paying_on_the_hosted_page_returns_to_an_active_plan() {
    let (t, fake) = stack().await;
    for provider in ["stripe", "paystack"] {
        let email = t.email(&format!("hosted-{provider}"));
        let (status, body) = checkout(
            &t,
            None,
            json!({"email": email, "plan": "premium_monthly", "provider": provider}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let page = reqwest::get(body["url"].as_str().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let paid = no_redirects()
            .post(format!("{}{action}", fake.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status().as_u16(), 303);
        let answer = fake.webhook_answers().pop().unwrap();
        assert_eq!(answer["status"], "processed", "{provider}: {answer}");
        let back = paid.headers()["location"].to_str().unwrap().to_string();
        let (query, page) = returned(&back, None).await;
        assert_eq!(
            param(&query, "outcome"),
            Some("paid"),
            "{provider}: {query:?}"
        );
        assert!(page.contains("Subscription active until"), "{page}");
        t.drain_queue().await;
        let setup_links = t
            .emails_to(&email)
            .await
            .iter()
            .filter(|e| e.setup_link().is_some())
            .count();
        assert_eq!(setup_links, 1, "{provider}");
    }
}

/// The return and the webhook at the same moment: one applies, the other is
/// the same event; one setup link.
#[tokio::test]
async fn a_return_and_its_webhook_together_have_one_effect() {
    let (t, fake) = stack().await;
    let email = t.email("together");
    let (_, body) = checkout(
        &t,
        None,
        json!({"email": email, "plan": "premium_90_day_pass", "provider": "paystack"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    fake.pay_paystack(&reference).unwrap();
    let webhook = fake.paystack_webhook_body(&reference).unwrap();
    let callback = t.url(&format!(
        "/payments/paystack/callback?reference={reference}"
    ));
    let ((query, _), (status, answer)) =
        futures::join!(returned(&callback, None), t.post_paystack(&webhook));
    assert_eq!(status, 200, "{answer}");
    assert!(
        ["processed", "duplicate"].contains(&answer["status"].as_str().unwrap()),
        "{answer}"
    );
    assert_eq!(param(&query, "outcome"), Some("paid"));
    t.drain_queue().await;
    let emails = t.emails_to(&email).await;
    assert_eq!(
        emails.iter().filter(|e| e.setup_link().is_some()).count(),
        1,
        "{emails:?}"
    );
    let record = t
        .stack
        .services
        .store
        .get_email(&gatehouse::domain::Email::parse(&email).unwrap())
        .await
        .unwrap()
        .unwrap();
    let member = t
        .stack
        .services
        .store
        .load_member(&record.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member.subscriptions.len(), 1);
}

/// A one-time Paystack payment whose amount is not what was asked: the
/// return grants nothing and keeps the reason on the payment.
#[tokio::test]
async fn a_payment_that_differs_from_the_checkout_is_refused_and_kept() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "mismatch").await;
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_90_day_pass", "provider": "paystack"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    fake.pay_paystack(&reference).unwrap();
    fake.set_paystack_requested_amount(&reference, 100);
    let (query, page) = returned(
        &t.url(&format!(
            "/payments/paystack/callback?reference={reference}"
        )),
        None,
    )
    .await;
    assert_eq!(param(&query, "why"), Some("mismatch"));
    assert!(page.contains("does not match the checkout"), "{page}");
    let stored = payment(&t, Provider::Paystack, &reference).await;
    assert_eq!(stored.status, "failed");
    assert!(stored.reason.unwrap().contains("does not match"));
    let view = me(&t, &session).await;
    assert!(view["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["plan"] != "premium_90_day_pass"));
}

/// A visitor who types a member's address gets a checkout of their own: the
/// member's Stripe customer (and its saved cards) is not offered to them.
#[tokio::test]
async fn a_visitor_never_gets_a_members_stripe_customer() {
    let (t, fake) = stack().await;
    let (email, session) = member(&t, "known-customer").await;
    // The member subscribes through Stripe: Stripe now has a customer for them.
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_monthly", "provider": "stripe"}),
    )
    .await;
    let reference = body["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &reference)
        .await
        .session_id
        .unwrap();
    fake.pay_stripe(&session_id).unwrap();
    let success = t.url(&format!("/payments/stripe/success?session_id={session_id}"));
    assert_eq!(
        param(&returned(&success, None).await.0, "outcome"),
        Some("paid")
    );
    // The member's next checkout names their customer; Stripe fills the address.
    let (_, body) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_lifetime", "provider": "stripe"}),
    )
    .await;
    let (_, form) = fake.stripe_creates().pop().unwrap();
    let customer = form
        .iter()
        .find(|(k, _)| k == "customer")
        .map(|(_, v)| v.clone());
    assert!(
        customer.as_deref().is_some_and(|c| c.starts_with("cus_")),
        "{form:?}"
    );
    assert!(!form.iter().any(|(k, _)| k == "customer_email"));
    let reference = body["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &reference)
        .await
        .session_id
        .unwrap();
    fake.pay_stripe(&session_id).unwrap();
    let success = t.url(&format!("/payments/stripe/success?session_id={session_id}"));
    let (query, page) = returned(&success, None).await;
    assert_eq!(param(&query, "outcome"), Some("paid"), "{page}");
    // A visitor with the same address: no customer, only the address.
    let (status, _) = checkout(
        &t,
        None,
        json!({"email": email, "plan": "premium_lifetime", "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, form) = fake.stripe_creates().pop().unwrap();
    assert!(!form.iter().any(|(k, _)| k == "customer"), "{form:?}");
    assert!(form.contains(&("customer_email".to_string(), email.clone())));
}

/// An account a visitor's checkout made gets no setup link before payment,
/// whoever asks for one.
#[tokio::test]
async fn an_unpaid_visitor_account_gets_no_setup_link_on_request() {
    let (t, _fake) = stack().await;
    let email = t.email("freeloader");
    let (status, _) = checkout(
        &t,
        None,
        json!({"email": email, "plan": "premium_monthly", "provider": "paystack"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = t
        .post_json("/account/resend-setup-email", &json!({"email": email}))
        .await;
    assert_eq!(status, 202, "the same answer as for any address");
    t.drain_queue().await;
    assert!(t.emails_to(&email).await.is_empty());
}

#[tokio::test]
async fn a_visitor_address_is_limited_to_ten_checkouts_an_hour() {
    let (t, fake) = stack().await;
    let email = t.email("eager");
    let body = json!({"email": email, "plan": "premium_monthly", "provider": "paystack"});
    for _ in 0..10 {
        let (status, answer) = checkout(&t, None, body.clone()).await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, answer) = checkout(&t, None, body).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(fake.paystack_initializes().len(), 10);
}

/// Stripe's own end of an unpaid session closes its payment: a delayed
/// payment that failed, or a session that expired.
#[tokio::test]
async fn stripe_closes_an_unpaid_checkout_by_its_events() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "closed").await;
    for (event, status) in [
        ("checkout.session.async_payment_failed", "failed"),
        ("checkout.session.expired", "cancelled"),
    ] {
        let (_, body) = checkout(
            &t,
            Some(&session),
            json!({"plan": "premium_lifetime", "provider": "stripe"}),
        )
        .await;
        let reference = body["reference"].as_str().unwrap().to_string();
        let session_id = payment(&t, Provider::Stripe, &reference)
            .await
            .session_id
            .unwrap();
        let object = fake.stripe_session(&session_id).unwrap();
        let body = gatehouse_e2e::stripe_event(
            &t.id(event),
            event,
            chrono::Utc::now().timestamp(),
            object,
        );
        let (code, answer) = t.post_stripe(&body).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["status"], "processed", "{answer}");
        assert_eq!(
            payment(&t, Provider::Stripe, &reference).await.status,
            status
        );
    }
}

/// A paid checkout recorded under Stripe's event id (before checkouts were
/// keyed by session) and redelivered is still a duplicate.
#[tokio::test]
async fn a_checkout_recorded_under_its_event_id_is_not_applied_again() {
    let (t, _fake) = stack().await;
    let email = t.email("legacy");
    let object = gatehouse_e2e::stripe_checkout(
        &t.id("cs_legacy"),
        &t.id("cus"),
        &email,
        "payment",
        Some("premium_lifetime"),
    );
    let body = gatehouse_e2e::stripe_event(
        &t.id("evt_legacy"),
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        object,
    );
    // As an earlier version recorded it: under the event id.
    let delivery = gatehouse::service::webhook::Delivery::new(
        Provider::Stripe,
        Some(t.id("evt_legacy")),
        "checkout.session.completed",
        body.as_bytes(),
        chrono::Utc::now(),
    );
    let event =
        gatehouse::providers::stripe::StripeEvent::from_json(&serde_json::from_str(&body).unwrap());
    t.stack
        .services
        .process_stripe(&delivery, &event)
        .await
        .unwrap();
    t.drain_queue().await;
    let before = t.emails_to(&email).await.len();
    assert!(before >= 1);
    let (status, answer) = t.post_stripe(&body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "duplicate", "{answer}");
    t.drain_queue().await;
    assert_eq!(t.emails_to(&email).await.len(), before);
}

/// A refund of a checkout's payment that was never applied takes nothing
/// away: a pending payment names its buyer and plan, but granted nothing,
/// so the plan the member holds from an earlier payment stays.
#[tokio::test]
async fn a_refund_of_an_unapplied_checkout_takes_nothing_away() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "refund-pending").await;
    let start = || {
        checkout(
            &t,
            Some(&session),
            json!({"plan": "premium_monthly", "provider": "paystack"}),
        )
    };
    let (_, paid) = start().await;
    let paid = paid["reference"].as_str().unwrap().to_string();
    fake.pay_paystack(&paid).unwrap();
    let (query, _) = returned(
        &t.url(&format!("/payments/paystack/callback?reference={paid}")),
        None,
    )
    .await;
    assert_eq!(param(&query, "outcome"), Some("paid"));
    // A second checkout for the same plan, never paid, and refunded.
    let (_, unpaid) = start().await;
    let unpaid = unpaid["reference"].as_str().unwrap().to_string();
    let refund = json!({"event": "refund.processed", "data": {"status": "processed",
        "transaction_reference": unpaid, "amount": 500000, "currency": "NGN"}})
    .to_string();
    let (status, answer) = t.post_paystack(&refund).await;
    assert_eq!(status, 200, "{answer}");
    let view = me(&t, &session).await;
    let premium = view["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plan"] == "premium_monthly")
        .unwrap();
    assert_eq!(premium["state"], "active", "{view}");
    assert_eq!(premium["access"], true);
}

/// Admins list payments newest first, filtered, with amounts as decimal money
/// in their currency; a member's payments show with the member; a Stripe
/// checkout is one payment, not two.
#[tokio::test]
async fn admins_list_payments_with_their_money_and_filters() {
    let (t, fake) = stack().await;
    let (_, session) = member(&t, "payer").await;
    // Paid through Paystack (NGN), paid once through Stripe (USD), one failed.
    let (_, paid) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_90_day_pass", "provider": "paystack"}),
    )
    .await;
    let paid = paid["reference"].as_str().unwrap().to_string();
    fake.pay_paystack(&paid).unwrap();
    returned(
        &t.url(&format!("/payments/paystack/callback?reference={paid}")),
        None,
    )
    .await;
    let (_, lifetime) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_lifetime", "provider": "stripe"}),
    )
    .await;
    let lifetime = lifetime["reference"].as_str().unwrap().to_string();
    let session_id = payment(&t, Provider::Stripe, &lifetime)
        .await
        .session_id
        .unwrap();
    fake.pay_stripe(&session_id).unwrap();
    returned(
        &t.url(&format!("/payments/stripe/success?session_id={session_id}")),
        None,
    )
    .await;
    let (_, abandoned) = checkout(
        &t,
        Some(&session),
        json!({"plan": "premium_monthly", "provider": "paystack"}),
    )
    .await;
    let abandoned = abandoned["reference"].as_str().unwrap().to_string();
    returned(
        &t.url(&format!(
            "/payments/paystack/callback?reference={abandoned}"
        )),
        None,
    )
    .await;
    let user = payment(&t, Provider::Paystack, &paid).await.user_id;

    let (status, all) = t
        .admin("GET", &format!("/admin/payments?user={user}"), None)
        .await;
    assert_eq!(status, 200, "{all}");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "a Stripe checkout is listed once: {all}");
    assert_eq!(items[0]["reference"], abandoned.as_str(), "newest first");
    let by_reference = |r: &str| items.iter().find(|i| i["reference"] == r).unwrap();
    assert_eq!(by_reference(&paid)["amount"], "12000.00 NGN");
    assert_eq!(by_reference(&paid)["amount_minor"], 1200000);
    assert_eq!(by_reference(&paid)["status"], "succeeded");
    assert_eq!(by_reference(&lifetime)["amount"], "499.00 USD");
    assert_eq!(by_reference(&abandoned)["status"], "failed");
    assert_eq!(by_reference(&abandoned)["checkout"], true);

    let (_, filtered) = t
        .admin(
            "GET",
            &format!("/admin/payments?provider=paystack&status=succeeded&user={user}"),
            None,
        )
        .await;
    let filtered = filtered["items"].as_array().unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["reference"], paid.as_str());
    let (_, everyone) = t
        .admin("GET", "/admin/payments?provider=stripe&limit=50", None)
        .await;
    assert!(everyone["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["reference"] == lifetime.as_str()));
    let (status, bad) = t.admin("GET", "/admin/payments?status=paid", None).await;
    assert_eq!(status, 400, "{bad}");

    // The member's own view for admins carries their payments.
    let (_, shown) = t.admin("GET", &format!("/admin/users/{user}"), None).await;
    assert_eq!(shown["payments"].as_array().unwrap().len(), 3, "{shown}");

    // The seed's premium-users list: users holding a permission now.
    let (status, premium) = t
        .admin(
            "GET",
            "/admin/users?permission=read:premium-content&limit=200",
            None,
        )
        .await;
    assert_eq!(status, 200, "{premium}");
    assert!(premium["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["user_id"] == user.as_str()));
    let (status, _) = t
        .admin("GET", "/admin/users?permission=fly:planes", None)
        .await;
    assert_eq!(status, 400);
    // A visitor who has not paid holds no premium permission, so is not listed.
    let visitor = t.email("not-premium");
    let (status, _) = checkout(
        &t,
        None,
        json!({"email": visitor, "plan": "premium_monthly", "provider": "paystack"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, premium) = t
        .admin(
            "GET",
            "/admin/users?permission=read:premium-content&limit=200",
            None,
        )
        .await;
    let listed: Vec<&str> = premium["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(!listed.contains(&visitor.as_str()), "{premium}");
    let (_, everyone) = t.admin("GET", "/admin/users?limit=200", None).await;
    assert!(everyone["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["email"] == visitor.as_str()));

    // And through the CLI.
    let out = t
        .cli(&[
            "payments",
            "list",
            "--user",
            user.as_str(),
            "--status",
            "failed",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&abandoned), "{}", out.stdout);
    assert!(!out.stdout.contains(&paid), "{}", out.stdout);
}

/// A second 90-day pass bought while the first still runs starts when the
/// first ends: no paid day is lost, and the member is told when it starts.
#[tokio::test]
async fn a_second_pass_starts_when_the_first_ends() {
    let (t, fake) = stack().await;
    let (email, session) = member(&t, "two-passes").await;
    let mut ends = Vec::new();
    let mut references = Vec::new();
    for _ in 0..2 {
        let (_, body) = checkout(
            &t,
            Some(&session),
            json!({"plan": "premium_90_day_pass", "provider": "paystack"}),
        )
        .await;
        let reference = body["reference"].as_str().unwrap().to_string();
        references.push(reference.clone());
        fake.pay_paystack(&reference).unwrap();
        let (query, _) = returned(
            &t.url(&format!(
                "/payments/paystack/callback?reference={reference}"
            )),
            None,
        )
        .await;
        assert_eq!(param(&query, "outcome"), Some("paid"));
        let view = me(&t, &session).await;
        let pass = view["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["plan"] == "premium_90_day_pass")
            .cloned()
            .unwrap();
        assert_eq!(pass["access"], true);
        let until = chrono::DateTime::parse_from_rfc3339(pass["access_until"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        ends.push(until);
    }
    let added = ends[1] - ends[0];
    assert!(
        (added - chrono::Duration::days(90)).num_seconds().abs() < 60,
        "the second pass adds its 90 days after the first: {ends:?}"
    );
    t.drain_queue().await;
    let emails = t.emails_to(&email).await;
    assert!(
        emails
            .iter()
            .any(|e| e.body.contains("starts when your current one ends")),
        "{emails:?}"
    );
    // The second pass is upcoming until the first ends.
    let payments: Value = t
        .http
        .get(t.url("/account/payments"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_reference = |r: &str| {
        payments["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["reference"] == r)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_reference(&references[0])["upcoming"], false);
    let queued = by_reference(&references[1]);
    assert_eq!(queued["upcoming"], true, "{payments}");
    let starts = chrono::DateTime::parse_from_rfc3339(queued["starts_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(
        (starts - ends[0]).num_seconds().abs() < 60,
        "starts when the first ends"
    );
    // The queued pass is refunded before it starts: only its days go; the
    // first pass keeps its access.
    let refund = json!({"event": "refund.processed", "data": {"status": "processed",
        "transaction_reference": references[1], "amount": 1200000, "currency": "NGN"}})
    .to_string();
    let (status, answer) = t.post_paystack(&refund).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "processed", "{answer}");
    let view = me(&t, &session).await;
    let pass = view["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plan"] == "premium_90_day_pass")
        .cloned()
        .unwrap();
    assert_eq!(pass["access"], true, "{view}");
    let until = chrono::DateTime::parse_from_rfc3339(pass["access_until"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(
        (until - ends[0]).num_seconds().abs() < 60,
        "back to the first pass's end: {until} vs {:?}",
        ends[0]
    );
}
