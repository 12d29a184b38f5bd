//! `POST /admin/events/{key}/replay` (with `Idempotency-Key`): re-runs a
//! `failed` or `pending` event through its provider's processing, after an
//! admin fixed the cause (a plan added, a user linked). An optional body
//! `{"user_id": "usr_…"}` attaches a `pending` event's provider customer to
//! that member first (the member paid under another email), which applies
//! every event waiting on that customer. Any other status is a 409 no-op.
//! `{key}` is the event's `ref` (base64url of `<provider>:<event id>`).

use gatehouse::admin::event_key_from_path;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::domain::UserId;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    user_id: Option<String>,
}

/// The member to attach to, from an optional body.
fn attach_to(request: &ApiRequest) -> Result<Option<UserId>, ApiResponse> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body: ReplayRequest = json_body(request, MAX_FORM_BYTES)?;
    match body.user_id.as_deref().map(str::trim) {
        None => Ok(None),
        Some(raw) => user_id_from_path(raw).map(Some).ok_or_else(|| {
            ApiResponse::problem(
                400,
                "invalid-request",
                "Invalid request",
                "`user_id` is not a member id (usr_…)",
            )
        }),
    }
}

pub struct AdminReplayEvent {
    services: Services,
}

impl AdminReplayEvent {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change =
            match admin_change(&self.services.settings.admin_principals, &request, "replay") {
                Ok(change) => change,
                Err(refused) => return refused,
            };
        let event = match event_key_from_path(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let attach = match attach_to(&request) {
            Ok(user) => user,
            Err(bad) => return bad,
        };
        let mut audited = json!({"event": event.to_string()});
        if let Some(user) = &attach {
            audited["user_id"] = json!(user.as_str());
        }
        change.request = audited;
        match self
            .services
            .admin_replay_event(&change, &event, attach.as_ref())
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(&request, "replay failed", &e, "could not replay right now; the event keeps its status; retry with the same Idempotency-Key"),
        }
    }
}

impl HttpFunction for AdminReplayEvent {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminReplayEvent::handle(self, request))
    }
}
