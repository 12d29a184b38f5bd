//! Subscription rows: keyed by the provider's subscription or the plan (`service::rows`), versioned
//! and watermarked.

use super::*;

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

impl Tx {
    /// Writes a new view onto an existing row and keeps everything else it
    /// has (key, plan, watermark, provider id, one-time mark): a change that
    /// is no newer provider state (a refund's revocation, the sweeper's
    /// expiry, a stale payment's paid period).
    pub fn restate_subscription(
        &mut self,
        current: &SubscriptionRecord,
        view: &SubscriptionView,
        last_event: &EventKey,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.put_subscription(
            &current.user_id,
            current.provider,
            &current.row,
            &current.plan_id,
            view,
            Some(current.version),
            last_event,
            (current.watermark.unwrap_or(now), current.watermark_rank),
            now,
            current.provider_ref.as_deref(),
            current.one_time,
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
}

impl Store {
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
}
