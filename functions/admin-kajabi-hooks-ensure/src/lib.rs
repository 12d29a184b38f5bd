//! `POST /admin/kajabi/hooks/ensure` (with `Idempotency-Key`): exactly one
//! Kajabi hook per event Gatehouse reads, pointing at this deployment's
//! current `/webhooks/kajabi?token=…`; duplicates and hooks with an old
//! token are deleted (after the new ones exist), hooks pointing elsewhere
//! are left alone. Running it again changes nothing. Audited.

use gatehouse::admin::authorize;
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{idempotency_key, AdminChange};
use gatehouse::service::Services;
use serde_json::json;

pub struct AdminKajabiHooksEnsure {
    services: Services,
}

impl AdminKajabiHooksEnsure {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let idempotency_key = match idempotency_key(&request) {
            Ok(k) => k,
            Err(bad) => return bad,
        };

        let change = AdminChange {
            principal,
            action: "ensure-kajabi-hooks",
            idempotency_key,
            target_user: None,
            request: json!({}),
        };
        match self.services.admin_ensure_kajabi_hooks(&change).await {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "ensuring Kajabi hooks failed",
                &e,
                "could not record the change right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminKajabiHooksEnsure {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminKajabiHooksEnsure::handle(self, request))
    }
}
