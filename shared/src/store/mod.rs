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
//!
//! A user's profile and subscriptions share a partition, so one Query loads a member.
//!
//! GSI1 (`gsi1pk`, `gsi1sk`) is sparse: pending email jobs sit under
//! `OUTBOX#PENDING` by creation time, or by their last failed attempt, until
//! they are sent or parked.

pub mod admin;
pub mod attr;
mod member;

pub use member::{holdings, MemberRecord};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Processed,
    Ignored,
    Failed,
    Superseded,
    Unmatched,
    /// Waiting for its member to become known (applied when they are).
    Pending,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::Unmatched => "unmatched",
            Self::Pending => "pending",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "processed" => Self::Processed,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            "superseded" => Self::Superseded,
            "unmatched" => Self::Unmatched,
            "pending" => Self::Pending,
            _ => return None,
        })
    }

    /// Only a final record makes a redelivery a duplicate; `failed` and
    /// `pending` are processed again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Failed | Self::Pending)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub key: EventKey,
    pub event_type: String,
    pub status: EventStatus,
    pub reason: Option<String>,
    pub user_id: Option<UserId>,
    pub body_hash: String,
    pub payload: Vec<u8>,
    pub received_at: DateTime<Utc>,
    pub job_ids: Vec<JobId>,
    pub duplicate_body_hashes: Vec<String>,
    /// For a `pending` event: the provider customer it waits on.
    pub waiting_on: Option<String>,
}

impl EventRecord {
    fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), s(keys::event(&self.key)));
        item.insert("sk".into(), s(keys::EVENT));
        item.insert("kind".into(), s("EVENT"));
        item.insert("provider".into(), s(self.key.provider().as_str()));
        item.insert("event_id".into(), s(self.key.event_id()));
        item.insert("event_type".into(), s(self.event_type.clone()));
        item.insert("status".into(), s(self.status.as_str()));
        item.insert("body_hash".into(), s(self.body_hash.clone()));
        item.insert("payload".into(), b(&self.payload));
        item.insert("received_at".into(), s(ts(self.received_at)));
        if let Some(reason) = &self.reason {
            item.insert("reason".into(), s(reason.clone()));
        }
        if let Some(customer) = &self.waiting_on {
            item.insert("waiting_on".into(), s(customer.clone()));
        }
        // Admin listings: every event by time, and each user's events by time.
        let received = ts(self.received_at);
        item.insert("gsi4pk".into(), s(admin::EVENTS_PARTITION));
        item.insert(
            "gsi4sk".into(),
            s(format!(
                "{received}#{}#{}",
                self.key.provider(),
                self.key.event_id()
            )),
        );
        if let Some(user) = &self.user_id {
            item.insert("user_id".into(), s(user.as_str()));
            item.insert("gsi5pk".into(), s(user.as_str()));
            item.insert("gsi5sk".into(), s(received));
        }
        if !self.job_ids.is_empty() {
            let ids: Vec<String> = self.job_ids.iter().map(|j| j.to_string()).collect();
            item.insert("job_ids".into(), list_s(&ids));
        }
        item
    }

    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("event item: {what}"));
        let provider = get_s(item, "provider")
            .and_then(Provider::parse)
            .ok_or_else(|| corrupt("provider"))?;
        Ok(Self {
            key: EventKey::new(
                provider,
                get_s(item, "event_id").ok_or_else(|| corrupt("event_id"))?,
            ),
            event_type: get_s(item, "event_type").unwrap_or("unknown").to_string(),
            status: get_s(item, "status")
                .and_then(EventStatus::parse)
                .ok_or_else(|| corrupt("status"))?,
            reason: get_s(item, "reason").map(str::to_string),
            user_id: get_s(item, "user_id").map(UserId::from_stored),
            body_hash: get_s(item, "body_hash").unwrap_or_default().to_string(),
            payload: get_b(item, "payload").unwrap_or_default(),
            received_at: get_ts(item, "received_at").ok_or_else(|| corrupt("received_at"))?,
            job_ids: get_list_s(item, "job_ids")
                .into_iter()
                .map(JobId::from_stored)
                .collect(),
            duplicate_body_hashes: get_list_s(item, "duplicate_body_hashes"),
            waiting_on: get_s(item, "waiting_on").map(str::to_string),
        })
    }
}

/// A payment as the provider reported it; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub provider: Provider,
    pub reference: String,
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// What it granted, when it paid for a plan.
    pub user_id: Option<UserId>,
    pub plan_id: Option<String>,
}

