//! POST /webhooks/stripe end to end.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::Utc;
use gatehouse::domain::{entitlements, Holding, SubscriptionState};
use gatehouse::store::attr::{get_s, get_ts};
use gatehouse_e2e::{
    stripe_checkout, stripe_event, stripe_header, stripe_subscription, TestStack, STRIPE_SECRETS,
};
use serde_json::json;

fn now() -> i64 {
    Utc::now().timestamp()
}

/// (state, access_until) of the user's premium_monthly subscription.
async fn sub_of(t: &TestStack, email: &str) -> Option<(String, Option<chrono::DateTime<Utc>>)> {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(email)?;
    let subs = snap.subscriptions_of(get_s(user, "user_id")?);
    let sub = subs
        .iter()
        .find(|s| get_s(s, "plan_id") == Some("premium_monthly"))?;
    Some((
        get_s(sub, "state")?.to_string(),
        get_ts(sub, "access_until"),
    ))
}

#[tokio::test]
async fn signature_failures_name_the_check() {
    let t = TestStack::start().await;
    let body = stripe_event(&t.id("evt"), "charge.captured", now(), json!({}));
    let cases = [
        (None, "missing Stripe-Signature header"),
        (Some(format!("t={},v0=abc", now())), "no v1 signature"),
        (Some("v1=abc".to_string()), "no valid timestamp"),
        (
            Some(stripe_header(&body, "whsec_wrong", now())),
            "no v1 signature matches",
        ),
        (
            Some(stripe_header(&body, STRIPE_SECRETS[0], now() - 301)),
            "outside the tolerance of 300 s",
        ),
    ];
    for (header, needle) in cases {
        let (status, problem) = t.post_stripe_with(&body, header.as_deref()).await;
        assert_eq!(status, 401, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{needle}: {problem}"
        );
    }
    // Rotation: the older secret still verifies; an unknown type is recorded as ignored.
    let (status, answer) = t.post_stripe_at(&body, STRIPE_SECRETS[1], now()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
}

/// A crafted header buys no more work than an honest one: past Stripe's caps it
/// is refused, with the limit named, before any MAC; past API Gateway's quota
/// for the whole head, before the handler runs.
#[tokio::test]
async fn oversized_signature_headers_are_refused_by_their_limit() {
    let t = TestStack::start().await;
    let body = stripe_event(&t.id("evt"), "charge.captured", now(), json!({}));
    let good = stripe_header(&body, STRIPE_SECRETS[0], now());
    let padded = format!("{good}{}", ",v1=00".repeat(16));
    let long = format!("{good}{}", ",v0=".to_string() + &"0".repeat(3000));
    // 300 entries: over API Gateway's 10 KiB head quota, which the glue enforces.
    let over_quota = format!("{good}{}", format!(",v1={}", "0".repeat(64)).repeat(300));
    for (header, status, detail) in [
        (
            padded,
            401,
            "Stripe-Signature has more than 16 entries".to_string(),
        ),
        (
            long.clone(),
            401,
            format!(
                "Stripe-Signature is {} bytes; the limit is 2048 bytes",
                long.len()
            ),
        ),
        (over_quota, 431, "the limit is 10240 bytes".to_string()),
    ] {
        let (got, problem) = t.post_stripe_with(&body, Some(&header)).await;
        assert_eq!(got, status, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&detail),
            "{detail}: {problem}"
        );
    }
    // 10,000 entries (690 KB): the HTTP server refuses the head before any handler.
    let huge = format!("{good}{}", format!(",v1={}", "0".repeat(64)).repeat(10_000));
    assert_eq!(t.post_stripe_with(&body, Some(&huge)).await.0, 431);
    // The honest header still verifies after all that.
    assert_eq!(t.post_stripe_with(&body, Some(&good)).await.0, 200);
}

