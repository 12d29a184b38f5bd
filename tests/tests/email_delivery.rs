//! The outbox, the sender, the DLQ and the sweeper.

use std::time::Duration;

use email_sender::{SqsEvent, SqsRecord};
use gatehouse::http::ApiRequest;
use gatehouse::outbox::Outbox;
use gatehouse::signature::hmac_sha256_hex;
use gatehouse::store::attr::get_s;
use gatehouse::store::Store;
use gatehouse_e2e::{eventually, purchase, Auth, Options, TestClock, TestStack, KAJABI_SECRET};

fn no_pump() -> Options {
    Options {
        email_pump: false,
        ..Options::default()
    }
}

/// Drops every message on the queue unprocessed: a lost enqueue.
async fn lose_queue_messages(t: &TestStack) {
    t.stack
        .clients
        .sqs
        .purge_queue()
        .queue_url(&t.stack.queue_url)
        .send()
        .await
        .unwrap();
    assert_eq!(t.queue_depth(&t.stack.queue_url).await, 0);
}

fn signed_request(body: &str) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: "/webhooks/kajabi".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "x-kajabi-signature".into(),
                hmac_sha256_hex(KAJABI_SECRET.as_bytes(), body.as_bytes()),
            ),
        ],
        body: body.as_bytes().to_vec(),
        request_id: "test".into(),
        ..ApiRequest::default()
    }
}

#[tokio::test]
async fn a_job_is_sent_once_even_when_its_message_repeats() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("once");
    t.post_kajabi(&purchase(&t.id("e"), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(t.drain_queue().await, 2);
    assert_eq!(t.emails_to(&email).await.len(), 1);

    let snap = t.snapshot().await;
    let job_id = get_s(snap.jobs_to(&email)[0], "job_id")
        .unwrap()
        .to_string();
    assert_eq!(get_s(snap.jobs_to(&email)[0], "status"), Some("sent"));
    // Redelivered and concurrent copies of the message.
    let body = format!("{{\"job_id\":\"{job_id}\"}}");
    let records = (0..3)
        .map(|i| SqsRecord {
            message_id: format!("m{i}"),
            body: body.clone(),
        })
        .collect();
    let response = t.stack.sender.handle(SqsEvent { records }).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(t.emails_to(&email).await.len(), 1, "no second SES message");
}

#[tokio::test]
async fn concurrent_copies_of_a_pending_job_send_one_email() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("race");
    t.post_kajabi(&purchase(&t.id("e"), &email, "off_456"), Auth::Signature)
        .await;
    lose_queue_messages(&t).await;
    let snap = t.snapshot().await;
    let job_id = get_s(snap.jobs_to(&email)[0], "job_id")
        .unwrap()
        .to_string();
    let body = format!("{{\"job_id\":\"{job_id}\"}}");
    let records = (0..5)
        .map(|i| SqsRecord {
            message_id: format!("m{i}"),
            body: body.clone(),
        })
        .collect();
    let response = t.stack.sender.handle(SqsEvent { records }).await;
    // Copies that lost the claim are dropped: the winner sends, the sweeper covers its crash.
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(t.emails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn partial_batch_failures_name_only_the_bad_messages() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("partial");
    t.post_kajabi(&purchase(&t.id("e"), &email, "off_456"), Auth::Signature)
        .await;
    lose_queue_messages(&t).await;
    let snap = t.snapshot().await;
    let job_id = get_s(snap.jobs_to(&email)[0], "job_id")
        .unwrap()
        .to_string();
    let event = SqsEvent {
        records: vec![
            SqsRecord {
                message_id: "good".into(),
                body: format!("{{\"job_id\":\"{job_id}\"}}"),
            },
            SqsRecord {
                message_id: "malformed".into(),
                body: "not json".into(),
            },
            SqsRecord {
                message_id: "unknown".into(),
                body: "{\"job_id\":\"job_missing\"}".into(),
            },
        ],
    };
    let response = t.stack.sender.handle(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["malformed", "unknown"]);
    assert_eq!(t.emails_to(&email).await.len(), 1);
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "malformed");
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dlq() {
    let t = TestStack::start_with(Options {
        email_pump: false,
        visibility_timeout: Some(1),
        ..Options::default()
    })
    .await;
    t.stack
        .clients
        .sqs
        .send_message()
        .queue_url(&t.stack.queue_url)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    eventually(
        "poison message in the DLQ",
        Duration::from_secs(60),
        || async {
            gatehouse_local::glue::pump_once(
                &t.stack.clients.sqs,
                &t.stack.queue_url,
                &t.stack.sender,
                1,
            )
            .await
            .unwrap();
            (t.queue_depth(&t.stack.dlq_url).await == 1).then_some(())
        },
    )
    .await;
    assert_eq!(t.queue_depth(&t.stack.queue_url).await, 0);
}

#[tokio::test]
async fn the_sweeper_reenqueues_jobs_pending_for_15_minutes() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        email_pump: false,
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
    let email = t.email("sweep");
    t.post_kajabi(&purchase(&t.id("e"), &email, "off_456"), Auth::Signature)
        .await;
    lose_queue_messages(&t).await;

    assert_eq!(
        t.stack.sweeper.handle().await.unwrap()["requeued"],
        0,
        "young jobs are left alone"
    );
    clock.advance(chrono::Duration::minutes(16));
    assert_eq!(t.stack.sweeper.handle().await.unwrap()["requeued"], 2);
    t.drain_queue().await;
    assert_eq!(t.emails_to(&email).await.len(), 1);
    assert_eq!(
        t.stack.sweeper.handle().await.unwrap()["requeued"],
        0,
        "sent jobs leave the pending index"
    );
}

