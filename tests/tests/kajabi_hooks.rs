//! Kajabi hooks managed through a local fake of Kajabi's documented
//! `/v1/hooks` API (OAuth client credentials, JSON:API bodies, pages with
//! `meta.total_pages`, JSON:API errors): list, create, delete and ensure,
//! each an admin function behind IAM, and each of Kajabi's errors answered
//! specifically. The URL token never appears in an answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use gatehouse_e2e::{Options, TestStack, KAJABI_CLIENT_ID, KAJABI_CLIENT_SECRET, URL_TOKENS};
use serde_json::{json, Value};

/// How the fake answers: normally, or with one of Kajabi's errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    BadCredentials,
    MissingScope,
    BusyOnce,
    Down,
    /// A create refused with a detail that quotes the target URL.
    EchoTarget,
}

struct Fake {
    hooks: Mutex<Vec<(String, String, String)>>,
    next_id: AtomicUsize,
    mode: Mutex<Mode>,
    busy_answered: AtomicUsize,
}

impl Fake {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap()
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn seed(&self, event: &str, target: &str) -> String {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst).to_string();
        self.hooks
            .lock()
            .unwrap()
            .push((id.clone(), event.into(), target.into()));
        id
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn jsonapi_error(status: StatusCode, title: &str, detail: &str) -> Response {
    reply(
        status,
        json!({"errors": [{"status": status.as_u16().to_string(), "title": title, "detail": detail}]}),
    )
}

/// The mode's error for an API call, if any.
fn failure(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if bearer != "Bearer kat_hooks" {
        return Some(jsonapi_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid token",
        ));
    }
    match fake.mode() {
        Mode::MissingScope => Some(jsonapi_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the API key is missing the hooks permission",
        )),
        Mode::BusyOnce if fake.busy_answered.fetch_add(1, Ordering::SeqCst) == 0 => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response(),
        ),
        Mode::Down => Some(jsonapi_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "",
        )),
        _ => None,
    }
}

