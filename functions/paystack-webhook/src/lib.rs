//! `POST /webhooks/paystack`: authenticated by `X-Paystack-Signature` (hex
//! HMAC-SHA512 of the body with the secret key), then recorded and applied. The
//! order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::{source, Services};

pub struct PaystackWebhook {
    services: Services,
}

impl PaystackWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        self.services
            .handle_webhook::<source::Paystack>(&request)
            .await
    }
}

impl HttpFunction for PaystackWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(PaystackWebhook::handle(self, request))
    }
}
