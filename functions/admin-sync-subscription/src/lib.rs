//! `POST /admin/users/{id}/sync-subscription` (with `Idempotency-Key`): applies
//! the provider's current view of each mismatched subscription through the
//! same state machine as webhooks, recorded as admin events; answers the old
//! and new status of each.

use gatehouse::admin::authorize;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::domain::UserId;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{idempotency_key, not_found, AdminChange};
use gatehouse::service::Services;
use serde_json::json;

pub struct AdminSyncSubscription {
    services: Services,
}

impl AdminSyncSubscription {
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
            action: "sync",
            idempotency_key: key,
            target_user: Some(user),
            request: json!({}),
        };
        match self.services.admin_sync(&change).await {
            Ok(answer) => answer.into_http(),
            Err(e) => e.into_response(),
        }
    }
}

impl HttpFunction for AdminSyncSubscription {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminSyncSubscription::handle(self, request))
    }
}
