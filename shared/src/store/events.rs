//! The event records: one per delivery, the duplicate rule's condition, and the first read of every
//! event.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Processed,
    Ignored,
    Failed,
    Superseded,
    Unmatched,
    /// Waiting for its member to become known (applied when they are).
    Pending,
    /// An unmatched course completion an admin dismissed, with the reason:
    /// final, so neither a redelivery nor a later account applies it.
    Dismissed,
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
            Self::Dismissed => "dismissed",
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
            "dismissed" => Self::Dismissed,
            _ => return None,
        })
    }

    /// Only a final record makes a redelivery a duplicate; `failed`,
    /// `pending` and `unmatched` are processed again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Failed | Self::Pending | Self::Unmatched)
    }

    /// Recorded and waiting on a provider customer to be applied.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Pending | Self::Unmatched)
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
        } else if let Some(partition) = admin::completions_partition(self.status)
            .filter(|_| admin::is_completion_type(&self.event_type))
        {
            // Completions for review share the user-events index under a
            // partition no user id can be.
            item.insert("gsi5pk".into(), s(partition));
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

/// What `Store::load_for_event` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub event: Option<EventRecord>,
    pub email: Option<EmailRecord>,
    pub customer_user: Option<UserId>,
    /// Events waiting on the customer (read with the customer mapping).
    pub customer_waiting: Waiting,
    /// Course completions waiting for an account with the email.
    pub completions_waiting: Waiting,
}

/// Condition under which an event record may be written: new, or replacing a
/// failed, pending or unmatched attempt.
const EVENT_WRITABLE: &str =
    "attribute_not_exists(pk) OR #status IN (:failed, :pending, :unmatched)";

fn event_writable_values() -> Option<Item> {
    values(vec![
        (":failed", s("failed")),
        (":pending", s("pending")),
        (":unmatched", s("unmatched")),
    ])
}

impl Tx {
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
}

impl Tx {
    /// Holds only while the event record still has `status`.
    pub fn check_event_status(
        &mut self,
        event: &EventKey,
        status: EventStatus,
    ) -> Result<(), StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::event(event), keys::EVENT)))
            .condition_expression("#status = :status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .build()
            .map_err(request_error)?;
        self.items
            .push(TransactWriteItem::builder().condition_check(check).build());
        Ok(())
    }

    /// An admin dismisses an unmatched completion: final, with the reason,
    /// and listed with the dismissed ones. Holds only while it is unmatched.
    pub fn dismiss_completion(&mut self, event: &EventKey, reason: &str) -> Result<(), StoreError> {
        let partition = admin::completions_partition(EventStatus::Dismissed).unwrap_or_default();
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::event(event), keys::EVENT)))
                .update_expression(
                    "SET #status = :dismissed, reason = :reason, gsi5pk = :partition REMOVE waiting_on",
                )
                .condition_expression("#status = :unmatched AND attribute_not_exists(user_id)")
                .expression_attribute_names("#status", "status")
                .set_expression_attribute_values(values(vec![
                    (":dismissed", s(EventStatus::Dismissed.as_str())),
                    (":unmatched", s(EventStatus::Unmatched.as_str())),
                    (":reason", s(reason)),
                    (":partition", s(partition)),
                ])),
        )
    }
}

impl Store {
    /// The event records with these keys that exist (consistent reads, 100 a request).
    pub async fn get_events(&self, wanted: &[EventKey]) -> Result<Vec<EventRecord>, StoreError> {
        let keys: Vec<Item> = wanted
            .iter()
            .map(|event| key(keys::event(event), keys::EVENT))
            .collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                found.push(EventRecord::from_item(&item)?);
            }
        }
        Ok(found)
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

    /// One round trip: the event record, and the email and customer mappings when asked.
    pub async fn load_for_event(
        &self,
        event: &EventKey,
        email: Option<&Email>,
        customer: Option<(Provider, &str)>,
    ) -> Result<Loaded, StoreError> {
        let mut keys_to_get = vec![key(keys::event(event), keys::EVENT)];
        // What waits on the email (course completions), in the same round trip.
        let completions = email.map(|e| keys::customer(Provider::Kajabi, &completion_customer(e)));
        let customer_pk = customer.map(|(provider, id)| keys::customer(provider, id));
        if let Some(email) = email {
            keys_to_get.push(key(keys::email(email), keys::EMAIL));
        }
        if let Some(pk) = &customer_pk {
            keys_to_get.push(key(pk.clone(), keys::CUSTOMER));
        }
        if let Some(pk) = completions
            .as_ref()
            .filter(|pk| customer_pk.as_ref() != Some(pk))
        {
            keys_to_get.push(key(pk.clone(), keys::CUSTOMER));
        }
        let found = self.batch_get(keys_to_get).await?;
        let mut event_record = None;
        let mut email_record = None;
        let mut customer_user = None;
        let mut customer_waiting = Waiting::default();
        let mut completions_waiting = Waiting::default();
        for item in &found {
            match get_s(item, "sk") {
                Some(keys::CUSTOMER) => {
                    let pk = get_s(item, "pk");
                    if pk.is_some() && pk == completions.as_deref() {
                        completions_waiting = Waiting::from_item(item);
                    }
                    if pk.is_some() && pk == customer_pk.as_deref() {
                        customer_user = get_s(item, "user_id").map(UserId::from_stored);
                        customer_waiting = Waiting::from_item(item);
                    }
                }
                Some(keys::EVENT) => event_record = Some(EventRecord::from_item(item)?),
                Some(keys::EMAIL) => {
                    email_record = Some(EmailRecord {
                        user_id: UserId::from_stored(
                            get_s(item, "user_id")
                                .ok_or_else(|| StoreError::Corrupt("email item: user_id".into()))?,
                        ),
                        is_active: get_bool(item, "is_active").unwrap_or(false),
                        awaiting_payment: get_bool(item, "awaiting_payment").unwrap_or(false),
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
            completions_waiting,
        })
    }

    pub async fn get_event(&self, event: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.get(keys::event(event), keys::EVENT)
            .await?
            .map(|item| EventRecord::from_item(&item))
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
}
