//! `POST /admin/events/{key}/replay` (with `Idempotency-Key`): re-runs a
//! `failed` event through its provider's processing, after an admin fixed the
//! cause (a plan added, a user linked). Any other status is a 409 no-op.
//! `{key}` is the event's `ref` (base64url of `<provider>:<event id>`).

use gatehouse::admin::{authorize, event_key_from_path};
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{idempotency_key, AdminChange};
use gatehouse::service::Services;
use serde_json::json;

pub struct AdminReplayEvent {
    services: Services,
}

impl AdminReplayEvent {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let key = match idempotency_key(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let event = match event_key_from_path(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let change = AdminChange {
            principal,
            action: "replay",
            idempotency_key: key,
            target_user: None,
            request: json!({"event": event.to_string()}),
        };
        match self.services.admin_replay_event(&change, &event).await {
            Ok(answer) => answer.into_http(),
            Err(e) => {
                tracing::error!(request_id = %request.request_id, error = %e, "replay failed");
                reject::unavailable("could not replay right now; the event stays failed; retry with the same Idempotency-Key")
            }
        }
    }
}

impl HttpFunction for AdminReplayEvent {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminReplayEvent::handle(self, request))
    }
}
