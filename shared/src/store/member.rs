//! A member's whole record in one Query, and the login attempt counters.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, Update};
use chrono::{DateTime, Utc};

use super::attr::*;
use super::{
    key, keys, names, request_error, values, EmailRecord, Store, StoreError, SubscriptionRecord, Tx,
};
use crate::config::Secret;
use crate::domain::{Email, UserId};

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
    /// Roles an admin granted or revoked by hand.
    pub granted_roles: Vec<String>,
    pub revoked_roles: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub subscriptions: Vec<SubscriptionRecord>,
}

impl MemberRecord {
    pub fn partner(&self) -> Option<&str> {
        self.metadata.get("partner").map(String::as_str)
    }

    fn from_profile(
        profile: &Item,
        subscriptions: Vec<SubscriptionRecord>,
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
            granted_roles: get_list_s(profile, "granted_roles"),
            revoked_roles: get_list_s(profile, "revoked_roles"),
            created_at: get_ts(profile, "created_at"),
            activated_at: get_ts(profile, "activated_at"),
            subscriptions,
        })
    }
}

/// What a login reads first: the email mapping and the failure counters.
#[derive(Debug, Clone, Default)]
pub struct LoginState {
    pub email: Option<EmailRecord>,
    /// Failures so far in each asked-for counter, in the order asked.
    pub failures: Vec<u32>,
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
        for item in &items {
            match get_s(item, "sk") {
                Some(keys::PROFILE) => profile = Some(item),
                Some(sk) if sk.starts_with("SUB#") => {
                    subscriptions.push(SubscriptionRecord::from_item(item)?)
                }
                _ => {}
            }
        }
        profile
            .map(|p| MemberRecord::from_profile(p, subscriptions))
            .transpose()
    }

    /// One BatchGetItem: the email mapping and the named `(scope, bucket)` counters.
    pub async fn load_login(
        &self,
        email: &Email,
        counters: &[(&str, &str)],
    ) -> Result<LoginState, StoreError> {
        let mut wanted = vec![key(keys::email(email), keys::EMAIL)];
        let counter_pks: Vec<String> = counters
            .iter()
            .map(|(scope, bucket)| keys::rate(scope, bucket))
            .collect();
        wanted.extend(counter_pks.iter().map(|pk| key(pk.clone(), keys::RATE)));
        let found = self.batch_get(wanted).await?;
        let mut state = LoginState {
            email: None,
            failures: vec![0; counters.len()],
        };
        for item in &found {
            match (get_s(item, "pk"), get_s(item, "sk")) {
                (_, Some(keys::EMAIL)) => {
                    state.email = get_s(item, "user_id").map(|id| EmailRecord {
                        user_id: UserId::from_stored(id),
                        is_active: get_bool(item, "is_active").unwrap_or(false),
                    })
                }
                (Some(pk), Some(keys::RATE)) => {
                    if let Some(i) = counter_pks.iter().position(|c| c == pk) {
                        state.failures[i] = get_n(item, "count").unwrap_or(0).max(0) as u32;
                    }
                }
                _ => {}
            }
        }
        Ok(state)
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
    /// Adds one to a counter with no ceiling (failure counting: the check is a read).
    pub fn bump_counter(
        &mut self,
        scope: &str,
        bucket: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::rate(scope, bucket), keys::RATE)))
                .update_expression("ADD #count :one SET #ttl = :ttl")
                .set_expression_attribute_names(names(&[("#count", "count"), ("#ttl", "ttl")]))
                .set_expression_attribute_values(values(vec![
                    (":one", n(1)),
                    (":ttl", n(expires_at.timestamp())),
                ])),
        )
    }
}