impl Payment {
    fn from_item(item: &Item) -> Option<Self> {
        Some(Self {
            provider: Provider::parse(get_s(item, "provider")?)?,
            reference: get_s(item, "reference")?.to_string(),
            status: get_s(item, "status").unwrap_or("unknown").to_string(),
            amount: get_n(item, "amount"),
            currency: get_s(item, "currency").map(str::to_string),
            user_id: get_s(item, "user_id").map(UserId::from_stored),
            plan_id: get_s(item, "plan_id").map(str::to_string),
        })
    }
}

/// What `Store::load_for_event` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub event: Option<EventRecord>,
    pub email: Option<EmailRecord>,
    pub customer_user: Option<UserId>,
    /// Events waiting on the customer (read with the customer mapping).
    pub customer_waiting: Waiting,
}

/// Events recorded `pending` because they name a provider customer that no
/// checkout or charge has introduced yet. They live in a set on the customer
/// item, so the purchase that maps the customer reads them in the same
/// round trip as its other facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    pub events: Vec<WaitingEvent>,
    /// Bumped by every event added; the purchase that maps the customer checks
    /// it, so no event can slip in between its read and its commit.
    pub version: Option<i64>,
}

/// A provider customer: the member it is mapped to, if any, and what waits on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerRecord {
    pub user_id: Option<UserId>,
    pub waiting: Waiting,
}

/// One waiting event; entries sort by the provider's event time, then rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEvent {
    pub entry: String,
    pub key: EventKey,
}

impl WaitingEvent {
    pub fn new(key: &EventKey, at: DateTime<Utc>, rank: i64) -> Self {
        Self {
            entry: format!(
                "{:012}#{:06}#{key}",
                at.timestamp().max(0),
                rank.clamp(0, 999_999)
            ),
            key: key.clone(),
        }
    }

    fn parse(entry: &str) -> Option<Self> {
        let (provider, event_id) = entry.splitn(3, '#').nth(2)?.split_once(':')?;
        Some(Self {
            entry: entry.to_string(),
            key: EventKey::new(Provider::parse(provider)?, event_id),
        })
    }
}

