//! Purchases from Kajabi, Stripe and Paystack while a proxy fails a share of
//! every DynamoDB, SQS and SES call the functions make: throttled, a 500
//! before the call, a 500 after it was applied, or late. Each delivery also
//! arrives twice at once, and anything answered non-2xx is redelivered, as the
//! providers do. Afterwards the sender drains the queue and the sweepers run
//! until no email job is pending. Nothing may be lost or doubled.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use gatehouse::store::attr::{get_map_s, get_s};
use gatehouse_e2e::fault_proxy::{FaultProxy, Service};
use gatehouse_e2e::{
    endpoint, purchase, stripe_checkout, stripe_event, stripe_subscription, Auth, Options,
    TestClock, TestStack,
};
use serde_json::{json, Value};

/// Members per provider.
const MEMBERS: usize = 4;
/// Deliveries of one event before the test gives up (providers retry for days).
const MAX_DELIVERIES: usize = 12;

/// Delivers `body` as a provider does: two copies at once, then each copy
/// again until it is answered 2xx. Returns the final statuses.
async fn deliver<F, Fut>(post: F) -> Vec<String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (u16, Value)>,
{
    let copy = || async {
        for _ in 0..MAX_DELIVERIES {
            let (code, answer) = post().await;
            if (200..300).contains(&code) {
                return answer["status"].as_str().unwrap_or_default().to_string();
            }
            assert_eq!(
                code, 503,
                "only transient errors may turn a delivery away: {answer}"
            );
        }
        panic!("still turned away after {MAX_DELIVERIES} deliveries");
    };
    let (a, b) = futures::join!(copy(), copy());
    vec![a, b]
}

fn paystack_charge(id: u64, email: &str) -> String {
    json!({"event": "charge.success", "data": {"id": id, "domain": "test", "status": "success",
        "reference": format!("ref_fault_{id}"), "amount": 500000, "currency": "NGN",
        "paid_at": "2026-11-25T10:00:00.000Z", "channel": "card",
        "customer": {"id": id, "first_name": "Kola", "email": email, "customer_code": format!("CUS_fault{id}")},
        "plan": {"id": 1, "name": "Premium Monthly", "plan_code": "PLN_premium_monthly", "interval": "monthly"}}})
    .to_string()
}

/// The emails `address` got beyond one per job, each checked against the two
/// windows the sender documents: SES accepted and answered 500 (the sender
/// never saw the message id), or SES answered 200 and neither the mark of the
/// job nor its confirmation ever reached DynamoDB or SQS. Any other resend
/// (a send the sender had recorded, then sent again) fails the test.
async fn resends(
    t: &TestStack,
    proxy: &FaultProxy,
    address: &str,
    jobs: &[&gatehouse::store::attr::Item],
) -> usize {
    let sends = proxy.accepted_sends_to(address);
    assert_eq!(t.emails_to(address).await.len(), sends.len(), "{address}");
    let recorded: Vec<&str> = jobs
        .iter()
        .filter_map(|j| get_s(j, "ses_message_id"))
        .collect();
    assert_eq!(recorded.len(), jobs.len(), "every job records its send");
    let mut resent = 0;
    for send in &sends {
        if recorded.contains(&send.message_id.as_str()) {
            continue;
        }
        assert!(
            send.hidden || !proxy.recording_reached(&send.message_id),
            "{address}: message {} was recorded by its sender, yet the job was sent again",
            send.message_id
        );
        resent += 1;
    }
    assert_eq!(sends.len(), jobs.len() + resent, "{address}");
    resent
}

/// The whole run's bound: a stall in moto or the proxy fails the test
/// instead of hanging `make test` (a run takes about 25 s).
const RUN_BOUND: Duration = Duration::from_secs(240);

#[tokio::test]
async fn purchases_through_injected_aws_faults_lose_nothing_and_double_nothing() {
    tokio::time::timeout(RUN_BOUND, fault_run())
        .await
        .expect("the fault run finishes within its bound");
}

