use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A provider that calls Gatehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Kajabi,
    Stripe,
    Paystack,
    Admin,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kajabi => "kajabi",
            Provider::Stripe => "stripe",
            Provider::Paystack => "paystack",
            Provider::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "kajabi" => Some(Provider::Kajabi),
            "stripe" => Some(Provider::Stripe),
            "paystack" => Some(Provider::Paystack),
            "admin" => Some(Provider::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Time-ordered random id: 12 hex digits of milliseconds then 16 of randomness.
/// Sortable by creation time, which keeps listings and logs readable.
fn time_ordered_id(prefix: &str, now_millis: i64) -> String {
    let mut random = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut random);
    format!(
        "{prefix}{:012x}{}",
        now_millis.max(0) as u64 & 0xffff_ffff_ffff,
        hex::encode(random)
    )
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn generate(now_millis: i64) -> Self {
        Self(time_ordered_id("usr_", now_millis))
    }
    /// Wraps an id read back from the store.
    pub fn from_stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    pub fn generate(now_millis: i64) -> Self {
        Self(time_ordered_id("job_", now_millis))
    }
    pub fn from_stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity of one provider event: provider + the provider's event id,
/// or `sha256:<hex>` of the body where the provider sends no id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventKey {
    provider: Provider,
    event_id: String,
}

impl EventKey {
    pub fn new(provider: Provider, event_id: impl Into<String>) -> Self {
        Self {
            provider,
            event_id: event_id.into(),
        }
    }

    pub fn from_body_hash(provider: Provider, body: &[u8]) -> Self {
        Self::new(
            provider,
            format!("sha256:{}", hex::encode(Sha256::digest(body))),
        )
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn event_id(&self) -> &str {
        &self.event_id
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let earlier = UserId::generate(1_000);
        let later = UserId::generate(2_000);
        assert!(earlier < later);
        assert_ne!(JobId::generate(5), JobId::generate(5));
    }

    #[test]
    fn event_key_from_body_hash_is_stable() {
        let a = EventKey::from_body_hash(Provider::Kajabi, b"{}");
        let b = EventKey::from_body_hash(Provider::Kajabi, b"{}");
        assert_eq!(a, b);
        assert!(a.to_string().starts_with("kajabi:sha256:"));
    }

    #[test]
    fn provider_round_trips() {
        for p in [
            Provider::Kajabi,
            Provider::Stripe,
            Provider::Paystack,
            Provider::Admin,
        ] {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert_eq!(Provider::parse("paypal"), None);
    }
}
