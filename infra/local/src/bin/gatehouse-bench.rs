//! `make bench`: the performance figures in docs/performance.md.
//!
//! - handler CPU per webhook, excluding I/O (the pure pipeline in a loop);
//! - DynamoDB round trips per event (an SDK interceptor on a live local stack);
//! - cold start and peak RSS of each release bootstrap, driven through a local
//!   Lambda Runtime API (init = spawn to first `next`; first event = spawn to
//!   its response, moto on loopback included).
//!
//! Usage: gatehouse-bench RELEASE_DIR

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use gatehouse::aws::RoundTripCounter;
use gatehouse::config::{Secret, EMBEDDED_PLANS};
use gatehouse::domain::{PlanCatalog, Provider, Transition};
use gatehouse::providers::kajabi::{authenticate, KajabiEvent};
use gatehouse::service::webhook::Delivery;
use gatehouse::signature::hmac_sha256_hex;
use gatehouse::store::Store;
use gatehouse_local::bootstrap::ResourceNames;
use gatehouse_local::{LocalStack, StackConfig};
use serde_json::{json, Value};
use tokio::sync::Notify;

fn purchase_body(i: usize) -> String {
    json!({"type": "offer.purchased", "id": format!("evt_bench_{i}"),
        "member": {"id": "mem_1", "email": format!("Bench.{i}@Example.com"), "first_name": "Ada", "last_name": "Lovelace"},
        "offer": {"id": "off_456", "name": "NSSA Annual Membership"}})
    .to_string()
}

/// The per-event work that is not I/O, as the webhook does it.
fn cpu_per_event() -> f64 {
    let secret = Secret::new("bench-secret");
    let catalog = PlanCatalog::from_json(EMBEDDED_PLANS).unwrap_or_else(|e| panic!("plans: {e}"));
    let table_client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build(),
    );
    let store = Store::new(table_client, "bench");
    let bodies: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let b = purchase_body(i);
            let sig = hmac_sha256_hex(b"bench-secret", b.as_bytes());
            (b, sig)
        })
        .collect();
    let iterations = 20_000;
    let start = Instant::now();
    let mut sink = 0usize;
    for i in 0..iterations {
        let (body, sig) = &bodies[i % bodies.len()];
        let ok = authenticate(Some(sig), &[], body.as_bytes(), Some(&secret), &[]).is_ok();
        let value: Value = serde_json::from_slice(body.as_bytes()).unwrap_or(Value::Null);
        let event = KajabiEvent::from_json(&value);
        let now = chrono::Utc::now();
        let delivery = Delivery::new(
            Provider::Kajabi,
            event.event_id.clone(),
            event.event_type.clone(),
            body.as_bytes(),
            now,
        );
        let plan = catalog.for_product(Provider::Kajabi, "off_456");
        let view = plan.map(|p| Transition::Purchase.apply(None, p, now));
        let mut tx = store.tx();
        let record = delivery.record(gatehouse::store::EventStatus::Processed, None, None, vec![]);
        let _ = tx.put_event(&record);
        sink += usize::from(ok) + tx.len() + usize::from(view.is_some());
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    assert!(sink > 0);
    per
}