#[tokio::test]
async fn events_signed_by_the_official_python_library_are_accepted() {
    let t = TestStack::start().await;
    let payloads: Vec<String> = (0..3)
        .map(|i| {
            stripe_event(
                &t.id(&format!("py{i}")),
                "charge.captured",
                now(),
                json!({"n": i}),
            )
        })
        .collect();
    let python = gatehouse_local::env::workspace_root().join(".venv/local/bin/python");
    let script = gatehouse_local::env::workspace_root().join("tests/stripe/sign.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the project venv's python (make test installs it)");
    let request = json!({"secret": STRIPE_SECRETS[0], "payloads": payloads});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(headers.len(), payloads.len());
    for (payload, header) in payloads.iter().zip(&headers) {
        let (status, answer) = t.post_stripe_with(payload, Some(header)).await;
        assert_eq!(status, 200, "{answer}");
        // Tampered body and tampered signature are refused.
        let tampered = payload.replace("charge.captured", "charge.refunded");
        assert_eq!(t.post_stripe_with(&tampered, Some(header)).await.0, 401);
        let bad_sig = header.replacen("v1=", "v1=0", 1);
        assert_eq!(t.post_stripe_with(payload, Some(&bad_sig)).await.0, 401);
    }
}

#[tokio::test]
async fn subscription_lifecycle_from_checkout_to_deletion() {
    let t = TestStack::start().await;
    let email = t.email("grace");
    let cus = t.id("cus");
    let sub = t.id("sub");
    let period_end = now() + 30 * 86_400;
    let start = now() - 100;

    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e1"),
            "checkout.session.completed",
            start,
            stripe_checkout(
                &t.id("cs"),
                &cus,
                &email.to_uppercase(),
                "subscription",
                None,
            ),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let welcome = t.wait_emails(&email, 1).await;
    assert!(welcome[0].subject.starts_with("Welcome"));
    assert!(welcome[0].setup_link().is_some());
    t.wait_emails(&t.admin, 1).await;
    let snap = t.snapshot().await;
    assert_eq!(
        get_s(snap.user_by_email(&email).unwrap(), "auth_provider"),
        Some("stripe")
    );

    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e2"),
            "customer.subscription.created",
            start + 1,
            stripe_subscription(&sub, &cus, "active", false, period_end),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (state, until) = sub_of(&t, &email).await.unwrap();
    assert_eq!(state, "active");
    assert_eq!(
        until.map(|d| d.timestamp()),
        Some(period_end),
        "period end read from the items"
    );

    // Effective roles follow the subscription.
    let holding = Holding {
        plan_id: "premium_monthly".into(),
        state: SubscriptionState::Active,
        access_until: until,
        key: "stripe#premium_monthly".into(),
        last_change: "stripe:evt_1".into(),
    };
    let e = entitlements(
        &t.stack.services.settings.plans,
        &[holding],
        &[],
        &[],
        Utc::now(),
    );
    assert!(
        e.permissions.contains("read:premium-content")
            && e.permissions.contains("manage:subscription")
    );

    // Cancel at period end: canceled, access until the period end, and a notice.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e3"),
            "customer.subscription.updated",
            start + 2,
            stripe_subscription(&sub, &cus, "active", true, period_end),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let (state, until) = sub_of(&t, &email).await.unwrap();
    assert_eq!(
        (state.as_str(), until.map(|d| d.timestamp())),
        ("canceled", Some(period_end))
    );
    // Undoing it restores active.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e4"),
            "customer.subscription.updated",
            start + 3,
            stripe_subscription(&sub, &cus, "active", false, period_end),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    assert_eq!(sub_of(&t, &email).await.unwrap().0, "active");

    // A failed renewal: past due, access through the grace period, and a notice.
    let invoice = |paid_period_end: i64| {
        json!({"id": "in_1", "object": "invoice", "customer": cus, "customer_email": email, "billing_reason": "subscription_cycle",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub}},
        "lines": {"data": [{"period": {"end": paid_period_end}, "price": {"id": "price_premium_monthly", "product": "prod_premium_monthly"}}]}})
    };
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e5"),
            "invoice.payment_failed",
            start + 4,
            invoice(period_end),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (state, until) = sub_of(&t, &email).await.unwrap();
    assert_eq!(state, "past_due");
    let grace = until.unwrap().timestamp() - now();
    assert!(
        (6 * 86_400..=7 * 86_400).contains(&grace),
        "seven days of grace, got {grace} s"
    );
    // Paid after all: active with the new period.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e6"),
            "invoice.paid",
            start + 5,
            invoice(period_end + 30 * 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let (state, until) = sub_of(&t, &email).await.unwrap();
    assert_eq!(
        (state.as_str(), until.map(|d| d.timestamp())),
        ("active", Some(period_end + 30 * 86_400))
    );

    // Deleted: expired, no access, and a notice.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e7"),
            "customer.subscription.deleted",
            start + 6,
            stripe_subscription(&sub, &cus, "canceled", false, period_end),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    assert_eq!(sub_of(&t, &email).await.unwrap().0, "expired");

    let emails = t.wait_emails(&email, 4).await;
    let subjects: Vec<&str> = emails.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects.iter().any(|s| s.contains("canceled")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("Payment failed")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("expired")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn same_second_events_apply_in_lifecycle_order() {
    let t = TestStack::start().await;
    let email = t.email("order");
    let cus = t.id("cus");
    let second = now() - 50;
    t.post_stripe(&stripe_event(
        &t.id("co"),
        "checkout.session.completed",
        second - 1,
        stripe_checkout(&t.id("cs"), &cus, &email, "subscription", None),
    ))
    .await;
    let end = now() + 86_400 * 30;
    // updated(active) arrives before created(incomplete) from the same second.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("upd"),
            "customer.subscription.updated",
            second,
            stripe_subscription("sub_o", &cus, "active", false, end),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("cre"),
            "customer.subscription.created",
            second,
            stripe_subscription("sub_o", &cus, "incomplete", false, end),
        ))
        .await;
    assert_eq!(r["status"], "superseded", "{r}");
    assert_eq!(sub_of(&t, &email).await.unwrap().0, "active");
    // An older event is superseded too.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("old"),
            "customer.subscription.updated",
            second - 10,
            stripe_subscription("sub_o", &cus, "past_due", false, end),
        ))
        .await;
    assert_eq!(r["status"], "superseded");
    assert_eq!(sub_of(&t, &email).await.unwrap().0, "active");
}

