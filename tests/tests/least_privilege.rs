//! Least privilege, proven: one journey drives every function, and each AWS
//! call it makes is checked against that function's own policy in
//! `infra/template.yaml`, with IAM's rules (see `gatehouse_local::iam`).
//! Every other end-to-end test is held to the same check when its stack drops.

use std::collections::BTreeMap;

use gatehouse_e2e::{
    eventually, stripe_checkout, stripe_event, stripe_subscription, Auth, Options, TestStack,
    PAYSTACK_SECRET, STRIPE_API_KEY,
};
use gatehouse_local::fake_payments::FakePayments;
use gatehouse_local::template::SamTemplate;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

async fn user_id(t: &TestStack, name: &str) -> String {
    let (status, users) = t
        .admin("GET", &format!("/admin/users?email_prefix={name}."), None)
        .await;
    assert_eq!(status, 200, "{users}");
    users["items"][0]["user_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_call_of_every_function_is_allowed_by_its_own_policy() {
    let fake = FakePayments::start(STRIPE_API_KEY, PAYSTACK_SECRET).await;
    let t = TestStack::start_with(Options {
        stripe_api: Some(fake.base_url.clone()),
        paystack_api: Some(fake.base_url.clone()),
        ..Options::default()
    })
    .await;
    let http = &t.http;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Webhooks, and the welcome email through the sender.
    let (email, token) = t.bought("member").await;
    let customer = t.id("cus");
    let now = chrono::Utc::now().timestamp();
    // The subscription first: it waits for its member, and the checkout drains it.
    let sub = stripe_event(
        &t.id("evt_sub"),
        "customer.subscription.created",
        now - 5,
        stripe_subscription(&t.id("sub"), &customer, "active", false, now + 30 * 86_400),
    );
    let (_, r) = t.post_stripe(&sub).await;
    assert_eq!(r["status"], "pending", "{r}");
    // Course completions: one for the member, one for the Stripe buyer before
    // their account exists (the checkout's account applies it).
    for (id, who, status) in [
        ("done-1", email.clone(), "processed"),
        ("done-2", t.email("stripe"), "unmatched"),
    ] {
        let completion = json!({"event_type": "form.submitted", "event_id": t.id(id),
            "data": {"form": {"id": "form_1"}, "submission": {"id": id,
                "fields": {"email": who, "course_name": "AI Foundations for Educators"}}}});
        let (_, r) = t
            .post_kajabi(&completion.to_string(), gatehouse_e2e::Auth::Signature)
            .await;
        assert_eq!(r["status"], status, "{r}");
    }
    let checkout = stripe_event(
        &t.id("evt_co"),
        "checkout.session.completed",
        now,
        stripe_checkout(
            &t.id("cs"),
            &customer,
            &t.email("stripe"),
            "subscription",
            None,
        ),
    );
    let (_, r) = t.post_stripe(&checkout).await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, applied) = t
        .admin(
            "GET",
            "/admin/events?provider=kajabi&status=unmatched",
            None,
        )
        .await;
    assert_eq!(
        applied["items"],
        json!([]),
        "the checkout applied the completion"
    );
    // A visitor's checkout through Paystack (the fake): the return applies it
    // (a new account's setup link), then the webhook is the same event.
    let plans = http.get(t.url("/plans")).send().await.unwrap();
    assert_eq!(plans.status(), 200);
    let (status, started) = t
        .post_json(
            "/account/checkout",
            &json!({"email": t.email("paystack"), "plan": "premium_monthly", "provider": "paystack"}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let reference = started["reference"].as_str().unwrap();
    fake.pay_paystack(reference).unwrap();
    let back = no_redirects
        .get(t.url(&format!(
            "/payments/paystack/callback?reference={reference}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let location = back.headers()["location"].to_str().unwrap();
    assert!(location.contains("outcome=paid"), "{location}");
    let page = http
        .get(t.url(&location[location.find("/account/return").unwrap()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let (_, r) = t
        .post_paystack(&fake.paystack_webhook_body(reference).unwrap())
        .await;
    assert_eq!(r["status"], "duplicate", "{r}");

    // The member's own routes.
    let setup_page = http.get(t.url("/account/setup")).send().await.unwrap();
    assert_eq!(setup_page.status(), 200);
    let jwks = http
        .get(t.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, login) = t
        .post_json(
            "/account/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let jwt = login["access_token"].as_str().unwrap();
    let me = http
        .get(t.url("/account/me"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // The member's own Stripe checkout, paid, and the return applies it.
    let started: Value = http
        .post(t.url("/account/checkout"))
        .bearer_auth(jwt)
        .json(&json!({"plan": "premium_lifetime", "provider": "stripe"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = started["url"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
        .unwrap()
        .to_string();
    fake.pay_stripe(&session_id).unwrap();
    let back = no_redirects
        .get(t.url(&format!("/payments/stripe/success?session_id={session_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert!(back.headers()["location"]
        .to_str()
        .unwrap()
        .contains("outcome=paid"));
    // The member's Paystack subscription: cancel (noted), resume, and the billing link.
    let started: Value = http
        .post(t.url("/account/checkout"))
        .bearer_auth(jwt)
        .json(&json!({"plan": "premium_monthly", "provider": "paystack"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reference = started["reference"].as_str().unwrap();
    fake.pay_paystack(reference).unwrap();
    let (_, r) = t
        .post_paystack(&fake.paystack_webhook_body(reference).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let code = fake.paystack_subscription_code(reference).unwrap();
    let (_, r) = t
        .post_paystack(&fake.paystack_subscription_webhook_body(&code).unwrap())
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    for change in ["cancel", "resume"] {
        let answer = http
            .post(t.url(&format!(
                "/account/subscriptions/paystack:premium_monthly/{change}"
            )))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{change}");
    }
    let notices: Value = http
        .get(t.url("/account/notifications"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let notice = notices["items"][0]["id"]
        .as_str()
        .expect("a payment notice");
    let read = http
        .post(t.url(&format!("/account/notifications/{notice}/read")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 204);
    let payments = http
        .get(t.url("/account/payments"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(payments.status(), 200);
    let billing = http
        .post(t.url("/account/billing"))
        .bearer_auth(jwt)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(billing.status(), 200);
    let (status, body) = t
        .post_json(
            "/account/resend-setup-email",
            &json!({"email": t.email("stripe")}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // Every admin function.
    let id = user_id(&t, "member").await;
    for path in [
        "/admin/users".to_string(),
        format!("/admin/users/{id}"),
        "/admin/events?provider=stripe".to_string(),
        "/admin/payments".to_string(),
        format!("/admin/payments?user={id}"),
        format!("/admin/events?user={id}"),
    ] {
        let (status, body) = t.admin("GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, events) = t.admin("GET", "/admin/events?provider=kajabi", None).await;
    let key = events["items"][0]["ref"].as_str().unwrap().to_string();
    let (status, body) = t.admin("GET", &format!("/admin/events/{key}"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/events/{key}/replay"),
            None,
            Some("replay-1"),
        )
        .await;
    assert!(status < 500, "{status} {body}");
    let stripe_id = user_id(&t, "stripe").await;
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/users/{stripe_id}/resend-setup-email"),
            None,
            Some("resend-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let roles = format!("/admin/users/{id}/roles");
    for (key, change) in [
        (
            "grant-1",
            json!({"grant": "admin", "reason": "runs the community"}),
        ),
        // A plan role: the revoke checks the subscription in its transaction.
        (
            "revoke-1",
            json!({"revoke": "premium-member", "reason": "chargeback"}),
        ),
    ] {
        let (status, body) = t
            .admin_with_key("POST", &roles, Some(&change), Some(key))
            .await;
        assert_eq!(status, 200, "{change}: {body}");
    }
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/users/{id}/points"),
            Some(&json!({"delta": 5, "reason": "journey"})),
            Some("points-1"),
        )
        .await;
    assert_eq!(status, 200, "points: {body}");
    let csv = format!(
        "email,course,completion_date\n{email},AI Foundations for Educators,2026-11-02\n{},AI Foundations for Educators,2026-11-02\n{},AI Foundations for Educators,2026-11-02\n",
        t.email("nobody-yet"),
        t.email("dismiss-me")
    );
    // A tag for the email the import leaves unmatched: it waits on the same
    // key, and the admin's link below applies it (reading the member).
    let tag = json!({"id": t.id("tag-hook"), "event": "tag_added", "payload": [
        {"id": "41", "type": "contacts", "attributes": {"name": "Nobody Yet", "email": t.email("nobody-yet"),
            "created_at": "2026-11-01T09:00:00.000Z", "updated_at": "2026-11-02T10:00:00.000Z"}},
        {"id": "7", "type": "contact_tags", "attributes": {"name": "VIP"}}]})
    .to_string();
    let (_, r) = t.post_kajabi(&tag, Auth::Signature).await;
    assert_eq!(r["status"], "unmatched", "{r}");
    let answer = t
        .admin_client()
        .send(
            "POST",
            "/admin/completions/import",
            Some((csv.into_bytes(), "text/csv")),
            Some("import-1"),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "import: {}", answer.body);
    assert_eq!(answer.body["unmatched"]["count"], 2, "{}", answer.body);
    // Completions for review: the digest, the list, a link and a dismissal.
    assert_eq!(
        t.stack.digest.handle().await.expect("digest")["digest"],
        "processed"
    );
    let (status, listed) = t.admin("GET", "/admin/completions", None).await;
    assert_eq!(status, 200, "{listed}");
    let completion = |name: &str| {
        let email = t.email(name);
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["email"] == email.as_str())
            .map(|c| c["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/completions/{}/link", completion("nobody-yet")),
            Some(&json!({"user_id": stripe_id})),
            Some("link-1"),
        )
        .await;
    assert_eq!(status, 200, "link: {body}");
    assert_eq!(body["applies"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/completions/{}/dismiss", completion("dismiss-me")),
            Some(&json!({"reason": "journey"})),
            Some("dismiss-1"),
        )
        .await;
    assert_eq!(status, 200, "dismiss: {body}");
    let (status, body) = t
        .admin(
            "GET",
            &format!("/admin/users/{stripe_id}/verify-subscription"),
            None,
        )
        .await;
    assert!(status < 500, "verify: {status} {body}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/users/{stripe_id}/sync-subscription"),
            None,
            Some("sync-1"),
        )
        .await;
    assert!(status < 500, "sync: {status} {body}");

    // The schedules.
    t.stack.sweeper.handle().await.expect("outbox sweep");
    t.stack.expiry.handle().await.expect("expiry sweep");
    eventually(
        "the sender to send every email",
        std::time::Duration::from_secs(20),
        || async { (t.queue_depth(&t.stack.queue_url).await == 0).then_some(()) },
    )
    .await;

    let calls = t.stack.iam.calls();
    let denied: Vec<_> = calls.iter().filter(|c| !c.denied.is_empty()).collect();
    assert!(denied.is_empty(), "denied: {denied:#?}");
    let mut per_function: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    // Each distinct (operation, action, resource) a function needed: what its policy must grant.
    let mut needed: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for call in &calls {
        let entry = per_function.entry(call.function.as_str()).or_default();
        entry.0 += 1;
        entry.1 += call.needed.len();
        for authorization in &call.needed {
            needed
                .entry(call.function.as_str())
                .or_default()
                .insert(format!(
                    "{} -> {} on {}",
                    call.operation,
                    authorization.action,
                    authorization.loggable_resource()
                ));
        }
    }
    let template =
        SamTemplate::load(&gatehouse_local::env::workspace_root().join("infra/template.yaml"))
            .unwrap();
    let mut report = Vec::new();
    for function in &template.functions {
        let (requests, authorizations) = per_function
            .get(function.binary.as_str())
            .copied()
            .unwrap_or_default();
        report.push(format!(
            "{:<28} {requests:>4} requests {authorizations:>4} authorizations",
            function.binary
        ));
        for line in needed.get(function.binary.as_str()).into_iter().flatten() {
            report.push(format!("    {line}"));
        }
        // These hold no AWS permission at all; everyone else was exercised.
        if !["jwks", "setup-page", "plans-list", "account-pages"]
            .contains(&function.binary.as_str())
        {
            assert!(
                requests > 0,
                "{} made no AWS call in the journey",
                function.binary
            );
        }
    }
    // stderr, so `--no-capture` shows it; the same table lands in target/ for the record.
    eprintln!("{}", report.join("\n"));
    let _ = std::fs::write(
        gatehouse_local::env::workspace_root().join("target/least-privilege.txt"),
        report.join("\n"),
    );
    let summary: Value = json!({"requests": calls.len(), "functions": per_function.len()});
    eprintln!("{summary}");
}
