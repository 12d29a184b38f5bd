//! `POST /admin/kajabi/hooks` `{"event": …}` (with `Idempotency-Key`): a
//! Kajabi hook for the event, pointing at this deployment's
//! `/webhooks/kajabi?token=…`; an identical hook already there is answered,
//! not doubled. Audited.

use gatehouse::domain::KAJABI_HOOK_EVENTS;
use gatehouse::http::{json_body, MAX_FORM_BYTES};
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    event: String,
}

pub struct AdminKajabiHookCreate {
    services: Services,
}

impl AdminKajabiHookCreate {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "create-kajabi-hook",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        let body: CreateRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(b) => b,
            Err(rejection) => return rejection,
        };
        let event = body.event.trim().to_string();
        if !KAJABI_HOOK_EVENTS.contains(&event.as_str()) {
            return ApiResponse::problem(
                400,
                "invalid-request",
                "Invalid request",
                format!("`event` must be one of {}", KAJABI_HOOK_EVENTS.join(", ")),
            );
        }
        change.request = json!({"event": event});
        match self
            .services
            .admin_create_kajabi_hook(&change, &event)
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "creating a Kajabi hook failed",
                &e,
                "could not record the change right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminKajabiHookCreate {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminKajabiHookCreate::handle(self, request))
    }
}