#[tokio::test]
async fn unknown_prices_customers_and_plans_fail_and_grant_nothing() {
    let t = TestStack::start().await;
    let email = t.email("unknown");
    let cus = t.id("cus");
    // A subscription before any checkout waits, and the checkout applies it.
    let created = stripe_event(
        &t.id("early"),
        "customer.subscription.created",
        now(),
        stripe_subscription("sub_u", &cus, "active", false, now() + 86_400),
    );
    let (_, r) = t.post_stripe(&created).await;
    assert_eq!(r["status"], "pending");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("waiting for customer"),
        "{r}"
    );
    assert!(sub_of(&t, &email).await.is_none());
    t.post_stripe(&stripe_event(
        &t.id("co"),
        "checkout.session.completed",
        now(),
        stripe_checkout(&t.id("cs"), &cus, &email, "subscription", None),
    ))
    .await;
    assert_eq!(
        sub_of(&t, &email).await.unwrap().0,
        "active",
        "the checkout applied the waiting subscription"
    );
    let (_, r) = t.post_stripe(&created).await;
    assert_eq!(
        r["status"], "duplicate",
        "a redelivery of the applied event does nothing"
    );

    let mut odd = stripe_subscription("sub_x", &cus, "active", false, now() + 86_400);
    odd["items"]["data"][0]["price"] = json!({"id": "price_unknown", "product": "prod_unknown"});
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("odd"),
            "customer.subscription.created",
            now(),
            odd,
        ))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("price_unknown"),
        "{r}"
    );

    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("pay"),
            "checkout.session.completed",
            now(),
            stripe_checkout(&t.id("cs2"), &cus, &email, "payment", Some("no_such_plan")),
        ))
        .await;
    assert_eq!(r["status"], "failed");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("pay2"),
            "checkout.session.completed",
            now(),
            stripe_checkout(&t.id("cs3"), &cus, &email, "payment", None),
        ))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("metadata.plan"),
        "{r}"
    );
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    assert_eq!(
        snap.subscriptions_of(get_s(user, "user_id").unwrap()).len(),
        1,
        "only the known price granted anything"
    );
}

#[tokio::test]
async fn one_time_lifetime_purchase() {
    let t = TestStack::start().await;
    let email = t.email("life");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("lt"),
            "checkout.session.completed",
            now(),
            stripe_checkout(
                &t.id("cs"),
                &t.id("cus"),
                &email,
                "payment",
                Some("premium_lifetime"),
            ),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(get_s(subs[0], "plan_id"), Some("premium_lifetime"));
    assert_eq!(get_s(subs[0], "state"), Some("active"));
    assert!(
        get_ts(subs[0], "access_until").is_none(),
        "lifetime access never ends"
    );
}

