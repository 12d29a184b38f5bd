//! Typed settings from the environment. Secrets are wrapped so they never print.

use std::time::Duration;

use crate::domain::{CourseCatalog, CourseError, Email, PlanCatalog, PlanError};

pub use crate::domain::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {0} is required")]
    Missing(&'static str),
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("plans: {0}")]
    Plans(#[from] PlanError),
    #[error("courses: {0}")]
    Courses(#[from] CourseError),
}

/// The plans shipped with the code; `PLANS_FILE` or `PLANS_JSON` override them.
pub const EMBEDDED_PLANS: &str = include_str!("../../infra/plans.json");

/// The courses shipped with the code; `COURSES_FILE` or `COURSES_JSON` override them.
pub const EMBEDDED_COURSES: &str = include_str!("../../infra/courses.json");

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
    /// Checkout is open (`PAYMENTS_ENABLED`, on unless `false`).
    pub payments_enabled: bool,
    /// Confirm each `charge.success` through `GET /transaction/verify/:reference`.
    pub paystack_verify_charges: bool,
    /// Confirm each Kajabi purchase through Kajabi's API before it grants
    /// access (`KAJABI_VERIFY_PURCHASES`): Kajabi's native hooks are
    /// unsigned, and the URL token is otherwise the only proof.
    pub kajabi_verify_purchases: bool,
    /// Per-attempt timeout and attempts for provider API calls.
    pub provider_timeout: Duration,
    pub provider_max_attempts: u32,
    /// How long a past-due subscription keeps access.
    pub past_due_grace: Duration,
    /// Server key that derives setup tokens from job ids (the raw token is never
    /// stored). Only the functions that write or send setup links have it.
    pub token_signing_key: Option<Secret>,
    pub from_email: Email,
    pub admin_email: Email,
    pub frontend_url: String,
    pub plans: PlanCatalog,
    /// Courses whose completion form awards points.
    pub courses: CourseCatalog,
    pub resend_per_address_per_hour: u32,
    pub resend_global_per_minute: u32,
    pub outbox_sweep_after: Duration,
    pub setup_token_ttl: Duration,
    /// `kid:seed` pairs, oldest first (see `session`); only the account functions need them.
    pub session_signing_keys: Option<Secret>,
    /// The key that signs new sessions, when not the newest (publish-first rotation).
    pub session_signing_kid: Option<String>,
    /// `kid:x,…`: the public halves, for functions that only verify or
    /// publish sessions. Not a secret.
    pub session_public_keys: Option<String>,
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

/// The settings that are secrets. In AWS each comes from Secrets Manager
/// (`secrets::fetch`), never from the function's environment.
pub const SECRET_SETTINGS: [&str; 8] = [
    "KAJABI_WEBHOOK_SECRET",
    "KAJABI_URL_TOKENS",
    "STRIPE_WEBHOOK_SECRETS",
    "STRIPE_SECRET_KEY",
    "PAYSTACK_SECRET_KEY",
    "KAJABI_CLIENT_SECRET",
    "TOKEN_SIGNING_KEY",
    "SESSION_SIGNING_KEYS",
];

/// Where settings are read from: a name to its value, empty counting as unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn var(get: Lookup, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// A comma-separated list of secrets (rotation).
fn secret_list(get: Lookup, name: &str) -> Vec<Secret> {
    var(get, name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Secret::new)
                .collect()
        })
        .unwrap_or_default()
}

fn required(get: Lookup, name: &'static str) -> Result<String, ConfigError> {
    var(get, name).ok_or(ConfigError::Missing(name))
}

fn number(get: Lookup, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(get, name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: "not a whole number".into(),
        }),
    }
}

