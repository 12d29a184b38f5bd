//! `POST /account/resend-setup-email` `{email}`: issues a new setup link and
//! invalidates older ones. Always 202 with the same body, whether or not the
//! address exists or the request was rate-limited.

use gatehouse::domain::Email;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct ResendRequest {
    email: String,
}

pub fn accepted() -> ApiResponse {
    ApiResponse::json(
        202,
        &json!({"status": "accepted", "detail": "If this address has an account waiting for setup, a new link is on its way."}),
    )
}

pub struct ResendSetupEmail {
    services: Services,
}

impl ResendSetupEmail {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let body: ResendRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let email = match Email::parse(&body.email) {
            Ok(email) => email,
            Err(e) => {
                return ApiResponse::problem(400, "invalid-email", "Invalid email", e.to_string())
            }
        };
        match self.services.resend_setup_email(&email).await {
            Ok(outcome) => {
                tracing::info!(request_id = %request.request_id, outcome = ?outcome, "resend handled");
                accepted()
            }
            Err(e) => reject::unavailable_after(
                &request,
                "resend failed",
                &e,
                "could not process the request right now; try again",
            ),
        }
    }
}

impl HttpFunction for ResendSetupEmail {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(ResendSetupEmail::handle(self, request))
    }
}