/// A fresh local stack with its own resources, without the pump or schedules,
/// so nothing runs beside what is measured.
async fn quiet_stack(endpoint: &str, prefix: &str) -> LocalStack {
    let run = hex::encode(rand::random::<[u8; 4]>());
    let mut config = StackConfig::from_env().unwrap_or_else(|e| panic!("{e}"));
    config.endpoint = endpoint.to_string();
    config.names = ResourceNames {
        table: format!("{prefix}-{run}"),
        queue: format!("{prefix}-{run}-q"),
        dlq: format!("{prefix}-{run}-dlq"),
        visibility_timeout_override: None,
    };
    config.addr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    config.run_email_pump = false;
    config.run_schedules = false;
    LocalStack::start(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn round_trips(endpoint: &str) -> BTreeMap<&'static str, Vec<String>> {
    let stack = quiet_stack(endpoint, "bench").await;
    let counter = RoundTripCounter::default();
    let mut services = stack.services.clone();
    services.store = Store::new(
        counter.instrument(&stack.clients.dynamodb),
        services.store.table(),
    );
    let webhook = kajabi_webhook::KajabiWebhook::new(services.clone());
    let secret = services
        .settings
        .kajabi_webhook_secret
        .clone()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let request = |body: &str| gatehouse::http::ApiRequest {
        method: "POST".into(),
        path: "/webhooks/kajabi".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "x-kajabi-signature".into(),
                hmac_sha256_hex(secret.as_bytes(), body.as_bytes()),
            ),
        ],
        body: body.as_bytes().to_vec(),
        ..Default::default()
    };
    let mut out = BTreeMap::new();
    let body = purchase_body(0);
    webhook.handle(request(&body)).await;
    out.insert("kajabi: new purchase", counter.take());
    webhook.handle(request(&body)).await;
    out.insert("kajabi: duplicate", counter.take());
    let again = json!({"type": "offer.purchased", "id": "evt_bench_again", "member": {"email": "bench.0@example.com"}, "offer": {"id": "off_456"}}).to_string();
    webhook.handle(request(&again)).await;
    out.insert("kajabi: purchase by an existing member", counter.take());
    let cancel = json!({"type": "member.subscription.canceled", "id": "evt_bench_cancel", "member": {"email": "bench.0@example.com"}, "offer": {"id": "off_456"}}).to_string();
    webhook.handle(request(&cancel)).await;
    out.insert("kajabi: cancel", counter.take());
    let ignored = json!({"type": "tag_added", "id": "evt_bench_tag"}).to_string();
    webhook.handle(request(&ignored)).await;
    out.insert("kajabi: ignored type", counter.take());
    let sender = email_sender::EmailSender::new(services.clone());
    gatehouse_local::glue::pump_once(&stack.clients.sqs, &stack.queue_url, &sender, 0)
        .await
        .ok();
    let sent = counter.take();
    out.insert(
        "email-sender: per email",
        sent.chunks(2)
            .next()
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
    );
    let resend = resend_setup_email::ResendSetupEmail::new(services.clone());
    resend
        .handle(gatehouse::http::ApiRequest {
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"email":"bench.0@example.com"}"#.to_vec(),
            ..Default::default()
        })
        .await;
    out.insert("resend-setup-email", counter.take());
    stack.shutdown().await;
    out
}

#[derive(Default)]
struct Runtime {
    event: Mutex<Option<Value>>,
    answered: Notify,
    started: Mutex<Option<Instant>>,
    first_next: Mutex<Option<Duration>>,
    response: Mutex<Option<(Duration, String)>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, String) {
    let event = rt.event.lock().ok().and_then(|mut e| e.take());
    if let (Ok(mut first), Ok(started)) = (rt.first_next.lock(), rt.started.lock()) {
        if first.is_none() {
            *first = started.map(|s| s.elapsed());
        }
    }
    match event {
        Some(event) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                "bench-1".parse().unwrap_or_else(|_| unreachable!()),
            );
            headers.insert(
                "lambda-runtime-deadline-ms",
                (chrono::Utc::now().timestamp_millis() + 30_000)
                    .to_string()
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench"
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                "Root=1-bench".parse().unwrap_or_else(|_| unreachable!()),
            );
            (headers, event.to_string())
        }
        // Park the second `next` until the process is stopped.
        None => std::future::pending().await,
    }
}

async fn respond(
    State(rt): State<Arc<Runtime>>,
    Path(_id): Path<String>,
    body: String,
) -> &'static str {
    if let (Ok(mut r), Ok(started)) = (rt.response.lock(), rt.started.lock()) {
        *r = started.map(|s| (s.elapsed(), body));
    }
    rt.answered.notify_one();
    "{}"
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Spawns a bootstrap against a local Runtime API with one event.
async fn cold_start(
    binary: &std::path::Path,
    event: Value,
    env: &[(String, String)],
) -> Result<(Duration, Duration, u64, String), String> {
    let rt = Arc::new(Runtime::default());
    *rt.event.lock().map_err(|e| e.to_string())? = Some(event);
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
        .route("/2018-06-01/runtime/init/error", post(respond))
        .with_state(Arc::clone(&rt));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut command = std::process::Command::new(binary);
    command
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    *rt.started.lock().map_err(|e| e.to_string())? = Some(Instant::now());
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let answered = tokio::time::timeout(Duration::from_secs(20), rt.answered.notified()).await;
    let rss = peak_rss_kib(child.id()).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    answered.map_err(|_| format!("{} gave no response", binary.display()))?;
    let init = rt
        .first_next
        .lock()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let (first, body) = rt
        .response
        .lock()
        .map_err(|e| e.to_string())?
        .clone()
        .unwrap_or_default();
    Ok((init, first, rss, body))
}

