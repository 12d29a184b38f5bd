//! `POST /webhooks/stripe`: authenticated by `Stripe-Signature` (any configured
//! secret, any `v1`, within the tolerance), then recorded and applied. The
//! order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::domain::Provider;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::providers::stripe::{self, StripeEvent, SIGNATURE_HEADER};
use gatehouse::service::webhook::Delivery;
use gatehouse::service::Services;

pub struct StripeWebhook {
    services: Services,
}

impl StripeWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let settings = &self.services.settings;
        let authenticate = |request: &ApiRequest, now: chrono::DateTime<chrono::Utc>| {
            stripe::verify(
                request.header(SIGNATURE_HEADER),
                &request.body,
                &settings.stripe_webhook_secrets,
                settings.stripe_tolerance_secs,
                now.timestamp(),
            )
            .map(|_| ())
        };
        let (json, received_at) = match self
            .services
            .receive_webhook(Provider::Stripe, &request, authenticate)
            .await
        {
            Ok(framed) => framed,
            Err(rejection) => return rejection,
        };
        let event = StripeEvent::from_json(&json);
        let delivery = Delivery::new(
            Provider::Stripe,
            event.id.clone(),
            event.event_type.clone(),
            &request.body,
            received_at,
        );
        let result = self.services.process_stripe(&delivery, &event).await;
        self.services.webhook_response(&request, &delivery, result)
    }
}

impl HttpFunction for StripeWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(StripeWebhook::handle(self, request))
    }
}
