//! The outbox, the sender, the DLQ and the sweeper.

use std::time::Duration;

use email_sender::{SqsEvent, SqsRecord};
use gatehouse::http::ApiRequest;
use gatehouse::outbox::Outbox;
use gatehouse::signature::hmac_sha256_hex;
use gatehouse::store::attr::get_s;
use gatehouse::store::Store;
use gatehouse_e2e::{eventually, purchase, Auth, Options, TestClock, TestStack, KAJABI_SECRET};

/// A stack on a test clock, with the queue drained by hand.
async fn clocked_without_pump() -> (TestClock, TestStack) {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        email_pump: false,
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
    (clock, t)
}

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
    // A job id no job has is dropped: no retry could send it.
    assert_eq!(failed, vec!["malformed"]);
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
    let (clock, t) = clocked_without_pump().await;
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

/// The job of a fresh purchase by `name`, with no pump running.
async fn pending_job(t: &TestStack, name: &str) -> (String, gatehouse::domain::JobId) {
    let email = t.email(name);
    t.post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    let snap = t.snapshot().await;
    let job = snap.jobs_to(&email)[0];
    let id = gatehouse::domain::JobId::from_stored(get_s(job, "job_id").unwrap());
    (email, id)
}

/// SES (moto) refuses an unverified sender with `MessageRejected`, a
/// permanent error. Unchecked clients on purpose: no policy grants that sender.
fn refused_sender(t: &TestStack) -> gatehouse::service::Services {
    let mut services = t.stack.services.clone();
    let mut settings = (*services.settings).clone();
    settings.from_email =
        gatehouse::domain::Email::parse("unverified.sender@nowhere.example").unwrap();
    services.settings = std::sync::Arc::new(settings);
    services
}

#[tokio::test]
async fn a_permanently_refused_job_is_parked_after_its_attempts() {
    let t = TestStack::start_with(no_pump()).await;
    let (email, job) = pending_job(&t, "parked").await;
    let services = refused_sender(&t);
    for attempt in 1..gatehouse::service::sender::MAX_SEND_ATTEMPTS {
        let error = services.send_job(&job).await.unwrap_err();
        assert!(
            error.to_string().contains("MessageRejected"),
            "{attempt}: {error}"
        );
    }
    let parked = services.send_job(&job).await.unwrap();
    assert!(
        matches!(&parked, gatehouse::service::sender::SendOutcome::Parked { reason } if reason.contains("<email>")),
        "{parked:?}"
    );
    // Off the pending index: no sweep re-enqueues it, and a redelivery drops it.
    let snap = t.snapshot().await;
    let item = snap.jobs_to(&email)[0];
    assert_eq!(get_s(item, "status"), Some("parked"));
    assert_eq!(get_s(item, "gsi1pk"), None);
    let again = t.stack.services.send_job(&job).await.unwrap();
    assert!(matches!(
        again,
        gatehouse::service::sender::SendOutcome::Parked { .. }
    ));
    assert!(t.emails_to(&email).await.is_empty());
    // The admin view shows it with its attempts and reason.
    let user_id = get_s(snap.user_by_email(&email).unwrap(), "user_id")
        .unwrap()
        .to_string();
    let (status, user) = t
        .admin("GET", &format!("/admin/users/{user_id}"), None)
        .await;
    assert_eq!(status, 200, "{user}");
    let unsent = &user["unsent_emails"][0];
    assert_eq!(unsent["status"], "parked", "{user}");
    assert_eq!(unsent["attempts"], 5);
    assert!(unsent["last_error"]
        .as_str()
        .unwrap()
        .contains("MessageRejected"));
}

/// An SES stand-in that answers every request 500 and counts them.
async fn failing_ses() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [("x-amzn-errortype", "InternalFailure")],
                "{\"message\":\"internal failure\"}",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), count)
}