fn email(get: Lookup, name: &'static str) -> Result<Email, ConfigError> {
    Email::parse(&required(get, name)?).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

fn token_signing_key(raw: String) -> Result<Secret, ConfigError> {
    if raw.len() < 32 {
        return Err(ConfigError::Invalid {
            name: "TOKEN_SIGNING_KEY",
            reason: "must be at least 32 characters".into(),
        });
    }
    Ok(Secret::new(raw))
}

/// A catalog's JSON: inline, from a file, or the one shipped with the code.
fn file_or_json(
    get: Lookup,
    json: &'static str,
    file: &'static str,
    embedded: &str,
) -> Result<String, ConfigError> {
    match (var(get, json), var(get, file)) {
        (Some(json), _) => Ok(json),
        (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
            name: file,
            reason: e.to_string(),
        }),
        (None, None) => Ok(embedded.to_string()),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env_var)
    }

    /// Settings from `get`: the environment, with the secrets read from
    /// Secrets Manager in front of it.
    pub fn from_lookup(get: Lookup) -> Result<Self, ConfigError> {
        let plans_json = file_or_json(get, "PLANS_JSON", "PLANS_FILE", EMBEDDED_PLANS)?;
        let courses_json = file_or_json(get, "COURSES_JSON", "COURSES_FILE", EMBEDDED_COURSES)?;
        let frontend_url = required(get, "FRONTEND_URL")?
            .trim_end_matches('/')
            .to_string();
        let mut settings = Self {
            table_name: required(get, "TABLE_NAME")?,
            email_queue_url: var(get, "EMAIL_QUEUE_URL"),
            email_queue_name: var(get, "EMAIL_QUEUE_NAME"),
            kajabi_webhook_secret: None,
            kajabi_url_tokens: Vec::new(),
            stripe_webhook_secrets: Vec::new(),
            stripe_tolerance_secs: number(get, "STRIPE_TOLERANCE_SECS", 300)? as i64,
            stripe_api_base: var(get, "STRIPE_API_BASE")
                .unwrap_or_else(|| "https://api.stripe.com".into()),
            stripe_secret_key: None,
            paystack_secret_key: None,
            paystack_api_base: var(get, "PAYSTACK_API_BASE")
                .unwrap_or_else(|| "https://api.paystack.co".into()),
            kajabi_api_base: var(get, "KAJABI_API_BASE")
                .unwrap_or_else(|| "https://api.kajabi.com".into()),
            kajabi_client_id: var(get, "KAJABI_CLIENT_ID"),
            kajabi_client_secret: None,
            kajabi_verify_purchases: matches!(
                var(get, "KAJABI_VERIFY_PURCHASES").as_deref(),
                Some("true") | Some("1") | Some("yes")
            ),
            payments_enabled: !matches!(
                var(get, "PAYMENTS_ENABLED").as_deref(),
                Some("false") | Some("0") | Some("no")
            ),
            paystack_verify_charges: !matches!(
                var(get, "PAYSTACK_VERIFY_CHARGES").as_deref(),
                Some("false") | Some("0") | Some("no")
            ),
            provider_timeout: Duration::from_millis(number(get, "PROVIDER_TIMEOUT_MS", 5000)?),
            provider_max_attempts: number(get, "PROVIDER_MAX_ATTEMPTS", 3)? as u32,
            past_due_grace: Duration::from_secs(number(get, "PAST_DUE_GRACE_DAYS", 7)? * 86_400),
            token_signing_key: None,
            from_email: email(get, "FROM_EMAIL")?,
            admin_email: email(get, "ADMIN_EMAIL")?,
            session_signing_keys: None,
            session_signing_kid: var(get, "SESSION_SIGNING_KID"),
            session_public_keys: var(get, "SESSION_PUBLIC_KEYS"),
            session_issuer: var(get, "SESSION_ISSUER").unwrap_or_else(|| frontend_url.clone()),
            session_audience: var(get, "SESSION_AUDIENCE")
                .unwrap_or_else(|| "gatehouse-members".into()),
            session_ttl: Duration::from_secs(number(get, "SESSION_TTL_SECS", 3600)?),
            app_url: var(get, "APP_URL").unwrap_or_else(|| frontend_url.clone()),
            login_failures_per_address: number(get, "LOGIN_FAILURES_PER_ADDRESS", 5)? as u32,
            login_failures_per_ip: number(get, "LOGIN_FAILURES_PER_IP", 20)? as u32,
            login_window: Duration::from_secs(number(get, "LOGIN_WINDOW_SECS", 900)?.max(1)),
            admin_principals: crate::admin::AdminPrincipals::parse(
                &var(get, "ADMIN_PRINCIPALS").unwrap_or_default(),
            )
            .map_err(|e| ConfigError::Invalid {
                name: "ADMIN_PRINCIPALS",
                reason: e.to_string(),
            })?,
            frontend_url,
            plans: PlanCatalog::from_json(&plans_json)?,
            courses: CourseCatalog::from_json(&courses_json)?,
            resend_per_address_per_hour: number(get, "RESEND_PER_ADDRESS_PER_HOUR", 3)? as u32,
            resend_global_per_minute: number(get, "RESEND_GLOBAL_PER_MINUTE", 60)? as u32,
            outbox_sweep_after: Duration::from_secs(number(get, "OUTBOX_SWEEP_AFTER_SECS", 900)?),
            setup_token_ttl: Duration::from_secs(number(get, "SETUP_TOKEN_TTL_SECS", 24 * 3600)?),
        };
        settings.set_secrets(get)?;
        Ok(settings)
    }

    /// Sets every secret setting from `get`; one `get` does not give is cleared.
    pub fn set_secrets(&mut self, get: Lookup) -> Result<(), ConfigError> {
        self.kajabi_webhook_secret = var(get, "KAJABI_WEBHOOK_SECRET").map(Secret::new);
        self.kajabi_url_tokens = secret_list(get, "KAJABI_URL_TOKENS");
        self.stripe_webhook_secrets = secret_list(get, "STRIPE_WEBHOOK_SECRETS");
        self.stripe_secret_key = var(get, "STRIPE_SECRET_KEY").map(Secret::new);
        self.paystack_secret_key = var(get, "PAYSTACK_SECRET_KEY").map(Secret::new);
        self.kajabi_client_secret = var(get, "KAJABI_CLIENT_SECRET").map(Secret::new);
        self.session_signing_keys = var(get, "SESSION_SIGNING_KEYS").map(Secret::new);
        self.token_signing_key = var(get, "TOKEN_SIGNING_KEY")
            .map(token_signing_key)
            .transpose()?;
        Ok(())
    }

    /// The secret settings that are set, as their variables would hold them.
    pub fn secret_values(&self) -> Vec<(&'static str, String)> {
        let list = |secrets: &[Secret]| {
            secrets
                .iter()
                .map(Secret::expose)
                .collect::<Vec<_>>()
                .join(",")
        };
        let one = |secret: &Option<Secret>| {
            secret
                .as_ref()
                .map(|s| s.expose().to_string())
                .unwrap_or_default()
        };
        let values = [
            ("KAJABI_WEBHOOK_SECRET", one(&self.kajabi_webhook_secret)),
            ("KAJABI_URL_TOKENS", list(&self.kajabi_url_tokens)),
            ("STRIPE_WEBHOOK_SECRETS", list(&self.stripe_webhook_secrets)),
            ("STRIPE_SECRET_KEY", one(&self.stripe_secret_key)),
            ("PAYSTACK_SECRET_KEY", one(&self.paystack_secret_key)),
            ("KAJABI_CLIENT_SECRET", one(&self.kajabi_client_secret)),
            ("TOKEN_SIGNING_KEY", one(&self.token_signing_key)),
            ("SESSION_SIGNING_KEYS", one(&self.session_signing_keys)),
        ];
        values
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect()
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

    fn base(name: &str) -> Option<String> {
        match name {
            "TABLE_NAME" => Some("t".into()),
            "FROM_EMAIL" => Some("from@example.com".into()),
            "ADMIN_EMAIL" => Some("admin@example.com".into()),
            "FRONTEND_URL" => Some("https://app.example".into()),
            "TOKEN_SIGNING_KEY" => Some("k".repeat(32)),
            "STRIPE_WEBHOOK_SECRETS" => Some("whsec_a, whsec_b".into()),
            "PAYSTACK_SECRET_KEY" => Some("sk_test_p".into()),
            _ => None,
        }
    }

    #[test]
    fn secrets_come_out_as_they_went_in() {
        let settings = Settings::from_lookup(&base).unwrap();
        let values = settings.secret_values();
        assert_eq!(
            values,
            vec![
                ("STRIPE_WEBHOOK_SECRETS", "whsec_a,whsec_b".to_string()),
                ("PAYSTACK_SECRET_KEY", "sk_test_p".to_string()),
                ("TOKEN_SIGNING_KEY", "k".repeat(32)),
            ]
        );
        let mut cleared = settings.clone();
        cleared.set_secrets(&|_| None).unwrap();
        assert!(cleared.secret_values().is_empty());
    }

    /// Most functions derive no setup token and are not given the key.
    #[test]
    fn the_token_key_is_optional() {
        let without = |name: &str| match name {
            "TOKEN_SIGNING_KEY" => None,
            other => base(other),
        };
        assert!(Settings::from_lookup(&without)
            .unwrap()
            .token_signing_key
            .is_none());
    }

    #[test]
    fn a_short_token_key_is_refused() {
        let short = |name: &str| match name {
            "TOKEN_SIGNING_KEY" => Some("short".into()),
            other => base(other),
        };
        assert!(matches!(
            Settings::from_lookup(&short),
            Err(ConfigError::Invalid {
                name: "TOKEN_SIGNING_KEY",
                ..
            })
        ));
    }

    #[test]
    fn embedded_plans_parse() {
        assert!(PlanCatalog::from_json(EMBEDDED_PLANS).is_ok());
    }
}