#[tokio::test]
async fn a_duplicate_delivery_reenqueues_pending_jobs() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("redo");
    let body = purchase(&t.id("e"), &email, "off_456");
    t.post_kajabi(&body, Auth::Signature).await;
    lose_queue_messages(&t).await;
    let (_, again) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(t.drain_queue().await, 2);
    assert_eq!(t.emails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn an_sqs_error_answers_503_and_the_retry_delivers() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("sqsdown");
    let body = purchase(&t.id("e"), &email, "off_456");
    // Unchecked clients on purpose: the queue does not exist, so no policy could name it.
    let mut broken = t.stack.services.clone();
    broken.outbox = Outbox::new(
        t.stack.clients.sqs.clone(),
        format!("{}/123456789012/no-such-queue", t.stack.endpoint),
    );
    let response = kajabi_webhook::KajabiWebhook::new(broken)
        .handle(signed_request(&body))
        .await;
    assert_eq!(response.status, 503);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );

    // The provider retries: a duplicate of the committed event, whose jobs are enqueued now.
    let (_, retry) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(retry["status"], "duplicate");
    t.drain_queue().await;
    assert_eq!(t.emails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn a_dynamodb_error_answers_503_and_the_event_stays_reprocessable() {
    let t = TestStack::start().await;
    let email = t.email("ddbdown");
    let body = purchase(&t.id("e"), &email, "off_456");
    // Unchecked clients on purpose: the table does not exist, so no policy could name it.
    let mut broken = t.stack.services.clone();
    broken.store = Store::new(t.stack.clients.dynamodb.clone(), "no-such-table");
    let response = kajabi_webhook::KajabiWebhook::new(broken)
        .handle(signed_request(&body))
        .await;
    assert_eq!(response.status, 503);
    assert!(t.snapshot().await.events().is_empty());

    let (_, retry) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(retry["status"], "processed");
    t.wait_emails(&email, 1).await;
}

/// SES names the address it refused; the reason kept on the job and returned
/// to the log says `<email>` instead.
#[tokio::test]
async fn an_ses_rejection_is_kept_without_the_address() {
    let t = TestStack::start_with(no_pump()).await;
    let email = t.email("refused");
    t.post_kajabi(&purchase(&t.id("e"), &email, "off_456"), Auth::Signature)
        .await;
    let snap = t.snapshot().await;
    let job = snap.jobs_to(&email)[0];
    let job_id = gatehouse::domain::JobId::from_stored(
        gatehouse::store::attr::get_s(job, "job_id").unwrap(),
    );
    // Unchecked clients on purpose: no policy grants an unverified sender, and
    // SES (moto) refuses it, naming the address.
    let mut services = t.stack.services.clone();
    let mut settings = (*services.settings).clone();
    settings.from_email =
        gatehouse::domain::Email::parse("unverified.sender@nowhere.example").unwrap();
    services.settings = std::sync::Arc::new(settings);
    let error = services.send_job(&job_id).await.unwrap_err().to_string();
    assert!(error.contains("<email>"), "{error}");
    assert!(!error.contains('@'), "{error}");
    let snap = t.snapshot().await;
    let stored = gatehouse::store::attr::get_s(snap.jobs_to(&email)[0], "last_error")
        .unwrap()
        .to_string();
    assert!(
        stored.contains("<email>") && !stored.contains('@'),
        "{stored}"
    );
}
