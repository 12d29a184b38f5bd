//! `POST /admin/users/{id}/sync-subscription` (with `Idempotency-Key`): applies
//! the provider's current view of each mismatched subscription through the
//! same state machine as webhooks, recorded as admin events; answers the old
//! and new status of each.

use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::user_change;
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
        let change = match user_change(
            &self.services.settings.admin_principals,
            &request,
            "sync",
            json!({}),
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
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
