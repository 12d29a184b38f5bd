//! `GET /admin/events/{key}`: one event with its raw payload. `{key}` is
//! base64url (no padding) of `<provider>:<event id>`: the `ref` of list rows.

use gatehouse::admin::{authorize, event_key_from_path};
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminGetEvent {
    services: Services,
}

impl AdminGetEvent {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let key = match event_key_from_path(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        match self.services.admin_event(&key).await {
            Ok(Some(view)) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "get-event", "admin read");
                ApiResponse::json(200, &view)
            }
            Ok(None) => ApiResponse::problem(
                404,
                "event-not-found",
                "Event not found",
                format!("no event {}:{}", key.provider(), key.event_id()),
            ),
            Err(e) => reject::unavailable_after(
                &request,
                "reading an event failed",
                &e,
                "could not read the event right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminGetEvent {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminGetEvent::handle(self, request))
    }
}
