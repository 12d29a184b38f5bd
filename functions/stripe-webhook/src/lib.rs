//! `POST /webhooks/stripe`: authenticated by `Stripe-Signature` (any configured
//! secret, any `v1`, within the tolerance), then recorded and applied. The
//! order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::{source, Services};

pub struct StripeWebhook {
    services: Services,
}

impl StripeWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        self.services
            .handle_webhook::<source::Stripe>(&request)
            .await
    }
}

impl HttpFunction for StripeWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(StripeWebhook::handle(self, request))
    }
}
