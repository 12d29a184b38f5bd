//! The three webhook sources behind one shape: authenticate the raw request,
//! parse the JSON into the provider's event, name its key and type, and apply
//! it through the provider's rules (which use the runner). The functions,
//! replay and the waiting events all go through `WebhookSource`, so none of
//! them switches on the provider by hand beyond picking the source.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::config::Settings;
use crate::domain::Provider;
use crate::http::{ApiRequest, ApiResponse};
use crate::providers::{kajabi, paystack, stripe};

pub trait WebhookSource {
    const PROVIDER: Provider;
    type Event: Send + Sync;

    /// Checks the request's credentials, naming the failed check.
    fn authenticate(
        settings: &Settings,
        request: &ApiRequest,
        now: DateTime<Utc>,
    ) -> Result<(), String>;

    /// Parses any JSON into the provider's event; never fails (what cannot
    /// be acted on becomes an unsupported event, recorded as such).
    fn parse(json: &Value) -> Self::Event;

    /// The provider's event id, and the type recorded with the event.
    fn identify(event: &Self::Event) -> (Option<String>, String);

    /// Applies the event by the provider's rules.
    fn process<'a>(
        services: &'a Services,
        delivery: &'a Delivery,
        event: &'a Self::Event,
    ) -> impl Future<Output = Result<WebhookOutcome, ServiceError>> + Send + 'a;
}

pub struct Kajabi;
pub struct Stripe;
pub struct Paystack;

impl WebhookSource for Kajabi {
    const PROVIDER: Provider = Provider::Kajabi;
    type Event = kajabi::KajabiEvent;

    fn authenticate(
        settings: &Settings,
        request: &ApiRequest,
        _: DateTime<Utc>,
    ) -> Result<(), String> {
        kajabi::authenticate(
            request.header(kajabi::SIGNATURE_HEADER),
            &request.query_values(kajabi::TOKEN_QUERY_PARAM),
            &request.body,
            settings.kajabi_webhook_secret.as_ref(),
            &settings.kajabi_url_tokens,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn parse(json: &Value) -> Self::Event {
        kajabi::KajabiEvent::from_json(json)
    }

    fn identify(event: &Self::Event) -> (Option<String>, String) {
        (event.event_id.clone(), event.event_type.clone())
    }

    fn process<'a>(
        services: &'a Services,
        delivery: &'a Delivery,
        event: &'a Self::Event,
    ) -> impl Future<Output = Result<WebhookOutcome, ServiceError>> + Send + 'a {
        services.process_kajabi(delivery, event)
    }
}

impl WebhookSource for Stripe {
    const PROVIDER: Provider = Provider::Stripe;
    type Event = stripe::StripeEvent;

    fn authenticate(
        settings: &Settings,
        request: &ApiRequest,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        stripe::verify(
            request.header(stripe::SIGNATURE_HEADER),
            &request.body,
            &settings.stripe_webhook_secrets,
            settings.stripe_tolerance_secs,
            now.timestamp(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn parse(json: &Value) -> Self::Event {
        stripe::StripeEvent::from_json(json)
    }

    fn identify(event: &Self::Event) -> (Option<String>, String) {
        (event.key_id(), event.event_type.clone())
    }

    fn process<'a>(
        services: &'a Services,
        delivery: &'a Delivery,
        event: &'a Self::Event,
    ) -> impl Future<Output = Result<WebhookOutcome, ServiceError>> + Send + 'a {
        services.process_stripe(delivery, event)
    }
}

impl WebhookSource for Paystack {
    const PROVIDER: Provider = Provider::Paystack;
    type Event = paystack::PaystackEvent;

    fn authenticate(
        settings: &Settings,
        request: &ApiRequest,
        _: DateTime<Utc>,
    ) -> Result<(), String> {
        paystack::authenticate(
            request.header(paystack::SIGNATURE_HEADER),
            &request.body,
            settings.paystack_secret_key.as_ref(),
        )
        .map_err(|e| e.to_string())
    }

    fn parse(json: &Value) -> Self::Event {
        paystack::PaystackEvent::from_json(json)
    }

    /// Keyed by the event name plus `data.id` or `data.reference`; else the body hash.
    fn identify(event: &Self::Event) -> (Option<String>, String) {
        (event.key_id(), event.event.clone())
    }

    fn process<'a>(
        services: &'a Services,
        delivery: &'a Delivery,
        event: &'a Self::Event,
    ) -> impl Future<Output = Result<WebhookOutcome, ServiceError>> + Send + 'a {
        services.process_paystack(delivery, event)
    }
}

impl Services {
    /// A webhook function's whole handler: the shared checks
    /// (`receive_webhook`), the source's parse and key, its rules, the answer.
    pub async fn handle_webhook<S: WebhookSource>(&self, request: &ApiRequest) -> ApiResponse {
        let settings = &self.settings;
        let authenticate = |request: &ApiRequest, now| S::authenticate(settings, request, now);
        let (json, received_at) = match self
            .receive_webhook(S::PROVIDER, request, authenticate)
            .await
        {
            Ok(framed) => framed,
            Err(rejection) => return rejection,
        };
        let event = S::parse(&json);
        let (event_id, event_type) = S::identify(&event);
        let delivery = Delivery::new(
            S::PROVIDER,
            event_id,
            event_type,
            &request.body,
            received_at,
        );
        let result = S::process(self, &delivery, &event).await;
        self.webhook_response(request, &delivery, result)
    }

    /// Runs a stored delivery of `S` again through its rules.
    pub(crate) async fn reprocess_as<S: WebhookSource>(
        &self,
        delivery: &Delivery,
    ) -> Result<WebhookOutcome, ServiceError> {
        let json: Value = serde_json::from_slice(&delivery.body).unwrap_or(Value::Null);
        S::process(self, delivery, &S::parse(&json)).await
    }
}
