//! `POST /webhooks/paystack`: authenticated by `X-Paystack-Signature` (hex
//! HMAC-SHA512 of the body with the secret key), then recorded and applied. The
//! order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::domain::Provider;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::providers::paystack::{self, PaystackEvent, SIGNATURE_HEADER};
use gatehouse::service::webhook::Delivery;
use gatehouse::service::Services;

pub struct PaystackWebhook {
    services: Services,
}

impl PaystackWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let secret = self.services.settings.paystack_secret_key.as_ref();
        let authenticate = |request: &ApiRequest, _now| {
            paystack::authenticate(request.header(SIGNATURE_HEADER), &request.body, secret)
        };
        let (json, received_at) = match self
            .services
            .receive_webhook(Provider::Paystack, &request, authenticate)
            .await
        {
            Ok(framed) => framed,
            Err(rejection) => return rejection,
        };
        let event = PaystackEvent::from_json(&json);
        // Keyed by the event name plus data.id or data.reference; else the body hash.
        let delivery = Delivery::new(
            Provider::Paystack,
            event.key_id(),
            event.event.clone(),
            &request.body,
            received_at,
        );
        let result = self.services.process_paystack(&delivery, &event).await;
        self.services.webhook_response(&request, &delivery, result)
    }
}

impl HttpFunction for PaystackWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(PaystackWebhook::handle(self, request))
    }
}
