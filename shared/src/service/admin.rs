//! Admin reads: users and events, listed through the sparse indexes and shown
//! whole. Every list is `{"items": [...], "next_cursor": ...}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::session::member_json;
use super::{ServiceError, Services};
use crate::admin::listing::{encode_event_key, Cursor, EventQuery, UserQuery};
use crate::domain::{EventKey, UserId};
use crate::store::admin::{
    EventRow, FilterValue, IndexQuery, IndexRow, UserRow, EVENTS_INDEX, EVENTS_PARTITION,
    USERS_INDEX, USERS_PARTITION, USER_EVENTS_INDEX,
};
use crate::store::timestamp as ts;
use crate::store::{JobStatus, SubscriptionRecord};

/// A list row being made from one index item (it may read more).
type RowFuture<'s> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<Value>, ServiceError>> + Send + 's>,
>;

/// How many index pages one list request reads at most before it hands back
/// a cursor, so a sparse filter cannot run into API Gateway's 30 s.
const MAX_PAGES_PER_REQUEST: usize = 10;
/// Events shown with a user.
const RECENT_EVENTS: i32 = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

impl ListPage {
    pub fn to_json(&self) -> Value {
        json!({"items": self.items, "next_cursor": self.next_cursor})
    }
}

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A user row from the users index (never the password hash: it is not projected).
fn user_summary(user: &UserRow, subscriptions: Option<&[SubscriptionRecord]>) -> Value {
    let mut row = json!({
        "user_id": user.user_id.as_str(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "auth_provider": user.auth_provider,
        "partner": user.metadata.get("partner"),
        "points": user.points,
        "created_at": user.created_at,
    });
    if let Some(subs) = subscriptions {
        row["subscriptions"] = subs
            .iter()
            .map(|s| json!({"provider": s.provider.as_str(), "plan": s.plan_id, "subscription": s.provider_ref, "state": s.view.state.as_str()}))
            .collect();
    }
    row
}

/// A payment for admins: the amount as decimal money in its currency's
/// exponent (NGN kobo, USD cents, JPY whole), and the minor units it is kept in.
pub fn payment_summary(
    payment: &crate::store::PaymentRow,
    plans: &crate::domain::PlanCatalog,
    now: DateTime<Utc>,
) -> Value {
    // A pass paid for and queued behind another is `upcoming` until its days start.
    let upcoming = payment.status == "succeeded" && payment.starts_at.is_some_and(|t| t > now);
    let money = match (payment.amount, payment.currency.as_deref()) {
        (Some(amount), Some(currency)) => Some(format!(
            "{} {}",
            crate::domain::decimal_amount(amount, currency),
            currency.to_uppercase()
        )),
        _ => None,
    };
    json!({
        "provider": payment.provider.as_str(),
        "reference": payment.reference,
        "status": payment.status,
        "amount": money,
        "amount_minor": payment.amount,
        "currency": payment.currency.as_deref().map(str::to_uppercase),
        "plan": payment.plan_id,
        "plan_name": payment.plan_id.as_deref().and_then(|p| plans.get(p)).map(|p| p.name.clone()),
        "user_id": payment.user_id,
        "checkout": payment.origin.as_deref() == Some("checkout"),
        "reason": payment.reason,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
        "starts_at": time(payment.starts_at),
        "upcoming": upcoming,
    })
}

fn event_summary(event: &EventRow) -> Value {
    let provider = event.key.provider();
    json!({
        "key": format!("{}:{}", provider, event.key.event_id()),
        "ref": encode_event_key(&event.key),
        "provider": provider.as_str(),
        "event_id": event.key.event_id(),
        "type": event.event_type,
        "status": event.status,
        "reason": event.reason,
        "received_at": event.received_at,
        "user_id": event.user_id,
    })
}

impl Services {
    /// Does the member pass the subscription filters? A role is judged as
    /// the member's sessions see it: plans, Kajabi tags, grants and revokes.
    fn subscriptions_match(
        &self,
        query: &UserQuery,
        member: &crate::store::MemberRecord,
        now: DateTime<Utc>,
    ) -> bool {
        let subs = &member.subscriptions;
        if query.subscription_status.is_some() || query.plan.is_some() {
            let found = subs.iter().any(|s| {
                query
                    .subscription_status
                    .is_none_or(|st| s.view.state == st)
                    && query.plan.as_deref().is_none_or(|p| s.plan_id == p)
            });
            if !found {
                return false;
            }
        }
        if query.role.is_some() || query.permission.is_some() {
            let held = self.entitlements_of(member, now);
            if query.role.as_ref().is_some_and(|r| !held.roles.contains(r))
                || query
                    .permission
                    .as_ref()
                    .is_some_and(|p| !held.permissions.contains(p))
            {
                return false;
            }
        }
        true
    }

    /// `GET /admin/users`: the users index by email, filtered. Subscription,
    /// plan and role filters read each candidate's subscriptions (one Query each).
    pub async fn admin_list_users(&self, query: &UserQuery) -> Result<ListPage, ServiceError> {
        let now = self.now();
        let mut index = IndexQuery {
            index: USERS_INDEX,
            partition: USERS_PARTITION.into(),
            sort_prefix: query.email_prefix.clone(),
            limit: query.limit as i32,
            start: query.cursor.as_ref().map(|c| c.0.clone()),
            ..Default::default()
        };
        if let Some(active) = query.is_active {
            index.and_equals("is_active", FilterValue::Flag(active));
        }
        if let Some(provider) = query.auth_provider {
            index.and_equals("auth_provider", text(provider.as_str()));
        }
        let fingerprint = query.fingerprint();
        self.fill_page(index, query.limit, &fingerprint, |row: IndexRow| {
            Box::pin(async move {
                let Some(user) = row.user() else {
                    return Ok(None);
                };
                if !query.needs_subscriptions() {
                    return Ok(Some(user_summary(&user, None)));
                }
                // One Query over the member's partition, as for their session.
                let Some(member) = self.store.load_member(&user.user_id).await? else {
                    return Ok(None);
                };
                Ok(self
                    .subscriptions_match(query, &member, now)
                    .then(|| user_summary(&user, Some(&member.subscriptions))))
            })
        })
        .await
    }

    /// `GET /admin/payments`: newest first, from the payments listing or, with
    /// `user`, that member's; amounts as decimal money in their currency.
    pub async fn admin_list_payments(
        &self,
        query: &crate::admin::listing::PaymentQuery,
    ) -> Result<ListPage, ServiceError> {
        let (index_name, partition) = match &query.user {
            Some(user) => (
                USER_EVENTS_INDEX,
                crate::store::admin::user_payments_partition(user),
            ),
            None => (
                EVENTS_INDEX,
                crate::store::admin::PAYMENTS_PARTITION.to_string(),
            ),
        };
        let mut index = IndexQuery {
            index: index_name,
            partition,
            limit: query.limit as i32,
            start: query.cursor.as_ref().map(|c| c.0.clone()),
            descending: true,
            ..Default::default()
        };
        index.sort_between = time_range(query.from, query.to);
        if let Some(provider) = query.provider {
            index.and_equals("provider", text(provider.as_str()));
        }
        if let Some(status) = &query.status {
            index.and_equals("status", text(status));
        }
        let fingerprint = query.fingerprint();
        self.fill_page(index, query.limit, &fingerprint, |row: IndexRow| {
            Box::pin(async move {
                Ok(self
                    .store
                    .payment_row(&row)
                    .await?
                    .map(|p| payment_summary(&p, &self.settings.plans, self.now())))
            })
        })
        .await
    }

    /// A member's payments, newest first (at most `limit`).
    pub async fn member_payments(
        &self,
        user: &UserId,
        limit: i32,
    ) -> Result<Vec<Value>, ServiceError> {
        let page = self
            .store
            .query_index(IndexQuery {
                index: USER_EVENTS_INDEX,
                partition: crate::store::admin::user_payments_partition(user),
                limit,
                descending: true,
                ..Default::default()
            })
            .await?;
        Ok(self
            .store
            .payment_rows(&page.rows)
            .await?
            .iter()
            .map(|p| payment_summary(p, &self.settings.plans, self.now()))
            .collect())
    }

    /// `GET /admin/events`: newest first, from the all-events index or, with
    /// `user`, from that user's.
    pub async fn admin_list_events(&self, query: &EventQuery) -> Result<ListPage, ServiceError> {
        let (index_name, partition) = match &query.user {
            Some(user) => (USER_EVENTS_INDEX, user.as_str().to_string()),
            None => (EVENTS_INDEX, EVENTS_PARTITION.to_string()),
        };
        let mut index = IndexQuery {
            index: index_name,
            partition,
            limit: query.limit as i32,
            start: query.cursor.as_ref().map(|c| c.0.clone()),
            descending: true,
            ..Default::default()
        };
        index.sort_between = time_range(query.from, query.to);
        if let Some(provider) = query.provider {
            index.and_equals("provider", text(provider.as_str()));
        }
        if let Some(event_type) = &query.event_type {
            index.and_equals("event_type", text(event_type));
        }
        if let Some(status) = query.status {
            index.and_equals("status", text(status.as_str()));
        }
        let fingerprint = query.fingerprint();
        self.fill_page(index, query.limit, &fingerprint, |row: IndexRow| {
            Box::pin(async move { Ok(row.event().map(|event| event_summary(&event))) })
        })
        .await
    }

    /// Reads index pages until `limit` rows pass `keep` (or the index ends, or
    /// `MAX_PAGES_PER_REQUEST` pages were read), and the cursor that resumes
    /// right after the last row read.
    async fn fill_page<'s>(
        &'s self,
        mut index: IndexQuery,
        limit: usize,
        fingerprint: &str,
        keep: impl Fn(IndexRow) -> RowFuture<'s> + Send + Sync,
    ) -> Result<ListPage, ServiceError> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES_PER_REQUEST {
            let page = self.store.query_index(index.clone()).await?;
            let read = page.rows.len();
            for (i, row) in page.rows.iter().enumerate() {
                if let Some(kept) = keep(row.clone()).await? {
                    items.push(kept);
                }
                if items.len() >= limit {
                    let more = i + 1 < read || page.next.is_some();
                    let next_cursor = more
                        .then(|| row.resume_after())
                        .flatten()
                        .map(|k| Cursor::encode(&k, fingerprint));
                    return Ok(ListPage { items, next_cursor });
                }
            }
            match page.next {
                Some(next) => index.start = Some(next),
                None => {
                    return Ok(ListPage {
                        items,
                        next_cursor: None,
                    })
                }
            }
        }
        Ok(ListPage {
            next_cursor: index.start.as_ref().map(|k| Cursor::encode(k, fingerprint)),
            items,
        })
    }

    /// `GET /admin/events/{key}`: the whole record with its raw payload.
    pub async fn admin_event(&self, key: &EventKey) -> Result<Option<Value>, ServiceError> {
        let Some(record) = self.store.get_event(key).await? else {
            return Ok(None);
        };
        let payload = match serde_json::from_slice::<Value>(&record.payload) {
            Ok(json) => json!({"encoding": "json", "body": json}),
            Err(_) => match std::str::from_utf8(&record.payload) {
                Ok(text) => json!({"encoding": "text", "body": text}),
                Err(_) => {
                    use base64::Engine;
                    json!({"encoding": "base64", "body": base64::engine::general_purpose::STANDARD.encode(&record.payload)})
                }
            },
        };
        Ok(Some(json!({
            "key": format!("{}:{}", record.key.provider(), record.key.event_id()),
            "ref": encode_event_key(&record.key),
            "provider": record.key.provider().as_str(),
            "event_id": record.key.event_id(),
            "type": record.event_type,
            "status": record.status.as_str(),
            "reason": record.reason,
            "user_id": record.user_id.as_ref().map(|u| u.as_str()),
            "received_at": ts(record.received_at),
            "body_sha256": record.body_hash,
            "duplicate_body_hashes": record.duplicate_body_hashes,
            "job_ids": record.job_ids.iter().map(|j| j.as_str()).collect::<Vec<_>>(),
            "payload": payload,
        })))
    }

    /// `GET /admin/users/{id}`: profile, subscriptions with access, effective
    /// roles, points, the last 20 events and emails not yet sent.
    pub async fn admin_user(&self, user: &UserId) -> Result<Option<Value>, ServiceError> {
        let Some(member) = self.store.load_member(user).await? else {
            return Ok(None);
        };
        let now = self.now();
        let effective = self.entitlements_of(&member, now);
        // The first ledger page: a cursor always names one of its own entries.
        let mut view = member_json(&member, &effective, &self.settings.plans, now, None)
            .map_err(ServiceError::Internal)?;
        let events = self
            .store
            .query_index(IndexQuery {
                index: USER_EVENTS_INDEX,
                partition: user.as_str().to_string(),
                limit: RECENT_EVENTS,
                descending: true,
                ..Default::default()
            })
            .await?;
        let events: Vec<EventRow> = events.rows.iter().filter_map(IndexRow::event).collect();
        let job_ids: Vec<crate::domain::JobId> = events
            .iter()
            .flat_map(|e| e.job_ids.iter().map(crate::domain::JobId::from_stored))
            .collect();
        let mut unsent: Vec<Value> = self
            .store
            .get_jobs(&job_ids)
            .await?
            .into_iter()
            .filter(|job| job.status != JobStatus::Sent)
            .map(|job| {
                json!({
                    "job_id": job.job.id.as_str(),
                    "template": job.job.template.as_str(),
                    "status": job.status.as_str(),
                    "attempts": job.attempts,
                    "last_error": job.last_error,
                    "created_at": ts(job.job.created_at),
                })
            })
            .collect();
        unsent.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
        view["profile"]["metadata"] = json!(member.metadata);
        view["profile"]["created_at"] = json!(time(member.created_at));
        view["granted_roles"] = json!(member.granted_roles);
        view["revocations"] = json!(member.revocations);
        view["events"] = events.iter().map(event_summary).collect();
        view["payments"] = Value::Array(self.member_payments(user, RECENT_EVENTS).await?);
        view["unsent_emails"] = Value::Array(unsent);
        Ok(Some(view))
    }
}

/// The sort-key range of a time-ordered index between `from` and `to`:
/// '~' sorts after every character in `<time>#<provider>#<id>`.
fn time_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<(String, String)> {
    (from.is_some() || to.is_some()).then(|| {
        (
            from.map(ts).unwrap_or_else(|| "0000".into()),
            to.map(|t| format!("{}~", ts(t)))
                .unwrap_or_else(|| "9999".into()),
        )
    })
}

fn text(value: &str) -> FilterValue {
    FilterValue::Text(value.to_string())
}
