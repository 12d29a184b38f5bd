//! `POST /webhooks/kajabi`. Checks run in a fixed order: size (413),
//! authentication (401), content type (415), JSON framing (400). Every
//! authenticated delivery is recorded, including ones that fail those later checks.

use gatehouse::domain::Provider;
use gatehouse::http::{reject, ApiRequest, ApiResponse, MAX_BODY_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::providers::kajabi::{self, KajabiEvent, SIGNATURE_HEADER, TOKEN_QUERY_PARAM};
use gatehouse::service::webhook::{Delivery, WebhookOutcome};
use gatehouse::service::Services;
use gatehouse::store::EventStatus;

pub struct KajabiWebhook {
    services: Services,
}

impl KajabiWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        if request.body.len() > MAX_BODY_BYTES {
            return reject::too_large(request.body.len());
        }
        let settings = &self.services.settings;
        let tokens = request.query_values(TOKEN_QUERY_PARAM);
        if let Err(e) = kajabi::authenticate(
            request.header(SIGNATURE_HEADER),
            &tokens,
            &request.body,
            settings.kajabi_webhook_secret.as_ref(),
            &settings.kajabi_url_tokens,
        ) {
            tracing::warn!(request_id = %request.request_id, outcome = "unauthorized", check = %e, "webhook rejected");
            return reject::unauthorized(e.to_string());
        }
        let received_at = self.services.now();

        if !request.has_json_content_type() {
            let delivery = Delivery::new(
                Provider::Kajabi,
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
                    Provider::Kajabi,
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
        let event = KajabiEvent::from_json(&json);
        let delivery = Delivery::new(
            Provider::Kajabi,
            event.event_id.clone(),
            event.event_type.clone(),
            &request.body,
            received_at,
        );
        match self.services.process_kajabi(&delivery, &event).await {
            Ok(outcome) => respond(&outcome),
            Err(e) => {
                tracing::error!(request_id = %request.request_id, event_key = %delivery.key, outcome = "error", error = %e, "webhook not processed");
                reject::unavailable(
                    "storage or queue is unavailable; the event was not applied and can be retried",
                )
            }
        }
    }

    /// Records an authenticated delivery that fails framing checks, then answers with the 4xx.
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

fn respond(outcome: &WebhookOutcome) -> ApiResponse {
    ApiResponse::json(200, &outcome.to_json())
}

impl HttpFunction for KajabiWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(KajabiWebhook::handle(self, request))
    }
}
