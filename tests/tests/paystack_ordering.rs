//! Property: any permutation of a Paystack subscription's life as Paystack
//! documents it (three charges, the create, `not_renew`, `disable`), with
//! duplicates and with any charge introducing the member, ends like the
//! in-order sequence: expired, with the subscription code kept. Some
//! neighbouring deliveries arrive concurrently. Seeded, so failures reproduce.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use gatehouse::store::attr::get_s;
use gatehouse_e2e::{deliver_some_concurrently, TestStack};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The deliveries of one subscription's life, in the order Paystack sends them.
/// `base` keeps this run's data ids (and so its event keys) apart.
fn lifecycle(t: &TestStack, tag: &str, base: u64, t0: DateTime<Utc>) -> Vec<String> {
    let email = t.email(tag);
    let customer =
        json!({"id": base, "email": email, "customer_code": format!("CUS_{tag}{}", t.run)});
    let plan = json!({"id": 28, "name": "Premium Monthly", "plan_code": "PLN_premium_monthly", "interval": "monthly"});
    let charge = |n: u64, paid: DateTime<Utc>| {
        json!({"event": "charge.success", "data": {"id": base + n, "domain": "test", "status": "success",
            "reference": format!("ref_{tag}_{n}_{}", t.run), "amount": 500000, "currency": "NGN",
            "paid_at": iso(paid), "channel": "card", "customer": customer, "plan": plan}})
        .to_string()
    };
    let created = iso(t0 + Duration::seconds(2));
    let subscription = |event: &str, status: &str, next: Option<DateTime<Utc>>| {
        let mut data = json!({"id": base + 50, "domain": "test", "status": status,
            "subscription_code": format!("SUB_{tag}{}", t.run), "amount": 500000,
            "next_payment_date": next.map(iso), "created_at": created,
            "customer": customer, "plan": plan});
        if event == "subscription.create" {
            data["createdAt"] = json!(created);
        }
        json!({"event": event, "data": data}).to_string()
    };
    vec![
        charge(1, t0),
        subscription(
            "subscription.create",
            "active",
            Some(t0 + Duration::days(30)),
        ),
        charge(2, t0 + Duration::days(30)),
        charge(3, t0 + Duration::days(60)),
        subscription("subscription.not_renew", "non-renewing", None),
        subscription(
            "subscription.disable",
            "complete",
            Some(t0 + Duration::days(90)),
        ),
    ]
}

async fn final_state(t: &TestStack, tag: &str) -> (String, Option<String>) {
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&t.email(tag)).expect("user");
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(subs.len(), 1);
    (
        get_s(subs[0], "state").unwrap().to_string(),
        get_s(subs[0], "provider_ref").map(|code| code.replace(tag, "TAG")),
    )
}

async fn play(
    t: &TestStack,
    tag: &str,
    base: u64,
    deliveries: Vec<String>,
    concurrent: u64,
) -> (String, Option<String>) {
    for (status, answer) in deliver_some_concurrently(&deliveries, concurrent, |body| async move {
        t.post_paystack(&body).await
    })
    .await
    {
        assert_eq!(status, 200, "{answer}");
        assert_ne!(answer["status"], "failed", "{tag} ({base}): {answer}");
    }
    final_state(t, tag).await
}

#[tokio::test]
async fn any_order_with_duplicates_ends_expired_with_the_code_kept() {
    let t = TestStack::start().await;
    let t0 = Utc::now() - Duration::days(91);
    let expected = play(&t, "ref", 1_000, lifecycle(&t, "ref", 1_000, t0), 0).await;
    assert_eq!(expected.0, "expired", "the reference ends disabled");
    assert!(expected.1.is_some(), "the subscription code is kept");

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9a75_7ac4);
    for run in 0..gatehouse_e2e::ordering_runs() {
        let seed: u64 = rng.gen();
        let tag = format!("p{run}x");
        let base = 10_000 + run * 100;
        let mut deliveries = lifecycle(&t, &tag, base, t0);
        let mut local = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..2 {
            let copy = deliveries[local.gen_range(0..deliveries.len())].clone();
            deliveries.push(copy);
        }
        deliveries.shuffle(&mut local);
        let got = play(&t, &tag, base, deliveries, seed.rotate_left(17)).await;
        assert_eq!(got, expected, "permutation seed {seed:#x}");
    }
}
