//! `POST /webhooks/kajabi`: authenticated by `X-Kajabi-Signature` or a secret
//! `?token=` (Kajabi's native hooks are unsigned), then recorded and applied.
//! The order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::{source, Services};

pub struct KajabiWebhook {
    services: Services,
}

impl KajabiWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        self.services
            .handle_webhook::<source::Kajabi>(&request)
            .await
    }
}

impl HttpFunction for KajabiWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(KajabiWebhook::handle(self, request))
    }
}
