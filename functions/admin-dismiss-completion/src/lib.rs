//! `POST /admin/completions/{id}/dismiss` `{"reason": …}` (with
//! `Idempotency-Key`): the completion is closed, with the reason, and no
//! later account or link applies it. Audited with the principal.

use gatehouse::admin::event_key_from_param;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{admin_change, required_reason};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DismissRequest {
    reason: Option<String>,
}

pub struct AdminDismissCompletion {
    services: Services,
}

impl AdminDismissCompletion {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "dismiss-completion",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        let completion = match event_key_from_param(&request, "id") {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let body: DismissRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(b) => b,
            Err(rejection) => return rejection,
        };
        let reason = match required_reason(body.reason) {
            Ok(reason) => reason,
            Err(detail) => {
                return ApiResponse::problem(400, "invalid-request", "Invalid request", detail)
            }
        };
        change.request = json!({"completion": completion.to_string(), "reason": reason});
        match self
            .services
            .admin_dismiss_completion(&change, &completion, &reason)
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "dismissing a completion failed",
                &e,
                "could not dismiss the completion right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminDismissCompletion {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminDismissCompletion::handle(self, request))
    }
}
