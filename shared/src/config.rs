//! Typed settings from the environment. Secrets are wrapped so they never print.

use std::fmt;
use std::time::Duration;

use crate::domain::{Email, PlanCatalog, PlanError};

/// A secret value. Debug and Display print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {0} is required")]
    Missing(&'static str),
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("plans: {0}")]
    Plans(#[from] PlanError),
}

/// The plans shipped with the code; `PLANS_FILE` or `PLANS_JSON` override them.
pub const EMBEDDED_PLANS: &str = include_str!("../../infra/plans.json");

#[derive(Debug, Clone)]
pub struct Settings {
    pub table_name: String,
    /// Queue URL when known (the cloud passes it); otherwise resolved from the name.
    pub email_queue_url: Option<String>,
    pub email_queue_name: Option<String>,
    pub kajabi_webhook_secret: Option<Secret>,
    pub kajabi_url_tokens: Vec<Secret>,
    /// Stripe endpoint secrets; several during rotation.
    pub stripe_webhook_secrets: Vec<Secret>,
    pub stripe_tolerance_secs: i64,
    /// Stripe API, for reading a one-time checkout's line items.
    pub stripe_api_base: String,
    pub stripe_secret_key: Option<Secret>,
    /// Paystack's secret key: signs its webhooks and authorizes its API.
    pub paystack_secret_key: Option<Secret>,
    pub paystack_api_base: String,
    /// Kajabi's v1 API (OAuth client credentials), for admin verify and sync.
    pub kajabi_api_base: String,
    pub kajabi_client_id: Option<String>,
    pub kajabi_client_secret: Option<Secret>,
    /// Confirm each `charge.success` through `GET /transaction/verify/:reference`.
    pub paystack_verify_charges: bool,
    /// Per-attempt timeout and attempts for provider API calls.
    pub provider_timeout: Duration,
    pub provider_max_attempts: u32,
    /// How long a past-due subscription keeps access.
    pub past_due_grace: Duration,
    /// Server key that derives setup tokens from job ids (the raw token is never stored).
    pub token_signing_key: Secret,
    pub from_email: Email,
    pub admin_email: Email,
    pub frontend_url: String,
    pub plans: PlanCatalog,
    pub resend_per_address_per_hour: u32,
    pub resend_global_per_minute: u32,
    pub outbox_sweep_after: Duration,
    pub setup_token_ttl: Duration,
    /// `kid:seed` pairs, oldest first (see `session`); only the account functions need them.
    pub session_signing_keys: Option<Secret>,
    /// The key that signs new sessions, when not the newest (publish-first rotation).
    pub session_signing_kid: Option<String>,
    pub session_issuer: String,
    pub session_audience: String,
    pub session_ttl: Duration,
    /// Where the setup page sends a member once signed in.
    pub app_url: String,
    /// Failed logins allowed per address, and per source IP, in one window.
    pub login_failures_per_address: u32,
    pub login_failures_per_ip: u32,
    pub login_window: Duration,
    /// IAM user and role ARNs allowed to call the admin API.
    pub admin_principals: crate::admin::AdminPrincipals,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A comma-separated list of secrets (rotation).
fn secret_list(name: &'static str) -> Vec<Secret> {
    var(name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Secret::new)
                .collect()
        })
        .unwrap_or_default()
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

fn number(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: "not a whole number".into(),
        }),
    }
}