#[tokio::test]
async fn concurrent_checkout_and_subscription_create_one_user_five_runs() {
    let t = TestStack::start().await;
    for run in 0..5 {
        let email = t.email(&format!("rush{run}"));
        let cus = t.id(&format!("cus{run}"));
        let checkout = stripe_event(
            &t.id(&format!("co{run}")),
            "checkout.session.completed",
            now(),
            stripe_checkout(
                &t.id(&format!("cs{run}")),
                &cus,
                &email,
                "subscription",
                None,
            ),
        );
        let created = stripe_event(
            &t.id(&format!("sc{run}")),
            "customer.subscription.created",
            now(),
            stripe_subscription(
                &t.id(&format!("sub{run}")),
                &cus,
                "active",
                false,
                now() + 86_400 * 30,
            ),
        );
        let bodies: Vec<String> = (0..20)
            .map(|i| {
                if i % 2 == 0 {
                    checkout.clone()
                } else {
                    created.clone()
                }
            })
            .collect();
        let results = futures::future::join_all(bodies.iter().map(|b| t.post_stripe(b))).await;
        assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
        // Stripe retries a subscription event that arrived before the checkout.
        let (_, retry) = t.post_stripe(&created).await;
        assert!(
            ["processed", "duplicate"].contains(&retry["status"].as_str().unwrap()),
            "{retry}"
        );

        t.wait_emails(&email, 1).await;
        let snap = t.snapshot().await;
        assert_eq!(
            snap.users()
                .iter()
                .filter(|u| get_s(u, "email") == Some(email.as_str()))
                .count(),
            1,
            "run {run}"
        );
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        assert_eq!(subs.len(), 1, "run {run}");
        assert_eq!(get_s(subs[0], "state"), Some("active"));
        assert_eq!(
            snap.jobs_to(&email).len(),
            1,
            "one welcome email, run {run}"
        );
    }
}

#[tokio::test]
async fn a_full_refund_revokes_a_one_time_purchase_and_a_partial_one_is_recorded() {
    let t = TestStack::start().await;
    let email = t.email("refund");
    let pi = t.id("pi");
    let mut session = stripe_checkout(
        &t.id("cs"),
        &t.id("cus"),
        &email,
        "payment",
        Some("premium_lifetime"),
    );
    session["payment_intent"] = json!(pi);
    session["amount_total"] = json!(19900);
    session["currency"] = json!("USD");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("co"),
            "checkout.session.completed",
            now(),
            session,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");

    let snap = t.snapshot().await;
    let payment = snap
        .of_kind("PAYMENT")
        .into_iter()
        .find(|p| get_s(p, "reference") == Some(pi.as_str()))
        .expect("payment record");
    assert_eq!(get_s(payment, "status"), Some("succeeded"));
    assert_eq!(
        gatehouse::store::attr::get_n(payment, "amount"),
        Some(19900),
        "minor units"
    );
    assert_eq!(get_s(payment, "currency"), Some("usd"));
    assert_eq!(get_s(payment, "plan_id"), Some("premium_lifetime"));

    let charge = |refunded: i64, full: bool| json!({"id": "ch_1", "object": "charge", "payment_intent": pi, "amount": 19900, "amount_refunded": refunded, "refunded": full, "currency": "usd"});
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("partial"),
            "charge.refunded",
            now(),
            charge(5000, false),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let lifetime = |snap: &gatehouse_local::inspect::Snapshot| {
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        get_s(subs[0], "state").unwrap().to_string()
    };
    assert_eq!(
        lifetime(&t.snapshot().await),
        "active",
        "a partial refund revokes nothing"
    );

    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("full"),
            "charge.refunded",
            now(),
            charge(19900, true),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let snap = t.snapshot().await;
    assert_eq!(lifetime(&snap), "refunded");
    let payment = snap
        .of_kind("PAYMENT")
        .into_iter()
        .find(|p| get_s(p, "reference") == Some(pi.as_str()))
        .unwrap();
    assert_eq!(get_s(payment, "status"), Some("refunded"));
    let emails = t.wait_emails(&email, 2).await;
    assert!(
        emails.iter().any(|m| m.subject.contains("refunded")),
        "refund notice sent"
    );

    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("unknown"),
            "charge.refunded",
            now(),
            json!({"id": "ch_2", "payment_intent": "pi_unknown", "refunded": true}),
        ))
        .await;
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("no payment record"),
        "{r}"
    );
}

