//! Admin list parameters: filters, `limit` and the opaque `cursor`, parsed from
//! the query string. Anything unknown or malformed is a specific error (400).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::domain::{Email, EventKey, PlanCatalog, Provider, SubscriptionState, UserId};
use crate::store::admin::{index_key_names, IndexKey};
use crate::store::EventStatus;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("unknown parameter `{0}`; allowed: {1}")]
    UnknownParameter(String, &'static str),
    #[error("`limit` must be a whole number from 1 to {MAX_LIMIT}")]
    Limit,
    #[error("`cursor` is not one this endpoint issued")]
    Cursor,
    #[error("`cursor` belongs to a query with other filters; repeat that query's filters or start without a cursor")]
    CursorQuery,
    #[error("`{name}` {reason}")]
    Filter { name: &'static str, reason: String },
    #[error("`{0}` is given more than once")]
    Repeated(String),
}

fn filter_error(name: &'static str, reason: impl Into<String>) -> ListingError {
    ListingError::Filter {
        name,
        reason: reason.into(),
    }
}

/// An opaque position in an index listing: base64url of the start key's JSON,
/// plus the query it belongs to (`_q`), so it only resumes that query.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor(pub IndexKey);

const QUERY_FIELD: &str = "_q";

impl Cursor {
    pub fn encode(key: &IndexKey, query: &str) -> String {
        let mut map: std::collections::BTreeMap<&str, &str> = key
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        map.insert(QUERY_FIELD, query);
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&map).unwrap_or_default())
    }

    /// Accepts only a cursor of `query` holding exactly the keys of `index`.
    pub fn decode(raw: &str, index: &str, query: &str) -> Result<Self, ListingError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim())
            .map_err(|_| ListingError::Cursor)?;
        let mut map: HashMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|_| ListingError::Cursor)?;
        if map.remove(QUERY_FIELD).as_deref() != Some(query) {
            return Err(ListingError::CursorQuery);
        }
        let expected = index_key_names(index);
        if map.len() != expected.len() || !expected.iter().all(|k| map.contains_key(*k)) {
            return Err(ListingError::Cursor);
        }
        Ok(Self(IndexKey(map.into_iter().collect())))
    }
}

/// A short digest naming a query's filters.
fn fingerprint(parts: &[String]) -> String {
    crate::signature::sha256_hex(parts.join("\u{1f}").as_bytes())[..16].to_string()
}

/// The query string as `(name, value)` pairs, each name at most once and known.
fn params(
    pairs: Vec<(String, String)>,
    allowed: &[&str],
    allowed_text: &'static str,
) -> Result<HashMap<String, String>, ListingError> {
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(ListingError::UnknownParameter(k, allowed_text));
        }
        if out.insert(k.clone(), v).is_some() {
            return Err(ListingError::Repeated(k));
        }
    }
    Ok(out)
}

fn limit(raw: Option<&String>) -> Result<usize, ListingError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(ListingError::Limit),
    }
}

/// `GET /admin/users` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserQuery {
    pub subscription_status: Option<SubscriptionState>,
    pub plan: Option<String>,
    pub role: Option<String>,
    /// Users holding this permission now (the seed's premium-users list).
    pub permission: Option<String>,
    pub auth_provider: Option<Provider>,
    pub is_active: Option<bool>,
    pub email_prefix: Option<String>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

const USER_PARAMS: &str =
    "subscription_status, plan, role, permission, auth_provider, is_active, email_prefix, limit, cursor";

