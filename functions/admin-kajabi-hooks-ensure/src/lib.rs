//! `POST /admin/kajabi/hooks/ensure` (with `Idempotency-Key`): exactly one
//! Kajabi hook per event Gatehouse reads, pointing at this deployment's
//! current `/webhooks/kajabi?token=…`; duplicates and hooks with an old
//! token are deleted (after the new ones exist), hooks pointing elsewhere
//! are left alone. Running it again changes nothing. Audited.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
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
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "ensure-kajabi-hooks",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };

        change.request = json!({});
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
