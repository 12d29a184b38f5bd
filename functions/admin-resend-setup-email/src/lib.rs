//! `POST /admin/users/{id}/resend-setup-email` (with `Idempotency-Key`): issues
//! a new setup token and welcome email; older links stop working. 409 for an
//! account that already has a password, 404 for an unknown id. Audited.

use gatehouse::admin::authorize;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::domain::UserId;
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{idempotency_key, not_found, AdminChange};
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
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let key = match idempotency_key(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let raw = request
            .path_params
            .get("id")
            .map(String::as_str)
            .unwrap_or_default();
        let Some(user) = user_id_from_path(raw) else {
            return not_found(&UserId::from_stored(raw)).into_http();
        };
        let change = AdminChange {
            principal,
            action: "resend-setup-email",
            idempotency_key: key,
            target_user: Some(user),
            request: json!({}),
        };
        match self.services.admin_resend_setup_email(&change).await {
            Ok(answer) => answer.into_http(),
            Err(e) => {
                tracing::error!(request_id = %request.request_id, error = %e, "admin resend failed");
                reject::unavailable(
                    "could not send a new link right now; retry with the same Idempotency-Key",
                )
            }
        }
    }
}

impl HttpFunction for AdminResendSetupEmail {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminResendSetupEmail::handle(self, request))
    }
}