async fn fault_run() {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    let proxy = FaultProxy::start(&endpoint(), seed).await;
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        email_pump: false,
        clock: Some(clock.clock()),
        visibility_timeout: Some(1),
        function_endpoint: Some(proxy.url.clone()),
        ..Options::default()
    })
    .await;
    proxy.enable(true);

    let now = chrono::Utc::now().timestamp();
    let mut members = Vec::new();
    let mut kajabi = Vec::new();
    for i in 0..MEMBERS {
        let email = t.email(&format!("kajabi{i}"));
        kajabi.push(
            purchase(&t.id(&format!("kj{i}")), &email, "off_456")
                .replace("mem_1", &t.id(&format!("mem{i}"))),
        );
        members.push(email);
    }
    let mut stripe = Vec::new();
    for i in 0..MEMBERS {
        let email = t.email(&format!("stripe{i}"));
        let cus = t.id(&format!("cus{i}"));
        let checkout = stripe_event(
            &t.id(&format!("evco{i}")),
            "checkout.session.completed",
            now,
            stripe_checkout(&t.id(&format!("cs{i}")), &cus, &email, "subscription", None),
        );
        let created = stripe_event(
            &t.id(&format!("evsc{i}")),
            "customer.subscription.created",
            now,
            stripe_subscription(
                &t.id(&format!("sub{i}")),
                &cus,
                "active",
                false,
                now + 30 * 86_400,
            ),
        );
        // Stripe does not order them: half the members' checkouts come last.
        if i % 2 == 0 {
            stripe.push((checkout, created));
        } else {
            stripe.push((created, checkout));
        }
        members.push(email);
    }
    let paystack: Vec<String> = (0..MEMBERS)
        .map(|i| {
            let email = t.email(&format!("paystack{i}"));
            let body = paystack_charge(
                7_000_000 + u64::from(rand::random::<u16>()) * 10 + i as u64,
                &email,
            );
            members.push(email);
            body
        })
        .collect();

    let started = Instant::now();
    let (kajabi_statuses, stripe_statuses, paystack_statuses) = futures::join!(
        futures::future::join_all(
            kajabi
                .iter()
                .map(|body| deliver(|| t.post_kajabi(body, Auth::Signature)))
        ),
        futures::future::join_all(stripe.iter().map(|(a, b)| async {
            let (x, y) = futures::join!(deliver(|| t.post_stripe(a)), deliver(|| t.post_stripe(b)));
            [x, y].concat()
        })),
        futures::future::join_all(
            paystack
                .iter()
                .map(|body| deliver(|| t.post_paystack(body)))
        ),
    );
    let statuses: Vec<String> = [kajabi_statuses, stripe_statuses, paystack_statuses]
        .concat()
        .concat();
    // A subscription that comes before its checkout waits for it (`pending`).
    assert!(
        statuses
            .iter()
            .all(|s| ["processed", "duplicate", "pending"].contains(&s.as_str())),
        "{statuses:?}"
    );
    let deliveries_took = started.elapsed();

    // The sender drains the queue; jobs that a fault kept pending are swept
    // back once their delay (and any lease) has passed.
    let mut rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        t.drain_queue().await;
        let snap = t.snapshot().await;
        let pending = snap
            .of_kind("OUTBOX")
            .into_iter()
            .filter(|j| get_s(j, "status") != Some("sent"))
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} email jobs still unsent after {rounds} sweeps"
        );
        rounds += 1;
        clock.advance(chrono::Duration::minutes(16));
        // A sweep that a fault interrupts is simply run again next round.
        let _ = t.stack.sweeper.handle().await;
    }
    // The expiry sweep through the same faults ends nobody's access.
    let mut expired = None;
    for _ in 0..MAX_DELIVERIES {
        if let Ok(out) = t.stack.expiry.handle().await {
            expired = Some(out["expired"].clone());
            break;
        }
    }
    assert_eq!(expired, Some(json!(0)));
    proxy.enable(false);

    let snap = t.snapshot().await;
    let calls = proxy.calls();
    let faults = proxy.faults();
    let mut injected: BTreeMap<Service, u64> = BTreeMap::new();
    for ((service, _), n) in &faults {
        *injected.entry(*service).or_default() += n;
    }
    eprintln!(
        "FAULT_SEED={seed}: deliveries in {deliveries_took:?}, {rounds} sweep rounds; calls {calls:?}; faults {faults:?}"
    );
    for service in [Service::DynamoDb, Service::Sqs, Service::Ses] {
        let (n, hit) = (calls[&service], injected[&service]);
        assert!(
            n >= 10 && hit * 5 >= n,
            "{service:?}: {hit} of {n} calls faulted"
        );
    }

    assert_eq!(
        proxy.max_send_attempt(),
        1,
        "the SDK never resent SendEmail by itself"
    );
    // Nothing beyond one account, one subscription and two jobs per member.
    assert_eq!(snap.users().len(), members.len());
    assert_eq!(snap.of_kind("SUBSCRIPTION").len(), members.len());
    assert_eq!(snap.of_kind("OUTBOX").len(), members.len() * 2);
    let notices = snap.jobs_to(&t.admin);
    let mut resent = 0;
    for email in &members {
        let users: Vec<_> = snap
            .users()
            .into_iter()
            .filter(|u| get_s(u, "email") == Some(email.as_str()))
            .collect();
        assert_eq!(users.len(), 1, "one account for {email}");
        let subs = snap.subscriptions_of(get_s(users[0], "user_id").unwrap());
        assert_eq!(subs.len(), 1, "one subscription for {email}");
        assert_eq!(get_s(subs[0], "state"), Some("active"), "{email}");
        let jobs = snap.jobs_to(email);
        assert_eq!(jobs.len(), 1, "one job for {email}");
        assert_eq!(get_s(jobs[0], "template"), Some("welcome"));
        assert_eq!(get_s(jobs[0], "status"), Some("sent"));
        let about: Vec<_> = notices
            .iter()
            .filter(|j| get_map_s(j, "data").get("email") == Some(email))
            .collect();
        assert_eq!(about.len(), 1, "one admin notice about {email}");
        resent += resends(&t, &proxy, email, &jobs).await;
    }
    assert!(notices.iter().all(|j| get_s(j, "status") == Some("sent")));
    resent += resends(&t, &proxy, &t.admin, &notices).await;

    // Every event is recorded once and processed.
    let events = snap.events();
    assert_eq!(events.len(), MEMBERS * 4, "{events:?}");
    assert!(events
        .iter()
        .all(|e| get_s(e, "status") == Some("processed")));
    eprintln!(
        "{} members, {} events, {} emails; resent in a documented window: {resent}",
        members.len(),
        events.len(),
        members.len() * 2 + resent
    );
}
