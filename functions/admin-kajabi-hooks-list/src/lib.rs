//! `GET /admin/kajabi/hooks`: every hook of the Kajabi site (through
//! Kajabi's public API), each with whether it points at this deployment and
//! with the current URL token; tokens are masked.

use gatehouse::admin::authorize;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminKajabiHooksList {
    services: Services,
}

impl AdminKajabiHooksList {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        match self.services.admin_list_kajabi_hooks().await {
            Ok(list) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "list-kajabi-hooks", "admin read");
                ApiResponse::json(200, &list)
            }
            Err(e) => e
                .into_answer(&self.services.kajabi_url_token_values())
                .into_http(),
        }
    }
}

impl HttpFunction for AdminKajabiHooksList {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminKajabiHooksList::handle(self, request))
    }
}