fn apigw(path: &str, body: &str, signature: Option<String>) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(sig) = signature {
        headers["x-kajabi-signature"] = Value::String(sig);
    }
    json!({"version": "2.0", "rawPath": path, "rawQueryString": "", "headers": headers,
        "requestContext": {"requestId": "bench", "http": {"method": "POST", "path": path, "sourceIp": "127.0.0.1"}},
        "body": body, "isBase64Encoded": false})
}

#[tokio::main]
async fn main() {
    if let Err(e) = gatehouse_local::env::load_local_env() {
        eprintln!("infra/local.env: {e}");
        std::process::exit(2);
    }
    let release_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release".into());
    let endpoint = std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5057".into());

    println!("## Handler CPU per webhook, excluding I/O\n");
    let cpu = cpu_per_event();
    println!("| measure | value |\n|---|---|\n| authenticate + parse + key + plan + transaction build, mean of 20 000 | {cpu:.1} µs |\n");

    println!(
        "## DynamoDB round trips per event\n\n| event | round trips | requests |\n|---|---|---|"
    );
    for (what, calls) in round_trips(&endpoint).await {
        println!("| {what} | {} | {} |", calls.len(), calls.join(", "));
    }

    // Resources for the cold-start runs.
    let stack = quiet_stack(&endpoint, "cold").await;
    let env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.clone()),
        (
            "TABLE_NAME".into(),
            stack.services.store.table().to_string(),
        ),
        ("EMAIL_QUEUE_URL".into(), stack.queue_url.clone()),
    ];
    let secret = std::env::var("KAJABI_WEBHOOK_SECRET").unwrap_or_default();
    let body = purchase_body(7);
    let sig = hmac_sha256_hex(secret.as_bytes(), body.as_bytes());
    let cases: Vec<(&str, Value)> = vec![
        (
            "kajabi-webhook",
            apigw("/webhooks/kajabi", &body, Some(sig)),
        ),
        (
            "setup-password",
            apigw(
                "/account/setup-password",
                r#"{"email":"nobody@example.com","token":"x","password":"correct horse battery"}"#,
                None,
            ),
        ),
        (
            "resend-setup-email",
            apigw(
                "/account/resend-setup-email",
                r#"{"email":"nobody@example.com"}"#,
                None,
            ),
        ),
        (
            "email-sender",
            json!({"Records": [{"messageId": "m1", "body": "{\"job_id\":\"job_missing\"}"}]}),
        ),
        (
            "outbox-sweeper",
            json!({"detail-type": "Scheduled Event", "detail": {}}),
        ),
        (
            "subscription-sweeper",
            json!({"detail-type": "Scheduled Event", "detail": {}}),
        ),
        // Unsigned: measures start-up and the 401 path.
        ("stripe-webhook", apigw("/webhooks/stripe", "{}", None)),
    ];
    println!("\n## Cold start and memory (x86_64 release bootstrap, local Runtime API, moto on loopback)\n");
    println!(
        "Init is measured twice: with the secrets in the environment (no read), and as deployed,"
    );
    println!("reading the function's secrets from Secrets Manager (all at once) before the first `next`.\n");
    println!("| function | secrets read | init, secrets in env | init, Secrets Manager | first event answered | peak RSS |\n|---|---|---|---|---|---|");
    for (name, event) in cases {
        let binary = std::path::Path::new(&release_dir).join(name);
        let plain = cold_start(&binary, event.clone(), &env).await;
        let secret_vars = stack.secret_env.get(name).cloned().unwrap_or_default();
        let reads = secret_vars
            .keys()
            .filter(|k| k.ends_with("_SECRET_ID"))
            .count();
        let mut with_reads = env.clone();
        with_reads.extend(secret_vars);
        let fetched = cold_start(&binary, event, &with_reads).await;
        match (plain, fetched) {
            (Ok((init, _, _, _)), Ok((init_read, first, rss, _))) => println!(
                "| {name} | {reads} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} MiB |",
                init.as_secs_f64() * 1e3,
                init_read.as_secs_f64() * 1e3,
                first.as_secs_f64() * 1e3,
                rss as f64 / 1024.0
            ),
            (Err(e), _) | (_, Err(e)) => println!("| {name} | {reads} | error: {e} | | | |"),
        }
    }
    stack.shutdown().await;
}
