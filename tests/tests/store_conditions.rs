//! Conditions the store puts on writes, against moto's DynamoDB.

use chrono::Utc;
use gatehouse::domain::{EventKey, Provider, SubscriptionState, SubscriptionView, UserId};
use gatehouse::store::CommitError;
use gatehouse_e2e::TestStack;

#[tokio::test]
async fn a_first_subscription_write_fails_when_one_appeared_since_it_read() {
    let t = TestStack::start().await;
    let store = &t.stack.services.store;
    let user = UserId::generate(Utc::now().timestamp_millis());
    let view = SubscriptionView {
        state: SubscriptionState::Active,
        period_end: None,
        access_until: None,
    };
    let write = |expected: Option<i64>, event: &str| {
        let mut tx = store.tx();
        tx.put_subscription(
            &user,
            Provider::Paystack,
            "premium-monthly",
            "premium-monthly",
            &view,
            expected,
            &EventKey::new(Provider::Paystack, event),
            (Utc::now(), 20),
            Utc::now(),
            None,
            false,
        )
        .expect("valid write");
        tx
    };
    store
        .commit(write(None, "first"))
        .await
        .expect("nothing was there");
    // A second writer that also saw nothing must not overwrite the first.
    match store.commit(write(None, "racer")).await {
        Err(CommitError::ConditionFailed { index: 0, .. }) => {}
        other => panic!("expected the condition to fail, got {other:?}"),
    }
    let current = store
        .get_subscription(&user, Provider::Paystack, "premium-monthly")
        .await
        .unwrap()
        .expect("written");
    assert_eq!(current.last_event.as_deref(), Some("paystack:first"));
    // With the version it read, the next write applies.
    store
        .commit(write(Some(current.version), "next"))
        .await
        .expect("the version matches");
}

/// A new account's transaction checks its email's completion key: a
/// completion that began waiting after the purchase read it fails the
/// commit, so the purchase reads again and applies it instead of missing it.
#[tokio::test]
async fn a_new_account_fails_when_a_completion_began_waiting_since_its_read() {
    use gatehouse::domain::Email;
    use gatehouse::store::{completion_customer, Waiting, WaitingEvent};
    let t = TestStack::start().await;
    let store = &t.stack.services.store;
    let email = Email::parse(&t.email("race")).unwrap();
    let key = completion_customer(&email);
    let read = store.get_customer(Provider::Kajabi, &key).await.unwrap();
    assert_eq!(read.waiting, Waiting::default());
    // A completion starts waiting after that read.
    let mut wait = store.tx();
    wait.wait_on_customer(
        Provider::Kajabi,
        &key,
        &WaitingEvent::new(&EventKey::new(Provider::Kajabi, "late"), Utc::now(), 0),
    )
    .unwrap();
    store.commit(wait).await.unwrap();
    let check = |waiting: &Waiting| {
        let mut tx = store.tx();
        tx.check_waiting_unchanged(Provider::Kajabi, &key, waiting)
            .unwrap();
        tx
    };
    assert!(matches!(
        store.commit(check(&read.waiting)).await,
        Err(CommitError::ConditionFailed { index: 0, .. })
    ));
    // Read again, it holds.
    let again = store.get_customer(Provider::Kajabi, &key).await.unwrap();
    assert_eq!(again.waiting.events.len(), 1);
    store.commit(check(&again.waiting)).await.unwrap();
}