#[tokio::test]
async fn payment_intents_are_kept_as_payment_records() {
    let t = TestStack::start().await;
    let ok = t.id("pi_ok");
    let bad = t.id("pi_bad");
    for (id, kind) in [
        (&ok, "payment_intent.succeeded"),
        (&bad, "payment_intent.payment_failed"),
    ] {
        let (_, r) = t
            .post_stripe(&stripe_event(
                &t.id(kind),
                kind,
                now(),
                json!({"id": id, "object": "payment_intent", "amount": 1500, "currency": "usd"}),
            ))
            .await;
        assert_eq!(r["status"], "processed", "{r}");
    }
    let snap = t.snapshot().await;
    let status = |reference: &str| {
        snap.of_kind("PAYMENT")
            .into_iter()
            .find(|p| get_s(p, "reference") == Some(reference))
            .and_then(|p| get_s(p, "status"))
            .map(str::to_string)
    };
    assert_eq!(status(&ok).as_deref(), Some("succeeded"));
    assert_eq!(status(&bad).as_deref(), Some("failed"));
}

#[tokio::test]
async fn a_known_customer_with_a_new_email_pays_for_its_member_and_another_members_email_fails() {
    let t = TestStack::start().await;
    let cus = t.id("cus");
    let first = t.email("first");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("co1"),
            "checkout.session.completed",
            now(),
            stripe_checkout(&t.id("cs1"), &cus, &first, "subscription", None),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    // The customer changed their email at Stripe: the same customer, a new address.
    let (status, r) = t
        .post_stripe(&stripe_event(
            &t.id("co2"),
            "checkout.session.completed",
            now(),
            stripe_checkout(&t.id("cs2"), &cus, &t.email("second"), "subscription", None),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let member = get_s(snap.user_by_email(&first).unwrap(), "user_id").unwrap();
    assert_eq!(
        get_s(
            snap.event("stripe", &format!("checkout.paid:{}", t.id("cs2")))
                .unwrap(),
            "user_id"
        ),
        Some(member),
        "the payment is the customer's member's"
    );
    assert!(
        snap.user_by_email(&t.email("second")).is_none(),
        "no second account"
    );
    // The customer's events still reach the member it belongs to.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("sub"),
            "customer.subscription.created",
            now(),
            stripe_subscription("sub_k", &cus, "active", false, now() + 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    assert_eq!(sub_of(&t, &first).await.unwrap().0, "active");

    // An email that belongs to another member, with this customer: a conflict
    // re-reading cannot fix, so it fails with the reason and is answered 200.
    let other = t.email("other");
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("co3"),
            "checkout.session.completed",
            now(),
            stripe_checkout(
                &t.id("cs3"),
                &t.id("cus_other"),
                &other,
                "subscription",
                None,
            ),
        ))
        .await;
    assert_eq!(r["status"], "processed");
    let (status, r) = t
        .post_stripe(&stripe_event(
            &t.id("co4"),
            "checkout.session.completed",
            now(),
            stripe_checkout(&t.id("cs4"), &cus, &other, "subscription", None),
        ))
        .await;
    assert_eq!(
        status, 200,
        "a condition re-reading cannot fix is not a 503"
    );
    assert_eq!(r["status"], "failed");
    assert!(
        r["reason"].as_str().unwrap().contains("belongs to member"),
        "{r}"
    );
}

/// The member's rows as (row key, plan, state), sorted, and their roles now.
async fn rows_and_roles(
    t: &TestStack,
    email: &str,
) -> (
    Vec<(String, String, String)>,
    std::collections::BTreeSet<String>,
) {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(email).expect("member");
    let user_id = gatehouse::domain::UserId::from_stored(get_s(user, "user_id").unwrap());
    let mut rows: Vec<(String, String, String)> = snap
        .subscriptions_of(user_id.as_str())
        .iter()
        .map(|s| {
            (
                get_s(s, "sk").unwrap().to_string(),
                get_s(s, "plan_id").unwrap().to_string(),
                get_s(s, "state").unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    let member = t
        .stack
        .services
        .store
        .load_member(&user_id)
        .await
        .unwrap()
        .unwrap();
    let roles = t.stack.services.entitlements_of(&member, Utc::now()).roles;
    (rows, roles)
}

async fn checkout(t: &TestStack, cus: &str, email: &str, at: i64) {
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("co"),
            "checkout.session.completed",
            at,
            stripe_checkout(&t.id("cs"), cus, email, "subscription", None),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
}

#[tokio::test]
async fn two_subscriptions_on_one_plan_are_independent() {
    let t = TestStack::start().await;
    let cus = t.id("cus");
    let email = t.email("twosubs");
    let t0 = now() - 600;
    checkout(&t, &cus, &email, t0).await;
    let (old, new) = (t.id("sub_old"), t.id("sub_new"));
    let steps = [
        (
            "e1",
            "customer.subscription.created",
            t0 + 1,
            stripe_subscription(&old, &cus, "active", false, t0 + 86_400),
        ),
        (
            "e2",
            "customer.subscription.updated",
            t0 + 2,
            stripe_subscription(&old, &cus, "past_due", false, t0 + 86_400),
        ),
        // The member pays again with a new subscription on the same plan...
        (
            "e3",
            "customer.subscription.created",
            t0 + 3,
            stripe_subscription(&new, &cus, "active", false, t0 + 30 * 86_400),
        ),
        // ...and dunning deletes the old one: it ends, and only it.
        (
            "e4",
            "customer.subscription.deleted",
            t0 + 4,
            stripe_subscription(&old, &cus, "canceled", false, t0 + 86_400),
        ),
    ];
    for (id, kind, created, object) in steps {
        let (_, r) = t
            .post_stripe(&stripe_event(&t.id(id), kind, created, object))
            .await;
        assert_eq!(r["status"], "processed", "{id} {kind}: {r}");
    }
    let (rows, roles) = rows_and_roles(&t, &email).await;
    let row = |sub: &str, state: &str| {
        (
            format!("SUB#stripe#{sub}"),
            "premium_monthly".to_string(),
            state.to_string(),
        )
    };
    let mut want = vec![row(&old, "expired"), row(&new, "active")];
    want.sort();
    assert_eq!(rows, want);
    assert!(
        roles.contains("premium-monthly"),
        "the new one's access stands: {roles:?}"
    );
    // The old one's dunning told the member, but its end does not: the plan
    // is still theirs through the new subscription.
    let templates = |snap: &gatehouse_local::inspect::Snapshot| {
        let mut names: Vec<String> = snap
            .jobs_to(&email)
            .iter()
            .filter_map(|j| get_s(j, "template").map(str::to_string))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        templates(&t.snapshot().await),
        ["payment_failed", "welcome"]
    );
    // The new subscription's own events still apply to it alone.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e5"),
            "customer.subscription.deleted",
            t0 + 5,
            stripe_subscription(&new, &cus, "canceled", false, t0 + 30 * 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (rows, roles) = rows_and_roles(&t, &email).await;
    assert!(
        rows.iter().all(|(_, _, state)| state == "expired"),
        "{rows:?}"
    );
    assert!(!roles.contains("premium-monthly"), "{roles:?}");
    assert_eq!(
        templates(&t.snapshot().await),
        ["expiry_notice", "payment_failed", "welcome"],
        "the last one's end is the member's"
    );
}

#[tokio::test]
async fn a_price_swap_moves_the_subscription_to_its_new_plan() {
    let t = TestStack::start().await;
    let cus = t.id("cus");
    let email = t.email("swap");
    let sub = t.id("sub_swap");
    let t0 = now() - 600;
    checkout(&t, &cus, &email, t0).await;
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e1"),
            "customer.subscription.created",
            t0 + 1,
            stripe_subscription(&sub, &cus, "active", false, t0 + 30 * 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    // The member upgrades: the same subscription, now on the yearly price.
    let mut yearly = stripe_subscription(&sub, &cus, "active", false, t0 + 366 * 86_400);
    yearly["items"]["data"][0]["price"] =
        json!({"id": "price_premium_yearly", "object": "price", "product": "prod_premium_yearly"});
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e2"),
            "customer.subscription.updated",
            t0 + 2,
            yearly,
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (rows, roles) = rows_and_roles(&t, &email).await;
    assert_eq!(
        rows,
        [(
            format!("SUB#stripe#{sub}"),
            "premium_yearly".to_string(),
            "active".to_string()
        )]
    );
    assert!(roles.contains("premium-yearly"), "{roles:?}");
    assert!(
        !roles.contains("premium-monthly"),
        "the old plan's role is gone: {roles:?}"
    );
}

#[tokio::test]
async fn a_row_keyed_by_its_plan_moves_under_its_subscription_id() {
    use gatehouse::domain::{EventKey, Provider, SubscriptionView, UserId};
    let t = TestStack::start().await;
    let cus = t.id("cus");
    let email = t.email("legacy");
    let sub = t.id("sub_legacy");
    let t0 = now() - 600;
    checkout(&t, &cus, &email, t0).await;
    // A row as Gatehouse wrote it before subscriptions were keyed by their id.
    let snap = t.snapshot().await;
    let user = UserId::from_stored(get_s(snap.user_by_email(&email).unwrap(), "user_id").unwrap());
    let store = &t.stack.services.store;
    let mut tx = store.tx();
    let until = chrono::DateTime::from_timestamp(t0 + 30 * 86_400, 0);
    tx.put_subscription(
        &user,
        Provider::Stripe,
        "premium_monthly",
        "premium_monthly",
        &SubscriptionView {
            state: SubscriptionState::Active,
            period_end: until,
            access_until: until,
        },
        None,
        &EventKey::new(Provider::Stripe, "before-the-upgrade"),
        (chrono::DateTime::from_timestamp(t0 + 1, 0).unwrap(), 20),
        Utc::now(),
        Some(&sub),
        false,
    )
    .unwrap();
    store.commit(tx).await.unwrap();

    // Its cancel at period end finds it, and moves it under the id.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("e1"),
            "customer.subscription.updated",
            t0 + 2,
            stripe_subscription(&sub, &cus, "active", true, t0 + 30 * 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (rows, _) = rows_and_roles(&t, &email).await;
    assert_eq!(
        rows,
        [(
            format!("SUB#stripe#{sub}"),
            "premium_monthly".to_string(),
            "canceled".to_string()
        )],
        "one row, under the subscription's id"
    );
}

#[tokio::test]
async fn concurrent_created_and_updated_for_a_new_subscription_end_as_in_order_twenty_runs() {
    let t = TestStack::start().await;
    let cus = t.id("cus");
    let email = t.email("race");
    let t0 = now() - 600;
    checkout(&t, &cus, &email, t0).await;
    for run in 0..20 {
        let sub = t.id(&format!("sub_race{run}"));
        let end = t0 + 30 * 86_400;
        // Stripe sends both in the same second: `created` (incomplete) and
        // `updated` (active) once the first payment succeeds.
        let created = stripe_event(
            &t.id(&format!("c{run}")),
            "customer.subscription.created",
            t0 + 10 + run,
            stripe_subscription(&sub, &cus, "incomplete", false, end),
        );
        let updated = stripe_event(
            &t.id(&format!("u{run}")),
            "customer.subscription.updated",
            t0 + 10 + run,
            stripe_subscription(&sub, &cus, "active", false, end),
        );
        let (a, b) = tokio::join!(t.post_stripe(&created), t.post_stripe(&updated));
        for (status, answer) in [a, b] {
            assert_eq!(status, 200, "run {run}: {answer}");
            assert!(
                ["processed", "superseded"].contains(&answer["status"].as_str().unwrap()),
                "run {run}: {answer}"
            );
        }
        let snap = t.snapshot().await;
        let user = snap.user_by_email(&email).unwrap();
        let rows: Vec<_> = snap
            .subscriptions_of(get_s(user, "user_id").unwrap())
            .into_iter()
            .filter(|s| get_s(s, "sk") == Some(format!("SUB#stripe#{sub}").as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "run {run}");
        assert_eq!(get_s(rows[0], "state"), Some("active"), "run {run}");
    }
}
