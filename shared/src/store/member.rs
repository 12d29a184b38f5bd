//! A member's whole record in one Query, and the login attempt counters.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, Update};
use chrono::{DateTime, Utc};

use super::attr::*;
use super::{key, keys, names, request_error, values, Store, StoreError, SubscriptionRecord, Tx};
use crate::domain::Secret;
use crate::domain::{Holding, Revocation, UserId};

/// Subscriptions as the access rule sees them.
pub fn holdings(subscriptions: &[SubscriptionRecord]) -> Vec<Holding> {
    subscriptions
        .iter()
        .map(|sub| Holding {
            plan_id: sub.plan_id.clone(),
            state: sub.view.state,
            access_until: sub.view.access_until,
            key: format!("{}#{}", sub.provider, sub.row),
            last_change: sub.last_event.clone().unwrap_or_default(),
        })
        .collect()
}

/// How a Kajabi tag is named among a member's holdings.
pub const TAG_HOLDING: &str = "kajabi-tag#";

/// The profile and every subscription of one user.
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: bool,
    pub auth_provider: Option<String>,
    /// argon2id PHC string; redacted in Debug.
    pub password_hash: Option<Secret>,
    pub metadata: BTreeMap<String, String>,
    pub points: i64,
    /// Every award of points, newest first.
    pub ledger: Vec<super::LedgerEntry>,
    /// Roles an admin granted or revoked by hand.
    pub granted_roles: Vec<String>,
    pub revocations: Vec<Revocation>,
    /// When the profile last changed: admin edits are conditional on it.
    pub updated_at: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Kajabi tags, present and removed, by normalized name.
    pub kajabi_tags: Vec<super::TagRecord>,
    /// When Kajabi last changed the member's contact (name, contact id).
    pub kajabi_contact_at: Option<DateTime<Utc>>,
    /// Subscriptions whose renewal the member turned off through Gatehouse:
    /// `(provider, row)` and when.
    pub renewal_stops: Vec<RenewalStop>,
}

/// The member turned a subscription's renewal off through Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalStop {
    pub provider: crate::domain::Provider,
    pub row: String,
    /// The provider's id of the subscription the member cancelled: a later
    /// subscription on the same row is not theirs to soften.
    pub code: String,
    pub at: DateTime<Utc>,
}

/// Sort key prefix of a member's renewal stop: `RENEWAL_STOP#<provider>#<row>`.
pub const RENEWAL_STOP_PREFIX: &str = "RENEWAL_STOP#";

fn renewal_stop_key(provider: crate::domain::Provider, row: &str) -> String {
    format!("{RENEWAL_STOP_PREFIX}{provider}#{}", keys::bounded(row))
}

impl Tx {
    /// Removes a member's renewal stop: the disable it was for has been applied.
    pub fn clear_renewal_stop(
        &mut self,
        user: &UserId,
        provider: crate::domain::Provider,
        row: &str,
    ) -> Result<(), StoreError> {
        self.push_delete(key(keys::user(user), &renewal_stop_key(provider, row)))
    }
}

impl RenewalStop {
    fn from_item(item: &Item) -> Option<Self> {
        Some(Self {
            provider: crate::domain::Provider::parse(get_s(item, "provider")?)?,
            row: get_s(item, "row")?.to_string(),
            code: get_s(item, "code")?.to_string(),
            at: get_ts(item, "at")?,
        })
    }
}

impl MemberRecord {
    /// Whether the member turned this subscription's renewal off through
    /// Gatehouse: the row, and the provider's id the event names.
    pub fn stopped_renewal(
        &self,
        provider: crate::domain::Provider,
        row: &str,
        code: Option<&str>,
    ) -> bool {
        self.renewal_stops.iter().any(|stop| {
            stop.provider == provider && stop.row == row && Some(stop.code.as_str()) == code
        })
    }
}

