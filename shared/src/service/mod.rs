//! Services: the use cases each function calls. They take domain values and
//! return outcomes; they know DynamoDB/SQS/SES only through `store` and `outbox`.

pub mod account;
pub mod admin;
pub mod admin_change;
pub mod admin_sync;
pub mod checkout;
pub mod completion;
pub mod completion_review;
pub mod contacts;
pub mod expiry;
pub mod kajabi;
pub mod kajabi_hooks;
pub mod paystack;
pub mod pending;
mod provision;
mod rows;
mod runner;
pub mod self_service;
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

/// The session keys a function holds: the seeds where it signs (checked
/// against the published halves when it has them), else the public halves.
fn session_keys(settings: &Settings) -> Result<Option<crate::session::SessionKeys>, ServiceError> {
    use crate::session::SessionKeys;
    let ttl = chrono::Duration::seconds(settings.session_ttl.as_secs() as i64);
    let (issuer, audience) = (&settings.session_issuer, &settings.session_audience);
    let published = settings
        .session_public_keys
        .as_deref()
        .map(|raw| SessionKeys::parse_public(raw, issuer, audience, ttl))
        .transpose()
        .map_err(|e| ServiceError::Internal(format!("SESSION_PUBLIC_KEYS: {e}")))?;
    let Some(seeds) = &settings.session_signing_keys else {
        return Ok(published);
    };
    let signer = SessionKeys::parse(seeds, issuer, audience, ttl)
        .and_then(|keys| match &settings.session_signing_kid {
            Some(kid) => keys.signing_with(kid),
            None => Ok(keys),
        })
        .and_then(|keys| match &published {
            Some(published) => keys.check_published(published).map(|()| keys),
            None => Ok(keys),
        })
        .map_err(|e| ServiceError::Internal(format!("SESSION_SIGNING_KEYS: {e}")))?;
    Ok(Some(signer))
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
        let sessions = session_keys(&settings)?.map(Arc::new);
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8,k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    fn settings(seeds: Option<&str>, public: Option<&str>) -> Settings {
        let (seeds, public) = (seeds.map(str::to_string), public.map(str::to_string));
        Settings::from_lookup(&move |name: &str| match name {
            "TABLE_NAME" => Some("t".into()),
            "FROM_EMAIL" => Some("from@example.com".into()),
            "ADMIN_EMAIL" => Some("admin@example.com".into()),
            "FRONTEND_URL" => Some("https://app.example".into()),
            "SESSION_SIGNING_KEYS" => seeds.clone(),
            "SESSION_PUBLIC_KEYS" => public.clone(),
            _ => None,
        })
        .unwrap()
    }

    fn public_of(seeds: &str) -> String {
        let keys = crate::session::SessionKeys::parse(
            &crate::domain::Secret::new(seeds),
            "",
            "",
            chrono::Duration::hours(1),
        )
        .unwrap();
        keys.public_list()
    }

    #[test]
    fn a_function_with_only_the_public_halves_verifies_and_cannot_sign() {
        let keys = session_keys(&settings(None, Some(&public_of(SEEDS))))
            .unwrap()
            .unwrap();
        assert_eq!(keys.public_list(), public_of(SEEDS));
        assert!(session_keys(&settings(None, None)).unwrap().is_none());
    }

    #[test]
    fn a_signer_starts_only_if_its_signing_key_is_published() {
        assert!(session_keys(&settings(Some(SEEDS), Some(&public_of(SEEDS)))).is_ok());
        let stale = public_of(SEEDS.split(',').next().unwrap());
        let refused = session_keys(&settings(Some(SEEDS), Some(&stale)))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("`k2` is not in SESSION_PUBLIC_KEYS"),
            "{refused}"
        );
        let newest = SEEDS.split(',').nth(1).unwrap();
        let leaked_still_published = session_keys(&settings(Some(newest), Some(&public_of(SEEDS))))
            .unwrap_err()
            .to_string();
        assert!(
            leaked_still_published.contains("does not list exactly"),
            "{leaked_still_published}"
        );
        // Without a published list (local tools), the seeds alone still sign.
        assert!(session_keys(&settings(Some(SEEDS), None))
            .unwrap()
            .is_some());
    }
}
