//! Property: any permutation of a subscription's events, with duplicates and
//! with the checkout that introduces the member anywhere (Stripe often sends
//! it last), ends in the same state as the in-order sequence (seeded, so
//! failures reproduce). Some neighbouring deliveries arrive concurrently.

use chrono::Utc;
use gatehouse::store::attr::get_s;
use gatehouse_e2e::{
    deliver_some_concurrently, stripe_checkout, stripe_event, stripe_subscription, TestStack,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The events of one subscription's life, oldest first.
fn lifecycle(t: &TestStack, tag: &str, cus: &str, t0: i64) -> Vec<String> {
    let end1 = t0 + 30 * 86_400;
    let end2 = t0 + 60 * 86_400;
    let sub = |status: &str, cancel: bool, end: i64| {
        stripe_subscription(&format!("sub_{tag}"), cus, status, cancel, end)
    };
    let invoice = |end: i64| {
        json!({"id": format!("in_{tag}_{end}"), "customer": cus,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": format!("sub_{tag}")}}, "lines": {"data": [{"period": {"end": end},
            "price": {"id": "price_premium_monthly", "product": "prod_premium_monthly"}}]}})
    };
    vec![
        stripe_event(
            &t.id(&format!("{tag}1")),
            "customer.subscription.created",
            t0,
            sub("incomplete", false, end1),
        ),
        stripe_event(
            &t.id(&format!("{tag}2")),
            "customer.subscription.updated",
            t0,
            sub("active", false, end1),
        ),
        stripe_event(
            &t.id(&format!("{tag}3")),
            "invoice.paid",
            t0 + 1,
            invoice(end1),
        ),
        stripe_event(
            &t.id(&format!("{tag}4")),
            "customer.subscription.updated",
            t0 + 2,
            sub("active", true, end1),
        ),
        stripe_event(
            &t.id(&format!("{tag}5")),
            "customer.subscription.updated",
            t0 + 3,
            sub("active", false, end1),
        ),
        stripe_event(
            &t.id(&format!("{tag}6")),
            "invoice.payment_failed",
            t0 + 4,
            invoice(end2),
        ),
        stripe_event(
            &t.id(&format!("{tag}7")),
            "invoice.paid",
            t0 + 5,
            invoice(end2),
        ),
        stripe_event(
            &t.id(&format!("{tag}8")),
            "customer.subscription.updated",
            t0 + 6,
            sub("active", true, end2),
        ),
    ]
}

async fn final_state(t: &TestStack, email: &str) -> (String, Option<String>) {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(email).expect("user");
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(subs.len(), 1);
    (
        get_s(subs[0], "state").unwrap().to_string(),
        get_s(subs[0], "period_end").map(str::to_string),
    )
}

async fn play(
    t: &TestStack,
    tag: &str,
    t0: i64,
    order: impl Fn(Vec<String>) -> Vec<String>,
    concurrent: u64,
) -> (String, Option<String>) {
    let email = t.email(tag);
    let cus = t.id(&format!("cus_{tag}"));
    let checkout = stripe_event(
        &t.id(&format!("{tag}co")),
        "checkout.session.completed",
        t0 - 1,
        stripe_checkout(
            &t.id(&format!("cs_{tag}")),
            &cus,
            &email,
            "subscription",
            None,
        ),
    );
    let mut events = vec![checkout];
    events.extend(lifecycle(t, tag, &cus, t0));
    let bodies = order(events);
    for (status, answer) in deliver_some_concurrently(&bodies, concurrent, |body| async move {
        t.post_stripe(&body).await
    })
    .await
    {
        assert_eq!(status, 200, "{answer}");
        assert_ne!(answer["status"], "failed", "{answer}");
    }
    final_state(t, &email).await
}

#[tokio::test]
async fn any_order_with_duplicates_ends_like_the_in_order_sequence() {
    let t = TestStack::start().await;
    // One timeline for every run, so periods compare exactly.
    let t0 = Utc::now().timestamp() - 3600;
    let expected = play(&t, "ref", t0, |events| events, 0).await;
    assert_eq!(
        expected.0, "canceled",
        "the reference ends canceled at period end"
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6a7e_4005);
    for run in 0..gatehouse_e2e::ordering_runs() {
        let seed: u64 = rng.gen();
        let got = play(
            &t,
            &format!("p{run}"),
            t0,
            |mut events| {
                let mut local = rand::rngs::StdRng::seed_from_u64(seed);
                for _ in 0..2 {
                    let copy = events[local.gen_range(0..events.len())].clone();
                    events.push(copy);
                }
                events.shuffle(&mut local);
                events
            },
            seed.rotate_left(17),
        )
        .await;
        assert_eq!(got, expected, "permutation seed {seed:#x}");
    }
}