impl Store {
    /// Notes that the member turned renewal of `code` off (`Some`) or back on (`None`).
    pub async fn note_renewal(
        &self,
        user: &UserId,
        provider: crate::domain::Provider,
        row: &str,
        stopped: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = super::key(keys::user(user), &renewal_stop_key(provider, row));
        if let Some(code) = stopped {
            let mut item = key;
            item.insert("kind".into(), s("RENEWAL_STOP"));
            item.insert("provider".into(), s(provider.as_str()));
            item.insert("row".into(), s(row));
            item.insert("code".into(), s(code));
            item.insert("at".into(), s(ts(now)));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(request_error)?;
        } else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map_err(request_error)?;
        }
        Ok(())
    }
}

impl MemberRecord {
    pub fn partner(&self) -> Option<&str> {
        self.metadata.get("partner").map(String::as_str)
    }

    /// The subscriptions as the access rule sees them, and each Kajabi tag
    /// the plans file maps to a plan now: held (with no end) while present.
    pub fn holdings(&self, catalog: &crate::domain::PlanCatalog) -> Vec<Holding> {
        let mut held = holdings(&self.subscriptions);
        held.extend(self.kajabi_tags.iter().filter_map(|tag| {
            Some(Holding {
                plan_id: catalog.plan_for_tag(&tag.key)?.id.clone(),
                state: if tag.present {
                    crate::domain::SubscriptionState::Active
                } else {
                    crate::domain::SubscriptionState::Expired
                },
                access_until: None,
                key: format!("{TAG_HOLDING}{}", tag.key),
                last_change: tag.event.clone(),
            })
        }));
        held
    }

    /// The Kajabi tags the member carries now, by name.
    pub fn present_tags(&self) -> Vec<&str> {
        self.kajabi_tags
            .iter()
            .filter(|t| t.present)
            .map(|t| t.name.as_str())
            .collect()
    }

    fn from_profile(
        profile: &Item,
        subscriptions: Vec<SubscriptionRecord>,
        ledger: Vec<super::LedgerEntry>,
        kajabi_tags: Vec<super::TagRecord>,
        renewal_stops: Vec<RenewalStop>,
    ) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("profile item: {what}"));
        Ok(Self {
            user_id: UserId::from_stored(
                get_s(profile, "user_id").ok_or_else(|| corrupt("user_id"))?,
            ),
            email: get_s(profile, "email")
                .ok_or_else(|| corrupt("email"))?
                .to_string(),
            first_name: get_s(profile, "first_name").map(str::to_string),
            last_name: get_s(profile, "last_name").map(str::to_string),
            is_active: get_bool(profile, "is_active").unwrap_or(false),
            auth_provider: get_s(profile, "auth_provider").map(str::to_string),
            password_hash: get_s(profile, "password_hash").map(Secret::new),
            metadata: get_map_s(profile, "metadata"),
            points: get_n(profile, "points").unwrap_or(0),
            ledger,
            granted_roles: get_list_s(profile, "granted_roles"),
            revocations: get_s(profile, "revocations")
                .and_then(|raw| serde_json::from_str(raw).ok())
                .unwrap_or_default(),
            updated_at: get_s(profile, "updated_at").map(str::to_string),
            created_at: get_ts(profile, "created_at"),
            activated_at: get_ts(profile, "activated_at"),
            subscriptions,
            kajabi_tags,
            kajabi_contact_at: get_ts(profile, "kajabi_contact_at"),
            renewal_stops,
        })
    }
}

