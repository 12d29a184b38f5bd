//! `DELETE /admin/kajabi/hooks/{id}` (with `Idempotency-Key`): removes a
//! Kajabi hook. Kajabi's 404 is a 404. Audited.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
use gatehouse::service::Services;
use serde_json::json;

pub struct AdminKajabiHookDelete {
    services: Services,
}

impl AdminKajabiHookDelete {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "delete-kajabi-hook",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        let id = request
            .path_params
            .get("id")
            .map(|id| id.trim().to_string())
            .unwrap_or_default();
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return ApiResponse::problem(
                400,
                "invalid-request",
                "Invalid request",
                "the hook id must be Kajabi's (letters, digits, - and _)",
            );
        }
        change.request = json!({"id": id});
        match self.services.admin_delete_kajabi_hook(&change, &id).await {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "deleting a Kajabi hook failed",
                &e,
                "could not record the change right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminKajabiHookDelete {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminKajabiHookDelete::handle(self, request))
    }
}