impl UserQuery {
    pub fn parse(
        pairs: Vec<(String, String)>,
        catalog: &PlanCatalog,
    ) -> Result<Self, ListingError> {
        let p = params(
            pairs,
            &[
                "subscription_status",
                "plan",
                "role",
                "permission",
                "auth_provider",
                "is_active",
                "email_prefix",
                "limit",
                "cursor",
            ],
            USER_PARAMS,
        )?;
        let subscription_status = p
            .get("subscription_status")
            .map(|v| {
                SubscriptionState::parse(v.trim()).ok_or_else(|| {
                    filter_error(
                        "subscription_status",
                        "must be one of active, trialing, past_due, canceled, expired, refunded, suspended",
                    )
                })
            })
            .transpose()?;
        let plan = p
            .get("plan")
            .map(|v| {
                catalog
                    .get(v.trim())
                    .map(|_| v.trim().to_string())
                    .ok_or_else(|| {
                        filter_error(
                            "plan",
                            format!("`{}` is not a plan in the plans file", v.trim()),
                        )
                    })
            })
            .transpose()?;
        let role = p
            .get("role")
            .map(|v| {
                catalog
                    .has_role(v.trim())
                    .then(|| v.trim().to_string())
                    .ok_or_else(|| {
                        filter_error(
                            "role",
                            format!("`{}` is not a role in the plans file", v.trim()),
                        )
                    })
            })
            .transpose()?;
        let permission = p
            .get("permission")
            .map(|v| {
                catalog
                    .has_permission(v.trim())
                    .then(|| v.trim().to_string())
                    .ok_or_else(|| {
                        filter_error(
                            "permission",
                            format!("no role in the plans file grants `{}`", v.trim()),
                        )
                    })
            })
            .transpose()?;
        let auth_provider = payment_provider(&p, "auth_provider")?;
        let is_active = p
            .get("is_active")
            .map(|v| match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(filter_error("is_active", "must be true or false")),
            })
            .transpose()?;
        let email_prefix = p
            .get("email_prefix")
            .map(|v| {
                let prefix = v.trim().to_lowercase();
                if prefix.is_empty() {
                    Err(filter_error("email_prefix", "must not be empty"))
                } else {
                    Ok(prefix)
                }
            })
            .transpose()?;
        let mut query = Self {
            subscription_status,
            plan,
            role,
            permission,
            auth_provider,
            is_active,
            email_prefix,
            limit: limit(p.get("limit"))?,
            cursor: None,
        };
        query.cursor = p
            .get("cursor")
            .map(|c| Cursor::decode(c, crate::store::admin::USERS_INDEX, &query.fingerprint()))
            .transpose()?;
        Ok(query)
    }

    /// Names the filters, so a cursor resumes only this query.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            "users".into(),
            format!("{:?}", self.subscription_status),
            format!("{:?}", self.plan),
            format!("{:?}", self.role),
            format!("{:?}", self.permission),
            format!("{:?}", self.auth_provider),
            format!("{:?}", self.is_active),
            format!("{:?}", self.email_prefix),
        ])
    }

    /// Filters that need the user's subscriptions, not just the profile.
    pub fn needs_subscriptions(&self) -> bool {
        self.subscription_status.is_some()
            || self.plan.is_some()
            || self.role.is_some()
            || self.permission.is_some()
    }
}

/// `GET /admin/events` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub provider: Option<Provider>,
    pub event_type: Option<String>,
    pub status: Option<EventStatus>,
    pub user: Option<UserId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

const EVENT_PARAMS: &str = "provider, type, status, user, from, to, limit, cursor";

fn time(
    p: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, ListingError> {
    p.get(name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    filter_error(name, "must be an RFC 3339 time, e.g. 2026-11-26T00:00:00Z")
                })
        })
        .transpose()
}

