//! DynamoDB repository: one table, `pk`/`sk` keys, conditional writes and
//! transactions. Item layout (see docs/architecture.md):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | user profile | `USER#<id>` | `PROFILE` |
//! | email uniqueness | `EMAIL#<email>` | `EMAIL` |
//! | subscription | `USER#<id>` | `SUB#<provider>#<row>` (Stripe: subscription id; else plan) |
//! | setup token (hash only) | `USER#<id>` | `SETUP_TOKEN` |
//! | event | `EVENT#<provider>#<event id>` | `EVENT` |
//! | email job (outbox) | `OUTBOX#<job id>` | `JOB` |
//! | rate-limit counter | `RATE#<scope>#<bucket>` | `RATE` |
//! | points ledger entry | `USER#<id>` | `POINTS#course#<course id>` |
//!
//! A user's profile and subscriptions share a partition, so one Query loads a member.
//!
//! GSI1 (`gsi1pk`, `gsi1sk`) is sparse: pending email jobs sit under
//! `OUTBOX#PENDING` by creation time, or by their last failed attempt, until
//! they are sent or parked.

mod accounts;
pub mod admin;
pub mod attr;
mod contacts;
mod customers;
mod events;
mod jobs;
mod member;
mod notices;
mod payments;
mod points;
mod rates;
mod subscriptions;

pub use accounts::{EmailRecord, NewUser, TokenRecord};
/// Times as the table stores them (RFC 3339, UTC, milliseconds).
pub use attr::ts as timestamp;
pub use contacts::{TagRecord, TAG_PREFIX};
pub use customers::{completion_customer, CustomerRecord, Waiting, WaitingEvent};
pub use events::{EventRecord, EventStatus, Loaded};
pub use jobs::{Claim, EmailJob, JobStatus, StoredJob};
pub use member::{holdings, MemberRecord, RenewalStop};
pub use notices::{NoticePage, NoticeRecord};
pub use payments::{CheckoutPayment, Payment, PaymentRow};
pub use points::LedgerEntry;
pub use subscriptions::SubscriptionRecord;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use crate::domain::Template;
use crate::domain::{
    Email, EventKey, JobId, Provider, SubscriptionState, SubscriptionView, UserId, Watermark,
};
use attr::*;

pub const OUTBOX_PENDING: &str = "OUTBOX#PENDING";
/// GSI2 partition of canceled subscriptions, sorted by when access ends.
pub const CANCELED_BY_ACCESS_END: &str = "SUB#CANCELED";

pub mod keys {
    use super::*;

    pub fn user(id: &UserId) -> String {
        format!("USER#{id}")
    }
    pub const PROFILE: &str = "PROFILE";
    pub fn email(email: &Email) -> String {
        format!("EMAIL#{email}")
    }
    pub const EMAIL: &str = "EMAIL";
    pub fn event(key: &EventKey) -> String {
        format!("EVENT#{}#{}", key.provider(), key.event_id())
    }
    pub const EVENT: &str = "EVENT";
    /// A subscription row: `row` is the provider's subscription id where its
    /// events name one (Stripe), else the plan (see `SubscriptionRecord::row`).
    pub fn subscription(provider: Provider, row: &str) -> String {
        format!("SUB#{provider}#{}", bounded(row))
    }
    pub const SETUP_TOKEN: &str = "SETUP_TOKEN";
    pub fn job(id: &JobId) -> String {
        format!("OUTBOX#{id}")
    }
    pub const JOB: &str = "JOB";
    pub fn rate(scope: &str, bucket: &str) -> String {
        format!("RATE#{scope}#{bucket}")
    }
    pub const RATE: &str = "RATE";
    pub fn payment(provider: Provider, reference: &str) -> String {
        format!("PAYMENT#{provider}#{}", bounded(reference))
    }
    pub const PAYMENT: &str = "PAYMENT";
    pub fn customer(provider: Provider, customer_id: &str) -> String {
        format!("CUSTOMER#{provider}#{}", bounded(customer_id))
    }
    pub const CUSTOMER: &str = "CUSTOMER";

    /// Longest provider value used verbatim in a key (DynamoDB allows 2,048
    /// bytes for a partition key); a longer one is keyed by its hash.
    pub const MAX_KEY_VALUE_BYTES: usize = 200;

