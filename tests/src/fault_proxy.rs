//! An HTTP proxy between the functions' AWS SDK clients and moto that answers
//! a share of DynamoDB, SQS and SES calls the way those services fail:
//! throttled, a 500 before the call reaches the service, a 500 after it did
//! (the write happened, the client saw an error), or late. Everything else,
//! Secrets Manager included, passes through untouched.
//!
//! The draw is seeded, so a failing run repeats with `FAULT_SEED`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    DynamoDb,
    Sqs,
    Ses,
}

impl Service {
    /// DynamoDB and SQS speak JSON 1.0 with the operation in `X-Amz-Target`;
    /// SESv2 is REST under `/v2/email/`.
    fn of(headers: &HeaderMap, path: &str) -> Option<Self> {
        let target = headers
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default();
        if target.starts_with("DynamoDB_20120810.") {
            Some(Self::DynamoDb)
        } else if target.starts_with("AmazonSQS.") {
            Some(Self::Sqs)
        } else if path.starts_with("/v2/email/") {
            Some(Self::Ses)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The service's throttling error, before the call reaches it.
    Throttle,
    /// A 500 before the call reaches the service.
    FailBefore,
    /// The call is applied, then answered with a 500.
    FailAfter,
    /// The call is applied after a delay.
    Delay,
}

/// Each service's calls draw from a shuffled deck of ten: one of each fault
/// and six clean passes, so at least 20% of any ten or more calls are hit
/// (40% once a deck is spent), and no fault kind is starved by chance.
const DECK: [Option<Fault>; 10] = [
    Some(Fault::Throttle),
    Some(Fault::FailBefore),
    Some(Fault::FailAfter),
    Some(Fault::Delay),
    None,
    None,
    None,
    None,
    None,
    None,
];

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    rng: Mutex<StdRng>,
    decks: Mutex<BTreeMap<Service, Vec<Option<Fault>>>>,
    enabled: AtomicBool,
    calls: Mutex<BTreeMap<Service, u64>>,
    faults: Mutex<BTreeMap<(Service, Fault), u64>>,
    /// Every `SendEmail` SES accepted: recipient, SES's message id, and
    /// whether the proxy then answered 500 (the client never saw the id).
    accepted_sends: Mutex<Vec<AcceptedSend>>,
    /// Text of every DynamoDB and SQS request that reached moto: a message
    /// id in it means the sender tried to record that send.
    reached: Mutex<Vec<String>>,
    /// The highest `amz-sdk-request` attempt seen on `SendEmail`.
    max_send_attempt: Mutex<u32>,
}

/// One `SendEmail` that SES accepted.
#[derive(Debug, Clone)]
pub struct AcceptedSend {
    pub to: String,
    pub message_id: String,
    /// The proxy answered 500 after SES accepted it.
    pub hidden: bool,
}

pub struct FaultProxy {
    pub url: String,
    pub seed: u64,
    state: Arc<ProxyState>,
}

impl FaultProxy {
    /// Listens on a free loopback port, forwarding to `upstream`. Faults are
    /// off until [`FaultProxy::enable`].
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            decks: Mutex::default(),
            enabled: AtomicBool::new(false),
            calls: Mutex::default(),
            faults: Mutex::default(),
            accepted_sends: Mutex::default(),
            reached: Mutex::default(),
            max_send_attempt: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seed, state }
    }

    pub fn enable(&self, on: bool) {
        self.state.enabled.store(on, Ordering::SeqCst);
    }

    /// Calls seen while faults were on, by service.
    pub fn calls(&self) -> BTreeMap<Service, u64> {
        self.state
            .calls
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Faults injected, by service and kind.
    pub fn faults(&self) -> BTreeMap<(Service, Fault), u64> {
        self.state
            .faults
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    /// The sends SES accepted for `address`.
    pub fn accepted_sends_to(&self, address: &str) -> Vec<AcceptedSend> {
        self.state
            .accepted_sends
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|s| s.to.eq_ignore_ascii_case(address))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any DynamoDB or SQS request that reached moto named `message_id`
    /// (the mark of the job sent, or the confirmation queued for it).
    pub fn recording_reached(&self, message_id: &str) -> bool {
        self.state
            .reached
            .lock()
            .map(|r| r.iter().any(|body| body.contains(message_id)))
            .unwrap_or_default()
    }

    /// The highest attempt number the SDK sent `SendEmail` with (1: it never
    /// retried a send by itself).
    pub fn max_send_attempt(&self) -> u32 {
        self.state
            .max_send_attempt
            .lock()
            .map(|a| *a)
            .unwrap_or_default()
    }
}

impl ProxyState {
    fn draw(&self, service: Service) -> Option<Fault> {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(service).or_default() += 1;
        }
        let fault = {
            let mut decks = self.decks.lock().ok()?;
            let deck = decks.entry(service).or_default();
            if deck.is_empty() {
                deck.extend(DECK);
                deck.shuffle(&mut *self.rng.lock().ok()?);
            }
            deck.pop().flatten()?
        };
        if let Ok(mut faults) = self.faults.lock() {
            *faults.entry((service, fault)).or_default() += 1;
        }
        Some(fault)
    }

    fn delay(&self) -> Duration {
        let ms = self
            .rng
            .lock()
            .map(|mut r| r.gen_range(20..150))
            .unwrap_or(50);
        Duration::from_millis(ms)
    }
}