/// A listing's time window: `from` and `to`, either open.
type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from` and `to`, in order.
fn window(p: &HashMap<String, String>) -> Result<Window, ListingError> {
    let (from, to) = (time(p, "from")?, time(p, "to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(filter_error("from", "must not be after `to`"));
        }
    }
    Ok((from, to))
}

/// A provider members pay through (never `admin`), named by parameter `name`.
fn payment_provider(
    p: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<Provider>, ListingError> {
    p.get(name)
        .map(|v| {
            Provider::parse(v.trim())
                .filter(|p| *p != Provider::Admin)
                .ok_or_else(|| filter_error(name, "must be kajabi, stripe or paystack"))
        })
        .transpose()
}

/// `user`, when given.
fn user_param(p: &HashMap<String, String>) -> Option<UserId> {
    p.get("user")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(UserId::from_stored)
}

/// The index a time-ordered listing reads: one user's, or everyone's.
pub fn listing_index(user: Option<&UserId>) -> &'static str {
    if user.is_some() {
        crate::store::admin::USER_EVENTS_INDEX
    } else {
        crate::store::admin::EVENTS_INDEX
    }
}

impl EventQuery {
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, ListingError> {
        let p = params(
            pairs,
            &[
                "provider", "type", "status", "user", "from", "to", "limit", "cursor",
            ],
            EVENT_PARAMS,
        )?;
        let provider = p
            .get("provider")
            .map(|v| {
                Provider::parse(v.trim()).ok_or_else(|| {
                    filter_error("provider", "must be kajabi, stripe, paystack or admin")
                })
            })
            .transpose()?;
        let status = p
            .get("status")
            .map(|v| {
                EventStatus::parse(v.trim()).ok_or_else(|| {
                    filter_error(
                        "status",
                        "must be processed, ignored, failed, superseded, unmatched, pending or dismissed",
                    )
                })
            })
            .transpose()?;
        let event_type = p
            .get("type")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let user = user_param(&p);
        let (from, to) = window(&p)?;
        let index = listing_index(user.as_ref());
        let mut query = Self {
            provider,
            event_type,
            status,
            user,
            from,
            to,
            limit: limit(p.get("limit"))?,
            cursor: None,
        };
        query.cursor = p
            .get("cursor")
            .map(|c| Cursor::decode(c, index, &query.fingerprint()))
            .transpose()?;
        Ok(query)
    }

    /// Names the filters, so a cursor resumes only this query.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            "events".into(),
            format!("{:?}", self.provider),
            format!("{:?}", self.event_type),
            format!("{:?}", self.status),
            format!("{:?}", self.user),
            format!("{:?}", self.from),
            format!("{:?}", self.to),
        ])
    }
}

/// `GET /admin/payments` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentQuery {
    pub provider: Option<Provider>,
    pub status: Option<String>,
    pub user: Option<UserId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

const PAYMENT_PARAMS: &str = "provider, status, user, from, to, limit, cursor";

/// The states a payment record takes.
pub const PAYMENT_STATUSES: [&str; 6] = [
    "pending",
    "succeeded",
    "failed",
    "cancelled",
    "refunded",
    "partially_refunded",
];

impl PaymentQuery {
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, ListingError> {
        let p = params(
            pairs,
            &[
                "provider", "status", "user", "from", "to", "limit", "cursor",
            ],
            PAYMENT_PARAMS,
        )?;
        let provider = payment_provider(&p, "provider")?;
        let status = p
            .get("status")
            .map(|v| {
                let v = v.trim();
                PAYMENT_STATUSES
                    .contains(&v)
                    .then(|| v.to_string())
                    .ok_or_else(|| {
                        filter_error(
                            "status",
                            format!("must be one of {}", PAYMENT_STATUSES.join(", ")),
                        )
                    })
            })
            .transpose()?;
        let user = user_param(&p);
        let (from, to) = window(&p)?;
        let index = listing_index(user.as_ref());
        let mut query = Self {
            provider,
            status,
            user,
            from,
            to,
            limit: limit(p.get("limit"))?,
            cursor: None,
        };
        query.cursor = p
            .get("cursor")
            .map(|c| Cursor::decode(c, index, &query.fingerprint()))
            .transpose()?;
        Ok(query)
    }

    /// Names the filters, so a cursor resumes only this query.
    pub fn fingerprint(&self) -> String {
        fingerprint(&[
            "payments".into(),
            format!("{:?}", self.provider),
            format!("{:?}", self.status),
            format!("{:?}", self.user),
            format!("{:?}", self.from),
            format!("{:?}", self.to),
        ])
    }
}

/// `GET /admin/completions` parameters: the completions kept for review
/// (`status=unmatched`, the default) or those an admin dismissed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionQuery {
    pub status: EventStatus,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

const COMPLETION_PARAMS: &str = "status, limit, cursor";

impl CompletionQuery {
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, ListingError> {
        let p = params(pairs, &["status", "limit", "cursor"], COMPLETION_PARAMS)?;
        let status = match p.get("status").map(|v| v.trim()) {
            None | Some("unmatched") => EventStatus::Unmatched,
            Some("dismissed") => EventStatus::Dismissed,
            Some(_) => return Err(filter_error("status", "must be unmatched or dismissed")),
        };
        let mut query = Self {
            status,
            limit: limit(p.get("limit"))?,
            cursor: None,
        };
        query.cursor = p
            .get("cursor")
            .map(|c| {
                Cursor::decode(
                    c,
                    crate::store::admin::USER_EVENTS_INDEX,
                    &query.fingerprint(),
                )
            })
            .transpose()?;
        Ok(query)
    }

    /// Names the filters, so a cursor resumes only this query.
    pub fn fingerprint(&self) -> String {
        fingerprint(&["completions".into(), self.status.as_str().into()])
    }
}

/// Event keys in paths: base64url (no padding) of `<provider>:<event id>`,
/// so any event id (slashes, colons, spaces) fits one path segment.
pub fn encode_event_key(key: &EventKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", key.provider(), key.event_id()))
}

pub fn decode_event_key(raw: &str) -> Option<EventKey> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim().trim_end_matches('='))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (provider, id) = text.split_once(':')?;
    if id.is_empty() {
        return None;
    }
    Some(EventKey::new(Provider::parse(provider)?, id))
}

/// A user id from a path: ids are what Gatehouse issued, so anything else is unknown.
pub fn user_id_from_path(raw: &str) -> Option<UserId> {
    let raw = raw.trim();
    (raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !raw.is_empty())
    .then(|| UserId::from_stored(raw))
}

/// Normalizes an email filter the way stored emails are normalized, when it is a whole address.
pub fn normalize_prefix(prefix: &str) -> String {
    Email::parse(prefix)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| prefix.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        crate::http::parse_query(raw)
    }

    fn catalog() -> PlanCatalog {
        PlanCatalog::from_json(crate::config::EMBEDDED_PLANS).unwrap()
    }

    #[test]
    fn user_filters_parse_and_bad_ones_say_why() {
        let q = UserQuery::parse(
            pairs("subscription_status=active&plan=nssa_annual&role=premium-member&auth_provider=kajabi&is_active=true&email_prefix=Ada&limit=10"),
            &catalog(),
        )
        .unwrap();
        assert_eq!(q.subscription_status, Some(SubscriptionState::Active));
        assert_eq!(q.email_prefix.as_deref(), Some("ada"));
        assert_eq!(q.limit, 10);
        assert!(q.needs_subscriptions());
        assert_eq!(
            UserQuery::parse(vec![], &catalog()).unwrap().limit,
            DEFAULT_LIMIT
        );
        for (raw, needle) in [
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("plan=gold", "gold"),
            ("role=wizard", "wizard"),
            ("subscription_status=paused", "subscription_status"),
            ("auth_provider=admin", "auth_provider"),
            ("is_active=yes", "is_active"),
            ("email_prefix=", "email_prefix"),
            ("colour=blue", "colour"),
            ("plan=a&plan=b", "more than once"),
            ("cursor=%%%", "cursor"),
        ] {
            let err = UserQuery::parse(pairs(raw), &catalog())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{raw}: {err}");
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let item = IndexKey(
            [
                ("pk", "USER#u"),
                ("sk", "PROFILE"),
                ("gsi3pk", "USERS"),
                ("gsi3sk", "a@b.c"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let raw = Cursor::encode(&item, "q1");
        assert_eq!(
            Cursor::decode(&raw, crate::store::admin::USERS_INDEX, "q1")
                .unwrap()
                .0,
            item
        );
        assert_eq!(
            Cursor::decode(&raw, crate::store::admin::EVENTS_INDEX, "q1"),
            Err(ListingError::Cursor)
        );
        assert_eq!(
            Cursor::decode(&raw, crate::store::admin::USERS_INDEX, "q2"),
            Err(ListingError::CursorQuery)
        );
        assert_eq!(
            Cursor::decode("bm90IGpzb24", "gsi3", "q1"),
            Err(ListingError::Cursor)
        );
    }

    #[test]
    fn event_filters_parse() {
        let q = EventQuery::parse(pairs("provider=stripe&type=invoice.paid&status=failed&from=2026-11-01T00:00:00Z&to=2026-11-30T00:00:00Z")).unwrap();
        assert_eq!(q.provider, Some(Provider::Stripe));
        assert_eq!(q.status, Some(EventStatus::Failed));
        assert!(EventQuery::parse(pairs("from=yesterday"))
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
        assert!(
            EventQuery::parse(pairs("from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z")).is_err()
        );
        assert!(EventQuery::parse(pairs("status=lost")).is_err());
        assert_eq!(
            EventQuery::parse(pairs("status=dismissed")).unwrap().status,
            Some(EventStatus::Dismissed)
        );
    }

    #[test]
    fn event_keys_are_url_safe_and_round_trip() {
        let key = EventKey::new(Provider::Paystack, "charge.success:ref/1 2");
        let raw = encode_event_key(&key);
        assert!(raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode_event_key(&raw), Some(key));
        assert_eq!(decode_event_key("!!"), None);
        assert_eq!(decode_event_key(&URL_SAFE_NO_PAD.encode("mars:1")), None);
        assert_eq!(decode_event_key(&URL_SAFE_NO_PAD.encode("stripe:")), None);
    }

    #[test]
    fn payment_listing_parameters() {
        let q = PaymentQuery::parse(pairs("provider=paystack&status=failed&limit=5")).unwrap();
        assert_eq!(q.provider, Some(Provider::Paystack));
        assert_eq!(q.status.as_deref(), Some("failed"));
        assert_eq!(q.limit, 5);
        for (bad, name) in [
            ("status=paid", "status"),
            ("provider=admin", "provider"),
            ("from=yesterday", "from"),
            ("colour=red", "colour"),
        ] {
            let err = PaymentQuery::parse(pairs(bad)).unwrap_err().to_string();
            assert!(err.contains(name), "{bad}: {err}");
        }
    }

    #[test]
    fn completion_listing_parameters() {
        let q = CompletionQuery::parse(pairs("")).unwrap();
        assert_eq!((q.status, q.limit), (EventStatus::Unmatched, DEFAULT_LIMIT));
        let q = CompletionQuery::parse(pairs("status=dismissed&limit=5")).unwrap();
        assert_eq!((q.status, q.limit), (EventStatus::Dismissed, 5));
        assert!(matches!(
            CompletionQuery::parse(pairs("status=processed")),
            Err(ListingError::Filter { name: "status", .. })
        ));
        assert!(matches!(
            CompletionQuery::parse(pairs("provider=kajabi")),
            Err(ListingError::UnknownParameter(..))
        ));
        // A cursor from the unmatched list does not resume the dismissed one.
        let key = IndexKey(
            ["pk", "sk", "gsi5pk", "gsi5sk"]
                .iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect(),
        );
        let unmatched = CompletionQuery::parse(pairs("")).unwrap();
        let cursor = Cursor::encode(&key, &unmatched.fingerprint());
        assert!(CompletionQuery::parse(pairs(&format!("cursor={cursor}"))).is_ok());
        assert_eq!(
            CompletionQuery::parse(pairs(&format!("status=dismissed&cursor={cursor}"))),
            Err(ListingError::CursorQuery)
        );
    }
}
