//! Services: the use cases each function calls. They take domain values and
//! return outcomes; they know DynamoDB/SQS/SES only through `store` and `outbox`.

pub mod account;
pub mod admin;
pub mod admin_change;
pub mod admin_sync;
pub mod expiry;
pub mod kajabi;
pub mod paystack;
pub mod pending;
mod provision;
mod rows;
mod runner;
pub mod sender;
pub mod session;
pub mod source;
pub mod stripe;
pub mod sweeper;
pub mod webhook;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::AwsClients;
use crate::config::Settings;
use crate::outbox::{Outbox, OutboxError};
use crate::store::StoreError;

/// The clock is injected so expiry rules are testable.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A provider's API could not answer (transient: the caller answers 5xx,
    /// so the provider's retry comes back), or its client could not be built.
    #[error(transparent)]
    ProviderApi(#[from] crate::providers::api::ApiError),
    #[error("gave up after repeated transaction conflicts")]
    Contention,
    #[error("{0}")]
    Internal(String),
}

/// Everything a function needs, built once per cold start.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: crate::store::Store,
    pub outbox: Outbox,
    pub ses: aws_sdk_sesv2::Client,
    pub clock: Clock,
    /// Present when `STRIPE_SECRET_KEY` is set.
    pub stripe_api: Option<crate::providers::api::StripeApi>,
    /// Present when `PAYSTACK_SECRET_KEY` is set.
    pub paystack_api: Option<crate::providers::api::PaystackApi>,
    /// Present when `KAJABI_CLIENT_ID` and `KAJABI_CLIENT_SECRET` are set.
    pub kajabi_api: Option<crate::providers::api::KajabiApi>,
    /// Present when `SESSION_SIGNING_KEYS` is set; malformed keys fail the cold start.
    pub sessions: Option<Arc<crate::session::SessionKeys>>,
}

impl Services {
    pub async fn new(settings: Settings, clients: &AwsClients) -> Result<Self, ServiceError> {
        let outbox = Outbox::connect(
            clients.sqs.clone(),
            settings.email_queue_url.as_deref(),
            settings.email_queue_name.as_deref(),
        )
        .await?;
        let stripe_api = match &settings.stripe_secret_key {
            Some(key) => Some(crate::providers::api::StripeApi::new(
                crate::providers::api::ApiClient::new(
                    "stripe",
                    &settings.stripe_api_base,
                    key.clone(),
                    settings.provider_timeout,
                    settings.provider_max_attempts,
                )?,
            )),
            None => None,
        };
        let paystack_api = match &settings.paystack_secret_key {
            Some(key) => Some(crate::providers::api::PaystackApi::new(
                crate::providers::api::ApiClient::new(
                    "paystack",
                    &settings.paystack_api_base,
                    key.clone(),
                    settings.provider_timeout,
                    settings.provider_max_attempts,
                )?,
            )),
            None => None,
        };
        let kajabi_api = match (&settings.kajabi_client_id, &settings.kajabi_client_secret) {
            (Some(id), Some(secret)) => Some(crate::providers::api::KajabiApi::new(
                crate::providers::api::ApiClient::new(
                    "kajabi",
                    &settings.kajabi_api_base,
                    secret.clone(),
                    settings.provider_timeout,
                    settings.provider_max_attempts,
                )?,
                id.clone(),
            )),
            _ => None,
        };
        let sessions = match &settings.session_signing_keys {
            Some(raw) => Some(Arc::new(
                crate::session::SessionKeys::parse(
                    raw,
                    settings.session_issuer.clone(),
                    settings.session_audience.clone(),
                    chrono::Duration::seconds(settings.session_ttl.as_secs() as i64),
                )
                .and_then(|keys| match &settings.session_signing_kid {
                    Some(kid) => keys.signing_with(kid),
                    None => Ok(keys),
                })
                .map_err(|e| ServiceError::Internal(format!("SESSION_SIGNING_KEYS: {e}")))?,
            )),
            None => None,
        };
        Ok(Self {
            kajabi_api,
            sessions,
            stripe_api,
            paystack_api,
            store: crate::store::Store::new(clients.dynamodb.clone(), settings.table_name.clone()),
            settings: Arc::new(settings),
            outbox,
            ses: clients.ses.clone(),
            clock: system_clock(),
        })
    }

    /// The same services over other AWS clients: the local stack gives each
    /// function its own, so that each is held to its own policy.
    pub fn with_clients(&self, clients: &AwsClients) -> Self {
        let mut services = self.clone();
        services.store = crate::store::Store::new(clients.dynamodb.clone(), self.store.table());
        services.outbox = Outbox::new(clients.sqs.clone(), self.outbox.queue_url());
        services.ses = clients.ses.clone();
        services
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

impl Services {
    /// Settings and AWS clients from the environment, as every Lambda starts:
    /// the secrets it names are read from Secrets Manager first, all at once.
    pub async fn from_env() -> Result<Self, lambda_runtime::Error> {
        let clients = AwsClients::from_env().await;
        let secrets = crate::secrets::fetch(&clients.secrets, &crate::config::env_var).await?;
        let settings = Settings::from_lookup(&|name| {
            secrets
                .get(name)
                .cloned()
                .or_else(|| crate::config::env_var(name))
        })?;
        Ok(Self::new(settings, &clients).await?)
    }
}