impl Store {
    /// One consistent Query over the user's partition: the profile and every
    /// subscription (the setup token item is skipped).
    pub async fn load_member(&self, user: &UserId) -> Result<Option<MemberRecord>, StoreError> {
        let mut items: Vec<Item> = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::user(user)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(request_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        let mut profile = None;
        let mut subscriptions = Vec::new();
        let mut ledger = Vec::new();
        let mut tags = Vec::new();
        let mut stops = Vec::new();
        for item in &items {
            match get_s(item, "sk") {
                Some(keys::PROFILE) => profile = Some(item),
                Some(sk) if sk.starts_with("SUB#") => {
                    subscriptions.push(SubscriptionRecord::from_item(item)?)
                }
                Some(sk) if sk.starts_with(super::points::POINTS_PREFIX) => {
                    ledger.push(super::LedgerEntry::from_item(item)?)
                }
                Some(sk) if sk.starts_with(super::TAG_PREFIX) => {
                    tags.push(super::TagRecord::from_item(item)?)
                }
                Some(sk) if sk.starts_with(RENEWAL_STOP_PREFIX) => {
                    stops.extend(RenewalStop::from_item(item))
                }
                _ => {}
            }
        }
        // Newest first; the key breaks ties so pages never overlap.
        ledger.sort_by(|a, b| {
            b.awarded_at
                .cmp(&a.awarded_at)
                .then_with(|| a.entry.cmp(&b.entry))
        });
        profile
            .map(|p| MemberRecord::from_profile(p, subscriptions, ledger, tags, stops))
            .transpose()
    }

    /// BatchGetItem (consistent), asking again for unprocessed keys.
    pub(super) async fn batch_get(&self, wanted: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(wanted))
            .consistent_read(true)
            .build()
            .map_err(request_error)?;
        let mut pending = std::collections::HashMap::from([(self.table.clone(), request)]);
        let mut found: Vec<Item> = Vec::new();
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(request_error)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys {
                Some(unprocessed) if !unprocessed.is_empty() => pending = unprocessed,
                _ => return Ok(found),
            }
        }
        Err(StoreError::Request(
            "BatchGetItem left keys unprocessed after 5 attempts".into(),
        ))
    }
}

impl Tx {
    /// Fails the transaction if `<provider>#<row>`'s last applied event is no longer `last_event`.
    pub fn check_subscription_unchanged(
        &mut self,
        user: &UserId,
        subscription_key: &str,
        last_event: &str,
    ) -> Result<(), StoreError> {
        // A holding is a subscription row, or a Kajabi tag (`kajabi-tag#<tag>`,
        // whose item names its last change `event`).
        let (sort_key, attribute) = match subscription_key.strip_prefix(TAG_HOLDING) {
            Some(tag) => (
                format!("{}{}", super::TAG_PREFIX, keys::bounded(tag)),
                "event",
            ),
            None => (format!("SUB#{subscription_key}"), "last_event"),
        };
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(self.table.clone())
            .set_key(Some(key(keys::user(user), &sort_key)))
            .condition_expression(format!("{attribute} = :e"))
            .expression_attribute_values(":e", s(last_event))
            .build()
            .map_err(request_error)?;
        self.items.push(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .condition_check(check)
                .build(),
        );
        Ok(())
    }

    /// Writes an admin's manual roles, if the profile is unchanged since it was read.
    pub fn set_manual_roles(
        &mut self,
        user: &UserId,
        granted: &[String],
        revocations: &[Revocation],
        read_at: Option<&str>,
        now: &str,
    ) -> Result<(), StoreError> {
        let revocations = serde_json::to_string(revocations)
            .map_err(|e| StoreError::Corrupt(format!("revocations: {e}")))?;
        let mut vals = vec![
            (":g", list_s(granted)),
            (":r", s(revocations)),
            (":now", s(now)),
        ];
        let condition = match read_at {
            Some(at) => {
                vals.push((":read", s(at)));
                "attribute_exists(pk) AND updated_at = :read"
            }
            None => "attribute_exists(pk) AND attribute_not_exists(updated_at)",
        };
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user), keys::PROFILE)))
                .update_expression("SET granted_roles = :g, revocations = :r, updated_at = :now")
                .condition_expression(condition)
                .set_expression_attribute_values(values(vals)),
        )
    }

    /// Gives back one counted attempt (a successful login's), never below zero.
    pub fn uncount(&mut self, scope: &str, bucket: &str) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::rate(scope, bucket), keys::RATE)))
                .update_expression("ADD #count :minus")
                .condition_expression("#count > :zero")
                .set_expression_attribute_names(names(&[("#count", "count")]))
                .set_expression_attribute_values(values(vec![(":minus", n(-1)), (":zero", n(0))])),
        )
    }
}