impl Waiting {
    fn from_item(item: &Item) -> Self {
        let mut events: Vec<WaitingEvent> = match item.get("waiting") {
            Some(AttributeValue::Ss(entries)) => entries
                .iter()
                .filter_map(|e| WaitingEvent::parse(e))
                .collect(),
            _ => Vec::new(),
        };
        events.sort_by(|a, b| a.entry.cmp(&b.entry));
        Self {
            events,
            version: get_n(item, "waiting_version"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub user_id: UserId,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub user_id: UserId,
    pub provider: Provider,
    /// What the row is keyed by after `SUB#<provider>#`: the Stripe
    /// subscription id, or the plan for Paystack, Kajabi, one-time purchases
    /// and rows written before subscriptions were keyed by their id.
    pub row: String,
    pub plan_id: String,
    pub view: SubscriptionView,
    pub version: i64,
    /// Time of the newest provider event applied; older events are superseded.
    pub watermark: Option<DateTime<Utc>>,
    /// Lifecycle rank of that event, to order events from the same second.
    pub watermark_rank: i64,
    /// The provider's own id for this subscription, when an event carried one.
    pub provider_ref: Option<String>,
    /// The key of the last event applied to it.
    pub last_event: Option<String>,
    /// Written by a one-time purchase, not by a subscription's events.
    pub one_time: bool,
}

impl SubscriptionRecord {
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("subscription item: {what}"));
        let provider = get_s(item, "provider")
            .and_then(Provider::parse)
            .ok_or_else(|| corrupt("provider"))?;
        let plan_id = get_s(item, "plan_id")
            .ok_or_else(|| corrupt("plan_id"))?
            .to_string();
        let prefix = format!("SUB#{provider}#");
        let row = get_s(item, "sk")
            .and_then(|sk| sk.strip_prefix(prefix.as_str()))
            .map_or_else(|| plan_id.clone(), str::to_string);
        Ok(Self {
            user_id: UserId::from_stored(get_s(item, "user_id").ok_or_else(|| corrupt("user_id"))?),
            provider,
            row,
            plan_id,
            view: SubscriptionView {
                state: get_s(item, "state")
                    .and_then(SubscriptionState::parse)
                    .ok_or_else(|| corrupt("state"))?,
                period_end: get_ts(item, "period_end"),
                access_until: get_ts(item, "access_until"),
            },
            version: get_n(item, "version").unwrap_or(0),
            watermark: get_ts(item, "watermark"),
            watermark_rank: get_n(item, "watermark_rank").unwrap_or(0),
            provider_ref: get_s(item, "provider_ref").map(str::to_string),
            last_event: get_s(item, "last_event").map(str::to_string),
            one_time: get_bool(item, "one_time").unwrap_or(false),
        })
    }

    /// The newest event applied, when one carried a time.
    pub fn mark(&self) -> Option<Watermark> {
        self.watermark.map(|at| Watermark {
            at,
            rank: self.watermark_rank,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub auth_provider: Provider,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailJob {
    pub id: JobId,
    pub template: Template,
    pub to: Email,
    pub data: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Sending,
    Sent,
    /// Failed permanently too often: off the pending index, kept with its reason.
    Parked,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Sending => "sending",
            JobStatus::Sent => "sent",
            JobStatus::Parked => "parked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJob {
    pub job: EmailJob,
    pub status: JobStatus,
    /// Claims so far, this one included.
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl StoredJob {
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("job item: {what}"));
        let to = Email::parse(get_s(item, "to").unwrap_or_default()).map_err(|_| corrupt("to"))?;
        Ok(Self {
            job: EmailJob {
                id: JobId::from_stored(get_s(item, "job_id").ok_or_else(|| corrupt("job_id"))?),
                template: get_s(item, "template")
                    .and_then(Template::parse)
                    .ok_or_else(|| corrupt("template"))?,
                to,
                data: get_map_s(item, "data"),
                created_at: get_ts(item, "created_at").ok_or_else(|| corrupt("created_at"))?,
            },
            status: match get_s(item, "status") {
                Some("pending") => JobStatus::Pending,
                Some("sending") => JobStatus::Sending,
                Some("sent") => JobStatus::Sent,
                Some("parked") => JobStatus::Parked,
                _ => return Err(corrupt("status")),
            },
            attempts: get_n(item, "attempts")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            last_error: get_s(item, "last_error").map(str::to_string),
        })
    }
}

/// The outcome of claiming a job for sending.
#[derive(Debug)]
pub enum Claim {
    Claimed(StoredJob),
    AlreadySent,
    /// Another sender holds an unexpired lease.
    InFlight,
    Parked,
    NotFound,
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

/// Condition under which an event record may be written: new, or replacing a
/// failed or pending attempt.
const EVENT_WRITABLE: &str = "attribute_not_exists(pk) OR #status IN (:failed, :pending)";

fn event_writable_values() -> Option<Item> {
    values(vec![(":failed", s("failed")), (":pending", s("pending"))])
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

    /// Item 0: the event record, written only if new or previously failed.
    pub fn put_event(&mut self, record: &EventRecord) -> Result<(), StoreError> {
        debug_assert!(self.items.is_empty(), "the event record must be item 0");
        self.push_put(
            record.to_item(),
            Some((
                EVENT_WRITABLE,
                names(&[("#status", "status")]),
                event_writable_values(),
            )),
        )
    }

    /// The email item and the profile, each only if absent: two events for one
    /// new email cannot create two users.
    pub fn create_user(&mut self, user: &NewUser, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut email_item = key(keys::email(&user.email), keys::EMAIL);
        email_item.insert("kind".into(), s("EMAIL"));
        email_item.insert("user_id".into(), s(user.id.as_str()));
        email_item.insert("is_active".into(), bool(false));
        self.push_put(email_item, Some(("attribute_not_exists(pk)", None, None)))?;

        let mut profile = key(keys::user(&user.id), keys::PROFILE);
        profile.insert("kind".into(), s("USER"));
        profile.insert("user_id".into(), s(user.id.as_str()));
        profile.insert("email".into(), s(user.email.as_str()));
        profile.insert("is_active".into(), bool(false));
        profile.insert("auth_provider".into(), s(user.auth_provider.as_str()));
        profile.insert("metadata".into(), map_s(&user.metadata));
        profile.insert("created_at".into(), s(ts(now)));
        profile.insert("updated_at".into(), s(ts(now)));
        // The admin user listing: every profile, sorted by email.
        profile.insert("gsi3pk".into(), s(admin::USERS_PARTITION));
        profile.insert("gsi3sk".into(), s(user.email.as_str()));
        if let Some(first) = &user.first_name {
            profile.insert("first_name".into(), s(first.clone()));
        }
        if let Some(last) = &user.last_name {
            profile.insert("last_name".into(), s(last.clone()));
        }
        self.push_put(profile, Some(("attribute_not_exists(pk)", None, None)))
    }

    /// Links an existing user: checks the email still maps to it and merges
    /// metadata. The password and `auth_provider` are left as they are.
    pub fn link_user(
        &mut self,
        email: &Email,
        user_id: &UserId,
        metadata: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::email(email), keys::EMAIL)))
            .condition_expression("user_id = :uid")
            .expression_attribute_values(":uid", s(user_id.as_str()))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().condition_check(check).build());

        let mut expr = String::from("SET updated_at = :now, metadata.signup_date = if_not_exists(metadata.signup_date, :now)");
        let mut names = std::collections::HashMap::new();
        let mut vals = Item::from([(":now".to_string(), s(ts(now)))]);
        for (i, (k, v)) in metadata
            .iter()
            .filter(|(k, _)| k.as_str() != "signup_date")
            .enumerate()
        {
            expr.push_str(&format!(", metadata.#m{i} = :m{i}"));
            names.insert(format!("#m{i}"), k.clone());
            vals.insert(format!(":m{i}"), s(v.clone()));
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
                .update_expression(expr)
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_names(if names.is_empty() { None } else { Some(names) })
                .set_expression_attribute_values(Some(vals)),
        )
    }

    /// Writes a subscription. `expected_version` guards against a concurrent change:
    /// `None` means the caller saw no subscription, and the write fails if one
    /// appeared since, so two first events never race to a blind overwrite.
    #[allow(clippy::too_many_arguments)]
    pub fn put_subscription(
        &mut self,
        user_id: &UserId,
        provider: Provider,
        row: &str,
        plan_id: &str,
        view: &SubscriptionView,
        expected_version: Option<i64>,
        last_event: &EventKey,
        watermark: (DateTime<Utc>, i64),
        now: DateTime<Utc>,
        provider_ref: Option<&str>,
        one_time: bool,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::user(user_id), &keys::subscription(provider, row));
        // Bought outright (a pass, a lifetime plan): never taken over by a subscription.
        if one_time {
            item.insert("one_time".into(), AttributeValue::Bool(true));
        }
        // The provider's id for it (Stripe subscription, Paystack subscription
        // code, Kajabi customer): what admin verify and sync look up.
        if let Some(reference) = provider_ref {
            item.insert("provider_ref".into(), s(reference));
        }
        item.insert("kind".into(), s("SUBSCRIPTION"));
        item.insert("user_id".into(), s(user_id.as_str()));
        item.insert("provider".into(), s(provider.as_str()));
        item.insert("plan_id".into(), s(plan_id));
        item.insert("state".into(), s(view.state.as_str()));
        if let Some(end) = view.period_end {
            item.insert("period_end".into(), s(ts(end)));
        }
        if let Some(until) = view.access_until {
            item.insert("access_until".into(), s(ts(until)));
            // Sparse index: only canceled subscriptions wait for the sweeper to expire them.
            if view.state == SubscriptionState::Canceled {
                item.insert("gsi2pk".into(), s(CANCELED_BY_ACCESS_END));
                item.insert("gsi2sk".into(), s(ts(until)));
            }
        }
        item.insert("updated_at".into(), s(ts(now)));
        item.insert("last_event".into(), s(last_event.to_string()));
        item.insert("watermark".into(), s(ts(watermark.0)));
        item.insert("watermark_rank".into(), n(watermark.1));
        item.insert("version".into(), n(expected_version.unwrap_or(0) + 1));
        match expected_version {
            Some(v) => self.push_put(
                item,
                Some(("version = :v", None, values(vec![(":v", n(v))]))),
            ),
            None => self.push_put(item, Some(("attribute_not_exists(pk)", None, None))),
        }
    }

