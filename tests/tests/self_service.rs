//! The member's own billing over HTTP, against the local fake providers:
//! cancel and resume for Stripe and Paystack (the state changes through the
//! provider's webhook), Kajabi's and one-time purchases' 409, and the link
//! to fix a card (Stripe Billing Portal, Paystack manage link).

use gatehouse_e2e::{
    purchase, Auth, Options, TestStack, PAYSTACK_SECRET, STRIPE_API_KEY, STRIPE_SECRETS,
};
use gatehouse_local::fake_payments::{FakePayments, WebhookTarget};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

async fn stack() -> (TestStack, FakePayments) {
    stack_with(None).await
}

async fn stack_with(clock: Option<gatehouse_e2e::TestClock>) -> (TestStack, FakePayments) {
    let fake = FakePayments::start(STRIPE_API_KEY, PAYSTACK_SECRET).await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(fake.base_url.clone()),
        paystack_api: Some(fake.base_url.clone()),
        urls_from_listener: true,
        clock: clock.map(|c| c.clock()),
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

/// A member (bought through Kajabi, password set): their session token.
async fn member(t: &TestStack, name: &str) -> String {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (token, _) = t.wait_emails(&email, 1).await[0].setup_link().unwrap();
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The member buys `plan` through `provider` and pays on the fake's page
/// (webhook, then return): the payment's reference.
async fn bought(
    t: &TestStack,
    fake: &FakePayments,
    session: &str,
    plan: &str,
    provider: &str,
) -> String {
    let started: Value = t
        .http
        .post(t.url("/account/checkout"))
        .bearer_auth(session)
        .json(&json!({"plan": plan, "provider": provider}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = started["url"].as_str().unwrap();
    let pay = match provider {
        "stripe" => format!(
            "{}/checkout/pay/{}",
            fake.base_url,
            url.rsplit('/').next().unwrap()
        ),
        _ => format!(
            "{}/paystack/pay/{}",
            fake.base_url,
            started["reference"].as_str().unwrap()
        ),
    };
    // reqwest follows the 303s: the fake's return URL, then the return page.
    let page = t.http.post(pay).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Payment successful"));
    started["reference"].as_str().unwrap().to_string()
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

fn subscription<'a>(view: &'a Value, plan: &str) -> &'a Value {
    view["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["plan"] == plan)
        .unwrap_or_else(|| panic!("no {plan} in {view}"))
}

async fn change(t: &TestStack, session: &str, id: &str, what: &str) -> (u16, Value) {
    let response = t
        .http
        .post(t.url(&format!("/account/subscriptions/{id}/{what}")))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_stripe_member_cancels_and_resumes_and_stripes_webhook_changes_the_state() {
    let (t, fake) = stack().await;
    let session = member(&t, "stripe-renewal").await;
    bought(&t, &fake, &session, "premium_monthly", "stripe").await;
    let view = me(&t, &session).await;
    let sub = subscription(&view, "premium_monthly");
    assert_eq!(sub["state"], "active", "{view}");
    assert_eq!(sub["renews"], true);
    let id = sub["id"].as_str().unwrap().to_string();
    let stripe_id = id.strip_prefix("stripe:").unwrap().to_string();
    assert!(stripe_id.starts_with("sub_"), "{id}");

    let (status, answer) = change(&t, &session, &id, "cancel").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "cancellation requested");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("cancellation requested; access until "),
        "{answer}"
    );
    // Nothing changes until Stripe says so.
    assert_eq!(
        subscription(&me(&t, &session).await, "premium_monthly")["state"],
        "active"
    );
    let (_, r) = t
        .post_stripe(&fake.stripe_subscription_webhook_body(&stripe_id).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = me(&t, &session).await;
    let sub = subscription(&view, "premium_monthly");
    assert_eq!(sub["state"], "canceled", "{view}");
    assert_eq!(sub["access"], true, "access runs to the period's end");

    let (status, answer) = change(&t, &session, &id, "resume").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "resume requested");
    let (_, r) = t
        .post_stripe(&fake.stripe_subscription_webhook_body(&stripe_id).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(
        subscription(&me(&t, &session).await, "premium_monthly")["state"],
        "active"
    );
    // Cancel, resume and cancel again before any webhook: Stripe ends up
    // cancelling (each request is its own, never a replay of an older one).
    for what in ["cancel", "resume", "cancel"] {
        let (status, answer) = change(&t, &session, &id, what).await;
        assert_eq!(status, 202, "{what}: {answer}");
    }
    assert_eq!(
        fake.stripe_subscription(&stripe_id).unwrap()["cancel_at_period_end"],
        true
    );
}

/// Paystack has no cancel at period end: Gatehouse disables the
/// subscription, and the disable that follows keeps the paid period.
#[tokio::test]
async fn a_paystack_member_cancels_and_keeps_the_paid_period() {
    let (t, fake) = stack().await;
    let session = member(&t, "paystack-renewal").await;
    let reference = bought(&t, &fake, &session, "premium_monthly", "paystack").await;
    let code = fake.paystack_subscription_code(&reference).unwrap();
    let (_, r) = t
        .post_paystack(&fake.paystack_subscription_webhook_body(&code).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = me(&t, &session).await;
    let id = subscription(&view, "premium_monthly")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id, "paystack:premium_monthly");

    let (status, answer) = change(&t, &session, &id, "cancel").await;
    assert_eq!(status, 202, "{answer}");
    let (_, r) = t
        .post_paystack(&fake.paystack_subscription_webhook_body(&code).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = me(&t, &session).await;
    let sub = subscription(&view, "premium_monthly");
    assert_eq!(
        sub["state"], "canceled",
        "the disable keeps the paid period: {view}"
    );
    assert_eq!(sub["access"], true);
    assert!(sub["access_until"].is_string());

    let (status, answer) = change(&t, &session, &id, "resume").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "resume requested");
    // Paystack sends nothing for a re-enable: Gatehouse applied its view.
    let view = me(&t, &session).await;
    assert_eq!(
        subscription(&view, "premium_monthly")["state"],
        "active",
        "{view}"
    );
}

#[tokio::test]
async fn what_cannot_be_cancelled_here_says_why() {
    let (t, fake) = stack().await;
    let session = member(&t, "kajabi-renewal").await;
    let view = me(&t, &session).await;
    let kajabi = subscription(&view, "nssa_annual")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, answer) = change(&t, &session, &kajabi, "cancel").await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("Kajabi"),
        "{answer}"
    );
    bought(&t, &fake, &session, "premium_lifetime", "stripe").await;
    let view = me(&t, &session).await;
    let lifetime = subscription(&view, "premium_lifetime");
    assert_eq!(lifetime["renews"], false);
    let (status, answer) = change(&t, &session, lifetime["id"].as_str().unwrap(), "cancel").await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("one-time"),
        "{answer}"
    );
    let (status, _) = change(&t, &session, "stripe:sub_someone_else", "cancel").await;
    assert_eq!(status, 404);
    // A Paystack pass is one-time too, though Paystack's rows are not marked so.
    bought(&t, &fake, &session, "premium_90_day_pass", "paystack").await;
    let view = me(&t, &session).await;
    let pass = subscription(&view, "premium_90_day_pass");
    assert_eq!(pass["renews"], false, "{view}");
    let (status, answer) = change(&t, &session, pass["id"].as_str().unwrap(), "cancel").await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("one-time"),
        "{answer}"
    );
    let anonymous = t
        .http
        .post(t.url(&format!("/account/subscriptions/{kajabi}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[tokio::test]
async fn the_billing_link_goes_to_the_providers_card_page() {
    let (t, fake) = stack().await;
    let session = member(&t, "billing").await;
    let post = |body: Value| {
        t.http
            .post(t.url("/account/billing"))
            .bearer_auth(&session)
            .json(&body)
            .send()
    };
    // A Kajabi member has no card Gatehouse can send them to.
    let response = post(json!({})).await.unwrap();
    assert_eq!(response.status().as_u16(), 409);

    bought(&t, &fake, &session, "premium_monthly", "stripe").await;
    let response = post(json!({})).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.com/"),
        "{body}"
    );
    let (customer, return_url) = fake.portals().pop().unwrap();
    assert!(customer.starts_with("cus_"));
    assert!(
        return_url.ends_with("/account/me"),
        "returns to the app: {return_url}"
    );

    // The emailed link: a stable URL that redirects with the session cookie.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(t.url("/account/billing"))
        .header("cookie", format!("gatehouse_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status().as_u16(), 303);
    assert!(redirect.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("https://billing.stripe.com/"));

    // A Paystack subscription's manage link, chosen by its id.
    let reference = bought(&t, &fake, &session, "premium_monthly", "paystack").await;
    let code = fake.paystack_subscription_code(&reference).unwrap();
    let (_, r) = t
        .post_paystack(&fake.paystack_subscription_webhook_body(&code).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let body: Value = post(json!({"subscription": "paystack:premium_monthly"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://paystack.com/manage/subscriptions/{code}")),
        "{body}"
    );
}

/// Each member email is also an in-app notice, written with its job: the
/// member lists them newest first, pages through them and marks them read;
/// nobody else can.
#[tokio::test]
async fn member_emails_are_notices_the_member_reads_and_marks() {
    let (t, fake) = stack().await;
    let session = member(&t, "notices").await;
    let other = member(&t, "not-mine").await;
    // A pass (payment successful), then a Stripe subscription cancelled
    // (payment successful for its read, then canceled).
    bought(&t, &fake, &session, "premium_90_day_pass", "paystack").await;
    bought(&t, &fake, &session, "premium_monthly", "stripe").await;
    let view = me(&t, &session).await;
    let id = subscription(&view, "premium_monthly")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = change(&t, &session, &id, "cancel").await;
    assert_eq!(status, 202);
    let stripe_id = id.strip_prefix("stripe:").unwrap();
    let (_, r) = t
        .post_stripe(&fake.stripe_subscription_webhook_body(stripe_id).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");

    let list = |token: String, query: &'static str| {
        let t = &t;
        async move {
            let response = t
                .http
                .get(t.url(&format!("/account/notifications{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let all = list(session.clone(), "").await;
    let items = all["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"canceled"), "newest first: {all}");
    assert!(kinds.contains(&"payment_successful"), "{all}");
    assert!(items.iter().all(|n| n["read"] == false));
    assert!(items[0]["text"]
        .as_str()
        .unwrap()
        .contains("You keep access until"));
    // Written with its email: the notice is named by its job.
    let job = gatehouse::domain::JobId::from_stored(items[0]["id"].as_str().unwrap());
    assert_eq!(
        t.stack.services.store.get_jobs(&[job]).await.unwrap().len(),
        1
    );

    // Paged.
    let first = list(session.clone(), "?limit=1").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let next = first["next"].as_str().unwrap().to_string();
    let second = t
        .http
        .get(t.url(&format!("/account/notifications?limit=1&after={next}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["id"], items[1]["id"]);

    // Marked read by its member only.
    let read = |token: String, id: String| {
        let t = &t;
        async move {
            t.http
                .post(t.url(&format!("/account/notifications/{id}/read")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let id = items[0]["id"].as_str().unwrap().to_string();
    assert_eq!(read(other.clone(), id.clone()).await, 404);
    assert_eq!(read(session.clone(), id.clone()).await, 204);
    assert_eq!(read(session.clone(), id).await, 204, "again: still read");
    assert_eq!(read(session.clone(), "job_nothing".into()).await, 404);
    let after = list(session.clone(), "").await;
    assert_eq!(after["items"][0]["read"], true);
    assert_eq!(after["items"][1]["read"], false);
    assert_eq!(
        list(other, "").await["items"],
        json!([]),
        "a setup link is no notice, and another member's are not theirs"
    );
}

/// The member's cancel softens only the disable of the subscription they
/// cancelled: a later subscription on the same plan, disabled by the
/// merchant, ends at once.
#[tokio::test]
async fn a_members_cancel_does_not_soften_a_later_subscriptions_disable() {
    let clock = gatehouse_e2e::TestClock::new();
    let (t, fake) = stack_with(Some(clock.clone())).await;
    let session = member(&t, "paystack-later").await;
    let reference = bought(&t, &fake, &session, "premium_monthly", "paystack").await;
    let code = fake.paystack_subscription_code(&reference).unwrap();
    let (_, r) = t
        .post_paystack(&fake.paystack_subscription_webhook_body(&code).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (status, _) = change(&t, &session, "paystack:premium_monthly", "cancel").await;
    assert_eq!(status, 202);
    // Before that disable arrives, a new subscription takes the plan's row…
    clock.advance(chrono::Duration::minutes(1));
    let mut later: Value =
        serde_json::from_str(&fake.paystack_subscription_webhook_body(&code).unwrap()).unwrap();
    later["event"] = json!("subscription.create");
    later["data"]["subscription_code"] = json!("SUB_later");
    later["data"]["id"] = json!(987_654);
    later["data"]["status"] = json!("active");
    let created = clock.clock()().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    later["data"]["createdAt"] = json!(created);
    later["data"]["created_at"] = json!(created);
    let (_, r) = t.post_paystack(&later.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    // …and the merchant disables that one.
    clock.advance(chrono::Duration::minutes(1));
    later["event"] = json!("subscription.disable");
    later["data"]["status"] = json!("complete");
    later["data"]["id"] = json!(987_655);
    let (_, r) = t.post_paystack(&later.to_string()).await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = me(&t, &session).await;
    let sub = subscription(&view, "premium_monthly");
    assert_eq!(sub["state"], "expired", "{view}");
    assert_eq!(sub["access"], false);
}
