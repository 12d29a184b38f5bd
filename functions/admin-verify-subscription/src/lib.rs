//! `GET /admin/users/{id}/verify-subscription`: each stored subscription next
//! to the provider's current view, with the differences and a recommended
//! action. A provider failure is a 502 naming the provider's status.

use gatehouse::admin::authorize;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::domain::UserId;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::not_found;
use gatehouse::service::Services;

pub struct AdminVerifySubscription {
    services: Services,
}

impl AdminVerifySubscription {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let raw = request
            .path_params
            .get("id")
            .map(String::as_str)
            .unwrap_or_default();
        let Some(user) = user_id_from_path(raw) else {
            return not_found(&UserId::from_stored(raw)).into_http();
        };
        match self.services.admin_verify(&user).await {
            Ok(Some(report)) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "verify-subscription", user_id = %user, mismatch = %report["mismatch"], "admin read");
                ApiResponse::json(200, &report)
            }
            Ok(None) => not_found(&user).into_http(),
            Err(e) => e.into_response(),
        }
    }
}

impl HttpFunction for AdminVerifySubscription {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminVerifySubscription::handle(self, request))
    }
}