/// The error each service answers, in its own protocol, so the SDK classifies
/// it as it would the real one (throttling, or a transient 5xx).
fn failure(service: Service, fault: Fault) -> Response {
    let throttle = fault == Fault::Throttle;
    let (status, builder) = match service {
        Service::DynamoDb => {
            let code = if throttle {
                "ThrottlingException"
            } else {
                "InternalServerError"
            };
            (
                if throttle { 400 } else { 500 },
                Response::builder()
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(Body::from(format!(
                        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected"}}"#
                    ))),
            )
        }
        Service::Sqs => {
            let (code, side) = if throttle {
                ("RequestThrottled", "Sender")
            } else {
                ("InternalError", "Receiver")
            };
            (
                if throttle { 400 } else { 500 },
                Response::builder()
                    .header("content-type", "application/x-amz-json-1.0")
                    .header("x-amzn-query-error", format!("{code};{side}"))
                    .body(Body::from(format!(
                        r#"{{"__type":"com.amazonaws.sqs#{code}","message":"injected"}}"#
                    ))),
            )
        }
        Service::Ses => {
            let code = if throttle {
                "TooManyRequestsException"
            } else {
                "InternalFailure"
            };
            (
                if throttle { 429 } else { 500 },
                Response::builder()
                    .header("content-type", "application/json")
                    .header("x-amzn-errortype", code)
                    .body(Body::from(r#"{"message":"injected"}"#)),
            )
        }
    };
    let mut response = builder.unwrap_or_default();
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}

fn bad_gateway(reason: String) -> Response {
    let mut response = Response::new(Body::from(reason));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// The first recipient of a SESv2 `SendEmail` body.
fn recipient(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value["Destination"]["ToAddresses"][0].as_str()?.to_string())
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let service = Service::of(&parts.headers, parts.uri.path());
    let fault = match service {
        Some(s) if state.enabled.load(Ordering::SeqCst) => state.draw(s),
        _ => None,
    };
    match (service, fault) {
        (Some(s), Some(f @ (Fault::Throttle | Fault::FailBefore))) => return failure(s, f),
        (_, Some(Fault::Delay)) => tokio::time::sleep(state.delay()).await,
        _ => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut headers = parts.headers.clone();
    for hop in ["host", "content-length", "transfer-encoding", "connection"] {
        headers.remove(hop);
    }
    let upstream = state
        .http
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .headers(headers)
        .body(body.clone())
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let status = upstream.status();
    let mut response_headers = upstream.headers().clone();
    for hop in ["content-length", "transfer-encoding", "connection"] {
        response_headers.remove(hop);
    }
    // The whole answer arrives before the client hears anything, so a 500
    // after it is a call that was applied.
    let bytes = match upstream.bytes().await {
        Ok(b) => b,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let hidden = fault == Some(Fault::FailAfter);
    match service {
        Some(Service::Ses) if parts.uri.path().ends_with("/outbound-emails") => {
            let attempt = parts
                .headers
                .get("amz-sdk-request")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.split(';').find_map(|p| p.trim().strip_prefix("attempt=")))
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(1);
            if let Ok(mut max) = state.max_send_attempt.lock() {
                *max = (*max).max(attempt);
            }
            let message_id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["MessageId"].as_str().map(str::to_string));
            if let (true, Some(to), Some(message_id)) =
                (status.is_success(), recipient(&body), message_id)
            {
                if let Ok(mut sends) = state.accepted_sends.lock() {
                    sends.push(AcceptedSend {
                        to,
                        message_id,
                        hidden,
                    });
                }
            }
        }
        Some(Service::DynamoDb | Service::Sqs) => {
            if let Ok(mut reached) = state.reached.lock() {
                reached.push(String::from_utf8_lossy(&body).into_owned());
            }
        }
        _ => {}
    }
    if let (Some(s), true) = (service, hidden) {
        return failure(s, Fault::FailAfter);
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
        .headers_mut()
        .insert("x-gatehouse-proxy", HeaderValue::from_static("1"));
    response
}