/// A 500 may come after SES accepted the message, so the SDK must not resend:
/// one request per claim, and the job is given back for the next delivery.
#[tokio::test]
async fn the_send_is_not_retried_by_the_sdk() {
    let t = TestStack::start_with(no_pump()).await;
    let (email, job) = pending_job(&t, "noretry").await;
    let (url, requests) = failing_ses().await;
    let mut services = t.stack.services.clone();
    services.ses = aws_sdk_sesv2::Client::from_conf(
        t.stack
            .clients
            .ses
            .config()
            .to_builder()
            .endpoint_url(url)
            .build(),
    );
    let error = services.send_job(&job).await.unwrap_err();
    assert!(error.to_string().contains("SES refused"), "{error}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    let snap = t.snapshot().await;
    assert_eq!(get_s(snap.jobs_to(&email)[0], "status"), Some("pending"));
}

/// Fails the request that marks a job sent, as a DynamoDB outage would.
#[derive(Debug)]
struct FailTheMark;

impl aws_sdk_dynamodb::config::Intercept for FailTheMark {
    fn name(&self) -> &'static str {
        "FailTheMark"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        if String::from_utf8_lossy(body).contains("ses_message_id = :mid") {
            return Err("injected: DynamoDB unavailable".into());
        }
        Ok(())
    }
}

/// SES accepted, the mark failed: the sender queues a confirmation, whose
/// delivery records the job sent. Nothing is sent twice.
#[tokio::test]
async fn a_failed_mark_after_ses_accepted_sends_nothing_again() {
    let (clock, t) = clocked_without_pump().await;
    let (email2, job2) = pending_job(&t, "marklost").await;
    let mut services = t.stack.services_for("email-sender").unwrap();
    services.store = Store::new(
        aws_sdk_dynamodb::Client::from_conf(
            services
                .store
                .client()
                .config()
                .to_builder()
                .interceptor(FailTheMark)
                .build(),
        ),
        services.store.table(),
    );
    let sent = services.send_job(&job2).await.unwrap();
    assert!(
        matches!(sent, gatehouse::service::sender::SendOutcome::Sent { .. }),
        "{sent:?}"
    );
    assert_eq!(t.emails_to(&email2).await.len(), 1);
    // Five minutes on, while the confirmation could still be redelivered
    // (DynamoDB down all along), another copy of the job finds it leased.
    clock.advance(chrono::Duration::minutes(5));
    let copy = t.stack.services.send_job(&job2).await.unwrap();
    assert_eq!(
        copy,
        gatehouse::service::sender::SendOutcome::LeasedElsewhere
    );
    // The purchase's own message for the job and the confirmation are both on
    // the queue: whichever comes first, the job ends sent, once.
    t.drain_queue().await;
    let snap = t.snapshot().await;
    let item = snap.jobs_to(&email2)[0];
    assert_eq!(get_s(item, "status"), Some("sent"));
    assert!(get_s(item, "ses_message_id").is_some());
    assert_eq!(t.emails_to(&email2).await.len(), 1, "sent once");
}

/// A job that failed goes to the back of the pending index: the sweeper comes
/// back to it a full delay after the failure, and older jobs that keep
/// failing never crowd out the rest.
#[tokio::test]
async fn a_failed_job_is_swept_a_full_delay_after_its_failure() {
    let (clock, t) = clocked_without_pump().await;
    let (_, job) = pending_job(&t, "backoff").await;
    lose_queue_messages(&t).await;
    clock.advance(chrono::Duration::minutes(16));
    // The member's welcome fails (SES refuses); the admin's notice has not been tried.
    assert!(refused_sender(&t).send_job(&job).await.is_err());
    assert_eq!(
        t.stack.sweeper.handle().await.unwrap()["requeued"],
        1,
        "only the notice is due"
    );
    clock.advance(chrono::Duration::minutes(16));
    assert_eq!(t.stack.sweeper.handle().await.unwrap()["requeued"], 2);
}
