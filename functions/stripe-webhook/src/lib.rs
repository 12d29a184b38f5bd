//! `POST /webhooks/stripe`. The same order of checks as every webhook: size
//! (413), `Stripe-Signature` (401, naming the failed check), content type (415),
//! JSON framing (400). Every authenticated delivery is recorded.

use gatehouse::domain::Provider;
use gatehouse::http::{reject, ApiRequest, ApiResponse, MAX_BODY_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::providers::stripe::{self, StripeEvent, SIGNATURE_HEADER};
use gatehouse::service::webhook::Delivery;
use gatehouse::service::Services;
use gatehouse::store::EventStatus;

pub struct StripeWebhook {
    services: Services,
}

impl StripeWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        if request.body.len() > MAX_BODY_BYTES {
            return reject::too_large(request.body.len());
        }
        let settings = &self.services.settings;
        let received_at = self.services.now();
        if let Err(e) = stripe::verify(
            request.header(SIGNATURE_HEADER),
            &request.body,
            &settings.stripe_webhook_secrets,
            settings.stripe_tolerance_secs,
            received_at.timestamp(),
        ) {
            tracing::warn!(request_id = %request.request_id, outcome = "unauthorized", check = %e, "webhook rejected");
            return reject::unauthorized(e.to_string());
        }
        if !request.has_json_content_type() {
            let delivery = Delivery::new(
                Provider::Stripe,
                None,
                "unknown",
                &request.body,
                received_at,
            );
            let reason = format!(
                "unsupported content type {}",
                request.header("content-type").unwrap_or("(none)")
            );
            return self
                .record_rejection(
                    &delivery,
                    reason,
                    reject::unsupported_media_type(request.header("content-type")),
                )
                .await;
        }
        let json: serde_json::Value = match serde_json::from_slice(&request.body) {
            Ok(json) => json,
            Err(e) => {
                let delivery = Delivery::new(
                    Provider::Stripe,
                    None,
                    "unknown",
                    &request.body,
                    received_at,
                );
                return self
                    .record_rejection(
                        &delivery,
                        format!("invalid JSON: {e}"),
                        reject::invalid_json(&e),
                    )
                    .await;
            }
        };
        let event = StripeEvent::from_json(&json);
        let delivery = Delivery::new(
            Provider::Stripe,
            event.id.clone(),
            event.event_type.clone(),
            &request.body,
            received_at,
        );
        match self.services.process_stripe(&delivery, &event).await {
            Ok(outcome) => ApiResponse::json(200, &outcome.to_json()),
            Err(e) => {
                tracing::error!(request_id = %request.request_id, event_key = %delivery.key, outcome = "error", error = %e, "webhook not processed");
                reject::unavailable(
                    "storage or queue is unavailable; the event was not applied and can be retried",
                )
            }
        }
    }

    async fn record_rejection(
        &self,
        delivery: &Delivery,
        reason: String,
        response: ApiResponse,
    ) -> ApiResponse {
        match self
            .services
            .record_terminal(delivery, EventStatus::Failed, Some(reason), None)
            .await
        {
            Ok(_) => response,
            Err(e) => {
                tracing::error!(event_key = %delivery.key, error = %e, "could not record rejected delivery");
                reject::unavailable("could not record the delivery; retry later")
            }
        }
    }
}

impl HttpFunction for StripeWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(StripeWebhook::handle(self, request))
    }
}
