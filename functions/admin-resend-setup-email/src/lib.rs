//! `POST /admin/users/{id}/resend-setup-email` (with `Idempotency-Key`): issues
//! a new setup token and welcome email; older links stop working. 409 for an
//! account that already has a password, 404 for an unknown id. Audited.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::user_change;
use gatehouse::service::Services;
use serde_json::json;

pub struct AdminResendSetupEmail {
    services: Services,
}

impl AdminResendSetupEmail {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let change = match user_change(
            &self.services.settings.admin_principals,
            &request,
            "resend-setup-email",
            json!({}),
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        match self.services.admin_resend_setup_email(&change).await {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "admin resend failed",
                &e,
                "could not send a new link right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminResendSetupEmail {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminResendSetupEmail::handle(self, request))
    }
}