async fn token(State(fake): State<Arc<Fake>>, body: String) -> Response {
    let form: std::collections::HashMap<String, String> =
        gatehouse::http::parse_query(&body).into_iter().collect();
    if fake.mode() == Mode::BadCredentials
        || form.get("client_id").map(String::as_str) != Some(KAJABI_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(KAJABI_CLIENT_SECRET)
    {
        return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    reply(
        StatusCode::OK,
        json!({"access_token": "kat_hooks", "token_type": "Bearer", "expires_in": 7200}),
    )
}

fn resource(id: &str, event: &str, target: &str) -> Value {
    json!({"id": id, "type": "hooks",
        "attributes": {"event": event, "target_url": target, "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z", "resource_id": null},
        "relationships": {"site": {"data": {"id": "2", "type": "sites"}}}})
}

async fn list(
    State(fake): State<Arc<Fake>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = failure(&fake, &headers) {
        return refused;
    }
    let query: std::collections::HashMap<String, String> =
        gatehouse::http::parse_query(&raw.unwrap_or_default())
            .into_iter()
            .collect();
    let number: usize = query
        .get("page[number]")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    // Kajabi may serve fewer than asked: three a page, so paging is exercised.
    let size: usize = query
        .get("page[size]")
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .min(3);
    let hooks = fake.hooks.lock().unwrap().clone();
    let total_pages = hooks.len().div_ceil(size).max(1);
    let data: Vec<Value> = hooks
        .iter()
        .skip((number - 1) * size)
        .take(size)
        .map(|(id, event, target)| resource(id, event, target))
        .collect();
    reply(
        StatusCode::OK,
        json!({"data": data, "meta": {"total_pages": total_pages, "total_count": hooks.len(), "current_page": number}}),
    )
}

async fn create(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    if let Some(refused) = failure(&fake, &headers) {
        return refused;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let attributes = &body["data"]["attributes"];
    let (Some(event), Some(target)) = (
        attributes["event"].as_str(),
        attributes["target_url"].as_str(),
    ) else {
        return jsonapi_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "event and target_url are required",
        );
    };
    if fake.mode() == Mode::EchoTarget {
        return jsonapi_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            &format!("target_url {target} is not reachable"),
        );
    }
    let id = fake.seed(event, target);
    reply(
        StatusCode::CREATED,
        json!({"data": resource(&id, event, target)}),
    )
}

async fn remove(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = failure(&fake, &headers) {
        return refused;
    }
    let mut hooks = fake.hooks.lock().unwrap();
    let before = hooks.len();
    hooks.retain(|(hook, _, _)| *hook != id);
    if hooks.len() == before {
        return jsonapi_error(StatusCode::NOT_FOUND, "Not Found", "no such hook");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn fake_kajabi() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        hooks: Mutex::new(Vec::new()),
        next_id: AtomicUsize::new(100),
        mode: Mutex::new(Mode::Normal),
        busy_answered: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/v1/oauth/token", post(token))
        .route("/v1/hooks", get(list).post(create))
        .route("/v1/hooks/{id}", delete(remove))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

async fn stack() -> (TestStack, Arc<Fake>) {
    let (base, fake) = fake_kajabi().await;
    let t = TestStack::start_with(Options {
        provider_apis: Some(base),
        ..Default::default()
    })
    .await;
    (t, fake)
}

/// This deployment's Kajabi endpoint (the test stack's FRONTEND_URL).
const ENDPOINT: &str = "http://app.test/webhooks/kajabi";

/// Hooks point at the newest URL token: the last (rotation deploys `old,new`).
fn target() -> String {
    format!("{ENDPOINT}?token={}", URL_TOKENS[1])
}

#[tokio::test]
async fn ensure_leaves_exactly_one_hook_per_event_and_a_second_run_changes_nothing() {
    let (t, fake) = stack().await;
    let kept = fake.seed("purchase", &target());
    let duplicate = fake.seed("purchase", &target());
    let stale = fake.seed(
        "form_submission",
        &format!("{ENDPOINT}?token=retired-token"),
    );
    let foreign = fake.seed("tag_added", "https://hooks.zapier.example/catch/1");
    let (status, first) = t
        .admin_with_key("POST", "/admin/kajabi/hooks/ensure", None, Some("ensure-1"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "changed");
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first["kept"]), [kept]);
    assert_eq!(ids(&first["deleted"]), [duplicate, stale]);
    assert_eq!(first["created"].as_array().unwrap().len(), 5, "{first}");
    let hooks = fake.hooks.lock().unwrap().clone();
    for event in gatehouse::domain::KAJABI_HOOK_EVENTS {
        let here: Vec<_> = hooks
            .iter()
            .filter(|(_, e, url)| e == event && *url == target())
            .collect();
        assert_eq!(here.len(), 1, "{event}: exactly one hook");
    }
    assert!(
        hooks.iter().any(|(id, _, _)| *id == foreign),
        "foreign hooks stay"
    );
    // The same key repeats the answer; a new run changes nothing.
    let (_, again) = t
        .admin_with_key("POST", "/admin/kajabi/hooks/ensure", None, Some("ensure-1"))
        .await;
    assert_eq!(again, first);
    let (status, second) = t
        .admin_with_key("POST", "/admin/kajabi/hooks/ensure", None, Some("ensure-2"))
        .await;
    assert_eq!(
        (status, second["status"].as_str()),
        (200, Some("unchanged")),
        "{second}"
    );
    assert_eq!(fake.hooks.lock().unwrap().len(), 7);
    // The list pages through Kajabi's answer and masks every token.
    let (status, listed) = t.admin("GET", "/admin/kajabi/hooks", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 7);
    let text = format!("{listed}{first}{second}");
    assert!(!text.contains(URL_TOKENS[1]), "the URL token never leaves");
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["current_token"] == true)
            .count(),
        6
    );
    let (_, audit) = t
        .admin(
            "GET",
            "/admin/events?provider=admin&type=admin.ensure-kajabi-hooks",
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
}

#[tokio::test]
async fn create_and_delete_one_hook() {
    let (t, fake) = stack().await;
    let create = |key: &'static str, event: &'static str| {
        let t = &t;
        async move {
            t.admin_with_key(
                "POST",
                "/admin/kajabi/hooks",
                Some(&json!({"event": event})),
                Some(key),
            )
            .await
        }
    };
    let (status, created) = create("create-1", "tag_added").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["hook"]["target_url"],
        format!("{ENDPOINT}?token=***")
    );
    let (status, exists) = create("create-2", "tag_added").await;
    assert_eq!(
        (status, exists["status"].as_str()),
        (200, Some("exists")),
        "{exists}"
    );
    let (status, bad) = create("create-3", "tag_renamed").await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(fake.hooks.lock().unwrap().len(), 1);
    let id = created["hook"]["id"].as_str().unwrap().to_string();
    let path = format!("/admin/kajabi/hooks/{id}");
    let (status, body) = t
        .admin_with_key("DELETE", &path, None, Some("delete-1"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(fake.hooks.lock().unwrap().is_empty());
    // A hook already gone is the end asked for (a retry whose first attempt landed).
    let (status, body) = t
        .admin_with_key("DELETE", &path, None, Some("delete-2"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("absent")),
        "{body}"
    );
    // From the CLI too.
    let out = t.cli(&["kajabi", "hooks", "ensure"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("changed: created purchase"),
        "{}",
        out.stdout
    );
    let out = t.cli(&["kajabi", "hooks", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("token=***") && !out.stdout.contains(URL_TOKENS[1]));
}

#[tokio::test]
async fn each_kajabi_error_gets_its_own_answer() {
    let (t, fake) = stack().await;
    let cases = [
        (
            Mode::BadCredentials,
            502,
            "kajabi-unauthorized",
            "KajabiClientSecret",
        ),
        (
            Mode::MissingScope,
            502,
            "kajabi-forbidden",
            "missing the hooks permission",
        ),
        (Mode::Down, 502, "kajabi-unavailable", "500"),
    ];
    for (mode, status, slug, detail) in cases {
        fake.set(mode);
        let (got, body) = t.admin("GET", "/admin/kajabi/hooks", None).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(
            body["type"],
            format!("https://gatehouse.dev/problems/{slug}"),
            "{body}"
        );
        assert!(body["detail"].as_str().unwrap().contains(detail), "{body}");
    }
    // A refused change is not stored: once the cause is fixed, the same key
    // makes the call.
    fake.set(Mode::MissingScope);
    let (status, _) = t
        .admin_with_key("POST", "/admin/kajabi/hooks/ensure", None, Some("ensure-x"))
        .await;
    assert_eq!(status, 502);
    fake.set(Mode::Normal);
    let (status, body) = t
        .admin_with_key("POST", "/admin/kajabi/hooks/ensure", None, Some("ensure-x"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("changed")),
        "{body}"
    );
    // Kajabi's error quoting the target URL: answered, its token masked.
    fake.set(Mode::EchoTarget);
    fake.hooks.lock().unwrap().clear();
    let (status, body) = t
        .admin_with_key(
            "POST",
            "/admin/kajabi/hooks",
            Some(&json!({"event": "tag_removed"})),
            Some("echo-1"),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("is not reachable"),
        "{body}"
    );
    assert!(!body.to_string().contains(URL_TOKENS[1]), "{body}");
    // A 429 is retried (honouring Retry-After), then answered.
    fake.set(Mode::BusyOnce);
    let (status, body) = t.admin("GET", "/admin/kajabi/hooks", None).await;
    assert_eq!(status, 200, "{body}");
}