fn email(name: &'static str) -> Result<Email, ConfigError> {
    Email::parse(&required(name)?).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let plans_json = match (var("PLANS_JSON"), var("PLANS_FILE")) {
            (Some(json), _) => json,
            (None, Some(path)) => {
                std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                    name: "PLANS_FILE",
                    reason: e.to_string(),
                })?
            }
            (None, None) => EMBEDDED_PLANS.to_string(),
        };
        let token_signing_key = Secret::new(required("TOKEN_SIGNING_KEY")?);
        let frontend_url = required("FRONTEND_URL")?.trim_end_matches('/').to_string();
        if token_signing_key.expose().len() < 32 {
            return Err(ConfigError::Invalid {
                name: "TOKEN_SIGNING_KEY",
                reason: "must be at least 32 characters".into(),
            });
        }
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            email_queue_url: var("EMAIL_QUEUE_URL"),
            email_queue_name: var("EMAIL_QUEUE_NAME"),
            kajabi_webhook_secret: var("KAJABI_WEBHOOK_SECRET").map(Secret::new),
            kajabi_url_tokens: secret_list("KAJABI_URL_TOKENS"),
            stripe_webhook_secrets: secret_list("STRIPE_WEBHOOK_SECRETS"),
            stripe_tolerance_secs: number("STRIPE_TOLERANCE_SECS", 300)? as i64,
            stripe_api_base: var("STRIPE_API_BASE")
                .unwrap_or_else(|| "https://api.stripe.com".into()),
            stripe_secret_key: var("STRIPE_SECRET_KEY").map(Secret::new),
            paystack_secret_key: var("PAYSTACK_SECRET_KEY").map(Secret::new),
            paystack_api_base: var("PAYSTACK_API_BASE")
                .unwrap_or_else(|| "https://api.paystack.co".into()),
            kajabi_api_base: var("KAJABI_API_BASE")
                .unwrap_or_else(|| "https://api.kajabi.com".into()),
            kajabi_client_id: var("KAJABI_CLIENT_ID"),
            kajabi_client_secret: var("KAJABI_CLIENT_SECRET").map(Secret::new),
            paystack_verify_charges: !matches!(
                var("PAYSTACK_VERIFY_CHARGES").as_deref(),
                Some("false") | Some("0") | Some("no")
            ),
            provider_timeout: Duration::from_millis(number("PROVIDER_TIMEOUT_MS", 5000)?),
            provider_max_attempts: number("PROVIDER_MAX_ATTEMPTS", 3)? as u32,
            past_due_grace: Duration::from_secs(number("PAST_DUE_GRACE_DAYS", 7)? * 86_400),
            token_signing_key,
            from_email: email("FROM_EMAIL")?,
            admin_email: email("ADMIN_EMAIL")?,
            session_signing_keys: var("SESSION_SIGNING_KEYS").map(Secret::new),
            session_signing_kid: var("SESSION_SIGNING_KID"),
            session_issuer: var("SESSION_ISSUER").unwrap_or_else(|| frontend_url.clone()),
            session_audience: var("SESSION_AUDIENCE").unwrap_or_else(|| "gatehouse-members".into()),
            session_ttl: Duration::from_secs(number("SESSION_TTL_SECS", 3600)?),
            app_url: var("APP_URL").unwrap_or_else(|| frontend_url.clone()),
            login_failures_per_address: number("LOGIN_FAILURES_PER_ADDRESS", 5)? as u32,
            login_failures_per_ip: number("LOGIN_FAILURES_PER_IP", 20)? as u32,
            login_window: Duration::from_secs(number("LOGIN_WINDOW_SECS", 900)?.max(1)),
            admin_principals: crate::admin::AdminPrincipals::parse(
                &var("ADMIN_PRINCIPALS").unwrap_or_default(),
            )
            .map_err(|e| ConfigError::Invalid {
                name: "ADMIN_PRINCIPALS",
                reason: e.to_string(),
            })?,
            frontend_url,
            plans: PlanCatalog::from_json(&plans_json)?,
            resend_per_address_per_hour: number("RESEND_PER_ADDRESS_PER_HOUR", 3)? as u32,
            resend_global_per_minute: number("RESEND_GLOBAL_PER_MINUTE", 60)? as u32,
            outbox_sweep_after: Duration::from_secs(number("OUTBOX_SWEEP_AFTER_SECS", 900)?),
            setup_token_ttl: Duration::from_secs(number("SETUP_TOKEN_TTL_SECS", 24 * 3600)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-super-secret");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }

    #[test]
    fn embedded_plans_parse() {
        assert!(PlanCatalog::from_json(EMBEDDED_PLANS).is_ok());
    }
}