    pub fn bounded(value: &str) -> std::borrow::Cow<'_, str> {
        if value.len() > MAX_KEY_VALUE_BYTES {
            format!(
                "sha256-id:{}",
                crate::signature::sha256_hex(value.as_bytes())
            )
            .into()
        } else {
            value.into()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {0}")]
    Request(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

fn request_error<E: std::fmt::Debug>(err: E) -> StoreError {
    StoreError::Request(format!("{err:?}"))
}

/// How many differing redelivered bodies an event record notes.
pub const MAX_DUPLICATE_BODIES: i64 = 50;

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// An item's condition failed: for webhooks, item 0 is the event record
    /// (already recorded); any other index means state moved under us.
    #[error("condition failed on transaction item {index}")]
    ConditionFailed {
        index: usize,
        old_item: Option<Box<Item>>,
    },
    #[error("transaction conflict")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CommitError {
    /// The event record a failed item 0 held, when the caller's transaction
    /// put an event record there.
    pub fn old_event(&self) -> Option<EventRecord> {
        match self {
            Self::ConditionFailed {
                index: 0,
                old_item: Some(item),
            } => EventRecord::from_item(item).ok(),
            _ => None,
        }
    }
}

fn names(pairs: &[(&str, &str)]) -> Option<std::collections::HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> Option<Item> {
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn key(pk: String, sk: &str) -> Item {
    Item::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

type Names = Option<std::collections::HashMap<String, String>>;
/// A condition expression with its names and values.
type Condition<'a> = (&'a str, Names, Option<Item>);

/// A TransactWriteItems under construction. The event record is always item 0,
/// so a cancellation on item 0 means "already recorded".
pub struct Tx {
    table: String,
    items: Vec<TransactWriteItem>,
}

impl Tx {
    fn push_put(&mut self, item: Item, condition: Option<Condition<'_>>) -> Result<(), StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, names, values)) = condition {
            put = put
                .condition_expression(expr)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        let put = put.build().map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    fn push_update(
        &mut self,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<(), StoreError> {
        let update = update
            .table_name(&self.table)
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    fn push_delete(&mut self, key: Item) -> Result<(), StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `other`'s writes after these, in order.
    pub fn append(&mut self, other: Tx) {
        self.items.extend(other.items);
    }
}

/// A conditional `UpdateItem`'s result: `false` when its condition failed.
fn condition_held<T, E>(
    result: Result<T, SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, E>>,
) -> Result<bool, StoreError>
where
    E: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(request_error(e)),
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn tx(&self) -> Tx {
        Tx {
            table: self.table.clone(),
            items: Vec::new(),
        }
    }

    pub async fn commit(&self, tx: Tx) -> Result<(), CommitError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(tx.items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match err {
            SdkError::ServiceError(service) => match service.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => {
                    let reasons = cancel.cancellation_reasons();
                    for (index, reason) in reasons.iter().enumerate() {
                        if reason.code() == Some("ConditionalCheckFailed") {
                            return Err(CommitError::ConditionFailed {
                                index,
                                old_item: reason.item().cloned().map(Box::new),
                            });
                        }
                    }
                    if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        return Err(CommitError::Conflict);
                    }
                    Err(CommitError::Store(StoreError::Request(format!(
                        "transaction canceled: {:?}",
                        reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                    ))))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(CommitError::Conflict)
                }
                other => Err(CommitError::Store(request_error(other))),
            },
            other => Err(CommitError::Store(request_error(other))),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(request_error)?;
        Ok(out.item)
    }

    /// Table keys (pk, sk) of a sparse, keys-only index partition whose sort key
    /// is below `bound` (`<`, or `<=` when `inclusive`), oldest first, at most `limit`.
    async fn index_keys_before(
        &self,
        index: &str,
        partition: &str,
        bound: String,
        inclusive: bool,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let op = if inclusive { "<=" } else { "<" };
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("{index}pk = :pk AND {index}sk {op} :bound"))
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":bound", s(bound.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(request_error)?;
            keys.extend(out.items().iter().filter_map(|item| {
                Some((
                    get_s(item, "pk")?.to_string(),
                    get_s(item, "sk")?.to_string(),
                ))
            }));
            start = out.last_evaluated_key;
            if start.is_none() || keys.len() >= limit {
                break;
            }
        }
        keys.truncate(limit);
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn waiting_events_sort_by_provider_time_then_rank_and_keep_their_keys() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let key = |id: &str| EventKey::new(Provider::Stripe, id);
        let entries = [
            WaitingEvent::new(&key("evt_c#x"), t(1_700_000_100), 5),
            WaitingEvent::new(&key("evt_b"), t(1_700_000_000), 20),
            WaitingEvent::new(&key("evt_a"), t(1_700_000_000), 3),
        ];
        let item = Item::from([(
            "waiting".to_string(),
            AttributeValue::Ss(entries.iter().map(|e| e.entry.clone()).collect()),
        )]);
        let waiting = Waiting::from_item(&item);
        let ids: Vec<&str> = waiting.events.iter().map(|e| e.key.event_id()).collect();
        assert_eq!(ids, ["evt_a", "evt_b", "evt_c#x"]);
        assert_eq!(waiting.version, None);
    }

    #[test]
    fn long_provider_values_are_hashed_in_keys() {
        let long = "pi_".to_string() + &"x".repeat(3000);
        let pk = keys::payment(Provider::Stripe, &long);
        assert!(pk.len() < 120, "{}", pk.len());
        assert_eq!(
            keys::customer(Provider::Stripe, "cus_1"),
            "CUSTOMER#stripe#cus_1"
        );
    }
}
