//! The subscription sweeper expires canceled subscriptions once access ends.

use gatehouse::store::attr::get_s;
use gatehouse_e2e::{lifecycle, purchase, Auth, Options, TestClock, TestStack};
use serde_json::json;

async fn state(t: &TestStack, email: &str) -> String {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(email).unwrap();
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    get_s(subs[0], "state").unwrap().to_string()
}

#[tokio::test]
async fn canceled_subscriptions_expire_when_access_ends_once() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
    let email = t.email("ending");
    let keeps = t.email("keeps");
    let ends = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    for (who, id) in [(&email, "a"), (&keeps, "b")] {
        t.post_kajabi(
            &purchase(&t.id(&format!("buy{id}")), who, "off_456"),
            Auth::Signature,
        )
        .await;
    }
    let (_, r) = t
        .post_kajabi(
            &lifecycle(
                "canceled",
                &t.id("cancel"),
                &email,
                json!({"ends_at": ends}),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");

    assert_eq!(
        t.stack.expiry.handle().await.unwrap()["expired"],
        0,
        "access has not ended yet"
    );
    assert_eq!(state(&t, &email).await, "canceled");

    clock.advance(chrono::Duration::days(3));
    // Two concurrent runs: one expires it, the other finds nothing to do.
    let (a, b) = tokio::join!(t.stack.expiry.handle(), t.stack.expiry.handle());
    let total = a.unwrap()["expired"].as_u64().unwrap() + b.unwrap()["expired"].as_u64().unwrap();
    assert_eq!(total, 1);
    assert_eq!(state(&t, &email).await, "expired");
    assert_eq!(
        state(&t, &keeps).await,
        "active",
        "active subscriptions are not touched"
    );
    assert_eq!(
        t.stack.expiry.handle().await.unwrap()["expired"],
        0,
        "idempotent"
    );
    // The expiry is in the event log, as one processed event of its own.
    let snap = t.snapshot().await;
    let swept: Vec<_> = snap
        .events()
        .into_iter()
        .filter(|e| get_s(e, "event_type") == Some("gatehouse.subscription.access_ended"))
        .collect();
    assert_eq!(swept.len(), 1, "one expiry event for two concurrent sweeps");
    assert_eq!(get_s(swept[0], "status"), Some("processed"));
    let user_id = get_s(snap.user_by_email(&email).unwrap(), "user_id").unwrap();
    assert_eq!(get_s(swept[0], "user_id"), Some(user_id));

    let emails = t.wait_emails(&email, 3).await;
    let expiry: Vec<_> = emails
        .iter()
        .filter(|m| m.subject.contains("expired"))
        .collect();
    assert_eq!(expiry.len(), 1, "one expiry email");
    t.drain_queue().await;
    assert_eq!(
        t.emails_to(&email)
            .await
            .iter()
            .filter(|m| m.subject.contains("expired"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_renewal_takes_the_subscription_off_the_expiry_index() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
    let email = t.email("renews");
    t.post_kajabi(&purchase(&t.id("buy"), &email, "off_456"), Auth::Signature)
        .await;
    let ends = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    t.post_kajabi(
        &lifecycle("canceled", &t.id("c"), &email, json!({"ends_at": ends})),
        Auth::Signature,
    )
    .await;
    t.post_kajabi(
        &lifecycle("renewed", &t.id("r"), &email, json!({})),
        Auth::Signature,
    )
    .await;
    clock.advance(chrono::Duration::days(2));
    assert_eq!(t.stack.expiry.handle().await.unwrap()["expired"], 0);
    assert_eq!(state(&t, &email).await, "active");
}
