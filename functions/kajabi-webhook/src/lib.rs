//! `POST /webhooks/kajabi`: authenticated by `X-Kajabi-Signature` or a secret
//! `?token=` (Kajabi's native hooks are unsigned), then recorded and applied.
//! The order of checks is the shared one (`Services::receive_webhook`).

use gatehouse::domain::Provider;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::providers::kajabi::{self, KajabiEvent, SIGNATURE_HEADER, TOKEN_QUERY_PARAM};
use gatehouse::service::webhook::Delivery;
use gatehouse::service::Services;

pub struct KajabiWebhook {
    services: Services,
}

impl KajabiWebhook {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let settings = &self.services.settings;
        let authenticate = |request: &ApiRequest, _now| {
            kajabi::authenticate(
                request.header(SIGNATURE_HEADER),
                &request.query_values(TOKEN_QUERY_PARAM),
                &request.body,
                settings.kajabi_webhook_secret.as_ref(),
                &settings.kajabi_url_tokens,
            )
            .map(|_| ())
        };
        let (json, received_at) = match self
            .services
            .receive_webhook(Provider::Kajabi, &request, authenticate)
            .await
        {
            Ok(framed) => framed,
            Err(rejection) => return rejection,
        };
        let event = KajabiEvent::from_json(&json);
        let delivery = Delivery::new(
            Provider::Kajabi,
            event.event_id.clone(),
            event.event_type.clone(),
            &request.body,
            received_at,
        );
        let result = self.services.process_kajabi(&delivery, &event).await;
        self.services.webhook_response(&request, &delivery, result)
    }
}

impl HttpFunction for KajabiWebhook {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(KajabiWebhook::handle(self, request))
    }
}
