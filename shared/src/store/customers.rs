//! Provider customers: which member each is mapped to, and the events waiting for their member.

use super::*;

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
    pub(super) fn from_item(item: &Item) -> Self {
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

/// The Kajabi customer key course completions for `email` wait on: apart
/// from the Kajabi purchase's own (`email-sha256:…`), so linking completions
/// never looks like a purchase to the lifecycle rules.
pub fn completion_customer(email: &Email) -> String {
    format!(
        "completion:email-sha256:{}",
        crate::signature::sha256_hex(email.as_str().as_bytes())
    )
}

impl Tx {
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

    /// Holds only while nothing more began waiting on the customer since
    /// `waiting` was read: a new account's transaction checks its email's
    /// completion key, so no completion starts waiting unseen.
    pub fn check_waiting_unchanged(
        &mut self,
        provider: Provider,
        customer_id: &str,
        waiting: &Waiting,
    ) -> Result<(), StoreError> {
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::customer(provider, customer_id),
                keys::CUSTOMER,
            )));
        check = match waiting.version {
            Some(version) => check
                .condition_expression("waiting_version = :wv")
                .expression_attribute_values(":wv", n(version)),
            None => check.condition_expression("attribute_not_exists(waiting_version)"),
        };
        self.items.push(
            TransactWriteItem::builder()
                .condition_check(check.build().map_err(request_error)?)
                .build(),
        );
        Ok(())
    }

    /// Takes one event off those waiting on a customer that no member has
    /// been linked to (it will never apply); fails once one has, since that
    /// link is about to apply it.
    pub fn release_unlinked(
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
                .update_expression("DELETE waiting :entry")
                .condition_expression("attribute_not_exists(user_id)")
                .expression_attribute_values(
                    ":entry",
                    AttributeValue::Ss(vec![waiting.entry.clone()]),
                ),
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
}

impl Store {
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
}