    /// Records the provider's id for a subscription that has none, leaving the
    /// rest as it is: what an older event that names it still contributes.
    pub fn set_subscription_ref(
        &mut self,
        user_id: &UserId,
        provider: Provider,
        row: &str,
        provider_ref: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::user(user_id),
                    &keys::subscription(provider, row),
                )))
                .update_expression("SET provider_ref = :r, version = :next")
                .condition_expression("version = :v AND attribute_not_exists(provider_ref)")
                .set_expression_attribute_values(values(vec![
                    (":r", s(provider_ref)),
                    (":v", n(expected_version)),
                    (":next", n(expected_version + 1)),
                ])),
        )
    }

    /// Removes a row that another takes over (a plan-keyed Stripe row moving
    /// to its subscription's id), if it is unchanged since it was read.
    pub fn delete_subscription(
        &mut self,
        user_id: &UserId,
        provider: Provider,
        row: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::user(user_id),
                &keys::subscription(provider, row),
            )))
            .condition_expression("version = :v")
            .set_expression_attribute_values(values(vec![(":v", n(expected_version))]))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    /// Replaces the user's setup token (so older links stop working).
    pub fn put_setup_token(
        &mut self,
        user_id: &UserId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
        job: &JobId,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::user(user_id), keys::SETUP_TOKEN);
        item.insert("kind".into(), s("TOKEN"));
        item.insert("token_hash".into(), s(token_hash));
        item.insert("expires_at".into(), s(ts(expires_at)));
        item.insert("job_id".into(), s(job.as_str()));
        // TTL only tidies up: expiry is enforced by comparing expires_at.
        item.insert("ttl".into(), n(expires_at.timestamp() + 86_400));
        self.push_put(item, None)
    }

    /// Creates or updates a payment record, keeping its first-seen time and what it granted.
    pub fn upsert_payment(
        &mut self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Every name is aliased: several (status, provider, reference, ...) are DynamoDB reserved words.
        let mut fields: Vec<(&str, AttributeValue)> = vec![
            ("kind", s("PAYMENT")),
            ("provider", s(payment.provider.as_str())),
            ("reference", s(payment.reference.clone())),
            ("status", s(payment.status.clone())),
            ("updated_at", s(ts(now))),
        ];
        if let Some(amount) = payment.amount {
            fields.push(("amount", n(amount)));
        }
        if let Some(currency) = &payment.currency {
            fields.push(("currency", s(currency.to_ascii_lowercase())));
        }
        if let Some(user) = &payment.user_id {
            fields.push(("user_id", s(user.as_str())));
        }
        if let Some(plan) = &payment.plan_id {
            fields.push(("plan_id", s(plan.clone())));
        }
        let mut sets: Vec<String> = Vec::new();
        let mut attr_names = std::collections::HashMap::new();
        let mut vals = Item::new();
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#f{i} = :f{i}"));
            attr_names.insert(format!("#f{i}"), name.to_string());
            vals.insert(format!(":f{i}"), value);
        }
        attr_names.insert("#created".into(), "created_at".into());
        vals.insert(":now".into(), s(ts(now)));
        sets.push("#created = if_not_exists(#created, :now)".into());
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::payment(payment.provider, &payment.reference),
                    keys::PAYMENT,
                )))
                .update_expression(format!("SET {}", sets.join(", ")))
                .set_expression_attribute_names(Some(attr_names))
                .set_expression_attribute_values(Some(vals)),
        )
    }

    /// Maps a provider's customer id to the user, first seen with an email.
    /// `waiting` is what the caller read: the commit fails if another event
    /// started waiting on the customer since, so none is left behind.
    pub fn put_customer(
        &mut self,
        provider: Provider,
        customer_id: &str,
        user_id: &UserId,
        waiting: &Waiting,
    ) -> Result<(), StoreError> {
        let mut vals = Item::from([
            (":uid".to_string(), s(user_id.as_str())),
            (":kind".to_string(), s("PROVIDER_CUSTOMER")),
        ]);
        let unchanged = match waiting.version {
            Some(version) => {
                vals.insert(":wv".into(), n(version));
                "waiting_version = :wv"
            }
            None => "attribute_not_exists(waiting_version)",
        };
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::customer(provider, customer_id),
                    keys::CUSTOMER,
                )))
                .update_expression("SET user_id = :uid, kind = :kind")
                .condition_expression(format!(
                    "(attribute_not_exists(user_id) OR user_id = :uid) AND {unchanged}"
                ))
                .set_expression_attribute_values(Some(vals)),
        )
    }

    /// Adds an event to those waiting on a customer no purchase has mapped
    /// yet; fails if one has been mapped since the caller looked.
    pub fn wait_on_customer(
        &mut self,
        provider: Provider,
        customer_id: &str,
        waiting: &WaitingEvent,
    ) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::customer(provider, customer_id),
                    keys::CUSTOMER,
                )))
                .update_expression("SET kind = :kind ADD waiting :entry, waiting_version :one")
                .condition_expression("attribute_not_exists(user_id)")
                .set_expression_attribute_values(values(vec![
                    (":kind", s("PROVIDER_CUSTOMER")),
                    (":entry", AttributeValue::Ss(vec![waiting.entry.clone()])),
                    (":one", n(1)),
                ])),
        )
    }

    pub fn put_job(&mut self, job: &EmailJob) -> Result<(), StoreError> {
        let mut item = key(keys::job(&job.id), keys::JOB);
        item.insert("kind".into(), s("OUTBOX"));
        item.insert("job_id".into(), s(job.id.as_str()));
        item.insert("template".into(), s(job.template.as_str()));
        item.insert("to".into(), s(job.to.as_str()));
        item.insert("data".into(), map_s(&job.data));
        item.insert("status".into(), s("pending"));
        item.insert("created_at".into(), s(ts(job.created_at)));
        item.insert("gsi1pk".into(), s(OUTBOX_PENDING));
        item.insert(
            "gsi1sk".into(),
            s(format!("{}#{}", ts(job.created_at), job.id)),
        );
        self.push_put(item, Some(("attribute_not_exists(pk)", None, None)))
    }

    /// Adds one to a counter, failing the transaction if it already reached `limit`.
    pub fn count_within(
        &mut self,
        scope: &str,
        bucket: &str,
        limit: u32,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::rate(scope, bucket), keys::RATE)))
                .update_expression("ADD #count :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .set_expression_attribute_names(names(&[("#count", "count"), ("#ttl", "ttl")]))
                .set_expression_attribute_values(values(vec![
                    (":one", n(1)),
                    (":limit", n(limit)),
                    (":ttl", n(expires_at.timestamp())),
                ])),
        )
    }

    /// Activates the account: the token must still be the one checked, and is consumed.
    pub fn activate_user(
        &mut self,
        user_id: &UserId,
        email: &Email,
        token_hash: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::user(user_id), keys::SETUP_TOKEN)))
            .condition_expression("token_hash = :h")
            .expression_attribute_values(":h", s(token_hash))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().delete(delete).build());
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user_id), keys::PROFILE)))
                .update_expression("SET password_hash = :p, is_active = :t, activated_at = if_not_exists(activated_at, :now), updated_at = :now")
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_values(values(vec![
                    (":p", s(password_hash)),
                    (":t", bool(true)),
                    (":now", s(ts(now))),
                ])),
        )?;
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::email(email), keys::EMAIL)))
                .update_expression("SET is_active = :t")
                .condition_expression("user_id = :uid")
                .set_expression_attribute_values(values(vec![
                    (":t", bool(true)),
                    (":uid", s(user_id.as_str())),
                ])),
        )
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

    /// Writes a terminal event record (failed / ignored) on its own. Returns the
    /// existing record when one in a final state is already there.
    pub async fn record_event(
        &self,
        record: &EventRecord,
    ) -> Result<Option<EventRecord>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record.to_item()))
            .condition_expression(EVENT_WRITABLE)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(event_writable_values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                    match e.item() {
                        Some(item) => Ok(Some(EventRecord::from_item(item)?)),
                        None => Err(StoreError::Corrupt("condition failed without the old item".into())),
                    }
                }
                other => Err(request_error(other)),
            },
            Err(other) => Err(request_error(other)),
        }
    }

    /// One round trip: the event record and the email mapping together.
    pub async fn load_event_and_email(
        &self,
        event: &EventKey,
        email: Option<&Email>,
    ) -> Result<(Option<EventRecord>, Option<EmailRecord>), StoreError> {
        let loaded = self.load_for_event(event, email, None).await?;
        Ok((loaded.event, loaded.email))
    }

    /// One round trip: the event record, and the email and customer mappings when asked.
    pub async fn load_for_event(
        &self,
        event: &EventKey,
        email: Option<&Email>,
        customer: Option<(Provider, &str)>,
    ) -> Result<Loaded, StoreError> {
        let mut keys_to_get = vec![key(keys::event(event), keys::EVENT)];
        if let Some(email) = email {
            keys_to_get.push(key(keys::email(email), keys::EMAIL));
        }
        if let Some((provider, id)) = customer {
            keys_to_get.push(key(keys::customer(provider, id), keys::CUSTOMER));
        }
        let found = self.batch_get(keys_to_get).await?;
        let mut event_record = None;
        let mut email_record = None;
        let mut customer_user = None;
        let mut customer_waiting = Waiting::default();
        for item in &found {
            match get_s(item, "sk") {
                Some(keys::CUSTOMER) => {
                    customer_user = get_s(item, "user_id").map(UserId::from_stored);
                    customer_waiting = Waiting::from_item(item);
                }
                Some(keys::EVENT) => event_record = Some(EventRecord::from_item(item)?),
                Some(keys::EMAIL) => {
                    email_record = Some(EmailRecord {
                        user_id: UserId::from_stored(
                            get_s(item, "user_id")
                                .ok_or_else(|| StoreError::Corrupt("email item: user_id".into()))?,
                        ),
                        is_active: get_bool(item, "is_active").unwrap_or(false),
                    })
                }
                _ => {}
            }
        }
        Ok(Loaded {
            event: event_record,
            email: email_record,
            customer_user,
            customer_waiting,
        })
    }

    /// A provider customer's mapping and the events waiting on it.
    pub async fn get_customer(
        &self,
        provider: Provider,
        customer_id: &str,
    ) -> Result<CustomerRecord, StoreError> {
        let item = self
            .get(keys::customer(provider, customer_id), keys::CUSTOMER)
            .await?;
        Ok(item
            .map(|item| CustomerRecord {
                user_id: get_s(&item, "user_id").map(UserId::from_stored),
                waiting: Waiting::from_item(&item),
            })
            .unwrap_or_default())
    }

    /// Takes an event off a customer's waiting set once it has been applied
    /// (or found already final).
    pub async fn release_waiting(
        &self,
        provider: Provider,
        customer_id: &str,
        waiting: &WaitingEvent,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::customer(provider, customer_id),
                keys::CUSTOMER,
            )))
            .update_expression("DELETE waiting :entry")
            .expression_attribute_values(":entry", AttributeValue::Ss(vec![waiting.entry.clone()]))
            .send()
            .await
            .map_err(request_error)?;
        Ok(())
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

    pub async fn get_email(&self, email: &Email) -> Result<Option<EmailRecord>, StoreError> {
        Ok(self
            .get(keys::email(email), keys::EMAIL)
            .await?
            .map(|item| EmailRecord {
                user_id: UserId::from_stored(get_s(&item, "user_id").unwrap_or_default()),
                is_active: get_bool(&item, "is_active").unwrap_or(false),
            }))
    }

    pub async fn get_event(&self, event: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.get(keys::event(event), keys::EVENT)
            .await?
            .map(|item| EventRecord::from_item(&item))
            .transpose()
    }

    pub async fn get_profile(&self, user: &UserId) -> Result<Option<Item>, StoreError> {
        self.get(keys::user(user), keys::PROFILE).await
    }

    /// The member's email, as the profile holds it (`None`: no profile, or
    /// an address that no longer parses).
    pub async fn profile_email(&self, user: &UserId) -> Result<Option<Email>, StoreError> {
        Ok(self
            .get_profile(user)
            .await?
            .and_then(|p| get_s(&p, "email").and_then(|e| Email::parse(e).ok())))
    }

    pub async fn get_subscription(
        &self,
        user: &UserId,
        provider: Provider,
        row: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.get(keys::user(user), &keys::subscription(provider, row))
            .await?
            .map(|item| SubscriptionRecord::from_item(&item))
            .transpose()
    }

    /// Every subscription a user holds with one provider.
    pub async fn subscriptions(
        &self,
        user: &UserId,
        provider: Option<Provider>,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let prefix = match provider {
            Some(p) => format!("SUB#{p}#"),
            None => "SUB#".to_string(),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::user(user)))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .send()
            .await
            .map_err(request_error)?;
        out.items()
            .iter()
            .map(SubscriptionRecord::from_item)
            .collect()
    }

    pub async fn get_payment(
        &self,
        provider: Provider,
        reference: &str,
    ) -> Result<Option<Payment>, StoreError> {
        Ok(self
            .get(keys::payment(provider, reference), keys::PAYMENT)
            .await?
            .and_then(|item| Payment::from_item(&item)))
    }

    pub async fn get_setup_token(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .get(keys::user(user), keys::SETUP_TOKEN)
            .await?
            .and_then(|item| {
                Some(TokenRecord {
                    token_hash: get_s(&item, "token_hash")?.to_string(),
                    expires_at: get_ts(&item, "expires_at")?,
                })
            }))
    }

    pub async fn get_job(&self, job: &JobId) -> Result<Option<StoredJob>, StoreError> {
        self.get(keys::job(job), keys::JOB)
            .await?
            .map(|item| StoredJob::from_item(&item))
            .transpose()
    }

    /// Notes a redelivery whose body differs from the recorded one.
    /// Notes a redelivery whose body differed, up to [`MAX_DUPLICATE_BODIES`]
    /// of them: past that the record keeps the first ones, so it never outgrows
    /// DynamoDB's item limit and the redelivery is still answered.
    pub async fn note_duplicate_body(
        &self,
        event: &EventKey,
        body_hash: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::event(event), keys::EVENT)))
            .update_expression("SET duplicate_body_hashes = list_append(if_not_exists(duplicate_body_hashes, :empty), :h)")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(duplicate_body_hashes) OR size(duplicate_body_hashes) < :max)",
            )
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":h", AttributeValue::L(vec![s(body_hash)]))
            .expression_attribute_values(":max", n(MAX_DUPLICATE_BODIES))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(other) => Err(request_error(other)),
        }
    }

    /// Claims a job for sending with a lease, so two deliveries of one SQS
    /// message cannot both send it.
    pub async fn claim_job(
        &self,
        job: &JobId,
        claim_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::job(job), keys::JOB)))
            .update_expression("SET #status = :sending, lease_until = :lease, claim_id = :claim, attempts = if_not_exists(attempts, :zero) + :one")
            .condition_expression("attribute_exists(pk) AND (#status = :pending OR (#status = :sending AND lease_until < :now))")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(values(vec![
                (":sending", s("sending")),
                (":pending", s("pending")),
                (":lease", n(lease_until.timestamp_millis())),
                (":now", n(now.timestamp_millis())),
                (":claim", s(claim_id)),
                (":zero", n(0)),
                (":one", n(1)),
            ]))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Claim::Claimed(StoredJob::from_item(&item)?)),
                None => Err(StoreError::Corrupt("claim returned no attributes".into())),
            },
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                    Ok(match e.item().map(|item| get_s(item, "status").map(str::to_string)) {
                        None => Claim::NotFound,
                        Some(Some(status)) if status == "sent" => Claim::AlreadySent,
                        Some(Some(status)) if status == "parked" => Claim::Parked,
                        Some(_) => Claim::InFlight,
                    })
                }
                other => Err(request_error(other)),
            },
            Err(other) => Err(request_error(other)),
        }
    }

    /// Marks a job sent and takes it off the pending index: under `claim_id`
    /// when the sender holds the claim, or under any claim when SES's message
    /// id proves it was sent (the confirmation after a failed mark).
    pub async fn mark_job_sent(
        &self,
        job: &JobId,
        claim_id: Option<&str>,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut vals = vec![
            (":sent", s("sent")),
            (":now", s(ts(now))),
            (":mid", s(message_id)),
        ];
        let condition = match claim_id {
            Some(claim) => {
                vals.push((":sending", s("sending")));
                vals.push((":claim", s(claim)));
                "claim_id = :claim AND #status = :sending"
            }
            None => "attribute_exists(pk) AND #status <> :sent",
        };
        self.update_job(
            job,
            "SET #status = :sent, sent_at = :now, ses_message_id = :mid REMOVE gsi1pk, gsi1sk, lease_until, claim_id",
            condition,
            vals,
        )
        .await
    }

    /// Parks a claimed job that cannot succeed: off the pending index (so the
    /// sweeper never re-enqueues it), kept with its reason for the admin view.
    /// `false` when the claim was no longer this sender's.
    pub async fn park_job(
        &self,
        job: &JobId,
        claim_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_job(
            job,
            "SET #status = :parked, last_error = :err, parked_at = :now REMOVE gsi1pk, gsi1sk, lease_until, claim_id",
            "claim_id = :claim AND #status = :sending",
            vec![
                (":parked", s("parked")),
                (":sending", s("sending")),
                (":err", s(reason)),
                (":now", s(ts(now))),
                (":claim", s(claim_id)),
            ],
        )
        .await
    }

    /// One conditional update of a job item: `false` when the condition did
    /// not hold (another delivery holds the claim, or the job moved on).
    async fn update_job(
        &self,
        job: &JobId,
        update: &str,
        condition: &str,
        vals: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::job(job), keys::JOB)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(values(vals))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(other) => Err(request_error(other)),
        }
    }

    /// Gives a claimed job back after a failed send, so a retry can claim it at once.
    /// Its place on the pending index moves to `now`: the sweeper comes back
    /// to it a full sweep delay after this failure, and jobs that keep failing
    /// never crowd older ones out of a sweep.
    pub async fn release_job(
        &self,
        job: &JobId,
        claim_id: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_job(
            job,
            "SET #status = :pending, last_error = :err, gsi1sk = :due REMOVE lease_until, claim_id",
            "claim_id = :claim AND #status = :sending",
            vec![
                (":pending", s("pending")),
                (":sending", s("sending")),
                (":err", s(error)),
                (":due", s(format!("{}#{}", ts(now), job))),
                (":claim", s(claim_id)),
            ],
        )
        .await
        .map(|_| ())
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

    /// Canceled subscriptions whose access ends by `cutoff`, as (user, provider, row).
    pub async fn canceled_ending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(UserId, Provider, String)>, StoreError> {
        let keys = self
            .index_keys_before("gsi2", CANCELED_BY_ACCESS_END, ts(cutoff), true, limit)
            .await?;
        Ok(keys
            .iter()
            .filter_map(|(pk, sk)| {
                let user = pk.strip_prefix("USER#")?;
                let (provider, row) = sk.strip_prefix("SUB#")?.split_once('#')?;
                Some((
                    UserId::from_stored(user),
                    Provider::parse(provider)?,
                    row.to_string(),
                ))
            })
            .collect())
    }

    /// Pending job ids created before `cutoff`, oldest first, at most `limit`.
    pub async fn pending_jobs_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobId>, StoreError> {
        let keys = self
            .index_keys_before("gsi1", OUTBOX_PENDING, ts(cutoff), false, limit)
            .await?;
        Ok(keys
            .iter()
            .filter_map(|(pk, _)| pk.strip_prefix("OUTBOX#"))
            .map(JobId::from_stored)
            .collect())
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
