//! The provider-neutral part of webhook processing: the event record, the
//! duplicate rule, and enqueueing after commit.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{ServiceError, Services};
use crate::domain::{bounded, EventKey, JobId, Provider, UserId};
use crate::http::{reject, ApiRequest, ApiResponse, MAX_BODY_BYTES};
use crate::signature::sha256_hex;
use crate::store::{CommitError, EmailJob, EventRecord, EventStatus, Tx};

/// Attempts at a transaction before answering 503 (conflicts and races retry).
pub const MAX_ATTEMPTS: u32 = 4;

/// Longest provider event id used verbatim in a key.
pub const MAX_EVENT_ID_BYTES: usize = 200;
/// Bounds on the provider text an event record keeps besides its payload, so
/// a record with a 256 KiB body always fits DynamoDB's 400 KB item.
pub const MAX_EVENT_TYPE_BYTES: usize = 200;
pub const MAX_REASON_BYTES: usize = 2_000;

/// One authenticated delivery, as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub key: EventKey,
    pub event_type: String,
    pub body: Vec<u8>,
    pub body_hash: String,
    pub received_at: DateTime<Utc>,
}

impl Delivery {
    /// Keyed by the provider's event id, or by the body hash when there is none.
    pub fn new(
        provider: Provider,
        event_id: Option<String>,
        event_type: impl Into<String>,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Self {
        let key = match event_id {
            // DynamoDB keys are bounded; an absurdly long id is keyed by its hash instead.
            Some(id) if id.len() > MAX_EVENT_ID_BYTES => {
                EventKey::new(provider, format!("sha256-id:{}", sha256_hex(id.as_bytes())))
            }
            Some(id) => EventKey::new(provider, id),
            None => EventKey::from_body_hash(provider, body),
        };
        Self {
            key,
            event_type: bounded(event_type, MAX_EVENT_TYPE_BYTES),
            body: body.to_vec(),
            body_hash: sha256_hex(body),
            received_at,
        }
    }

    /// The delivery a stored record was made from, to run it again.
    pub fn from_record(record: &EventRecord) -> Self {
        Self {
            key: record.key.clone(),
            event_type: record.event_type.clone(),
            body: record.payload.clone(),
            body_hash: record.body_hash.clone(),
            received_at: record.received_at,
        }
    }

    pub fn record(
        &self,
        status: EventStatus,
        reason: Option<String>,
        user_id: Option<UserId>,
        job_ids: Vec<JobId>,
    ) -> EventRecord {
        EventRecord {
            key: self.key.clone(),
            event_type: self.event_type.clone(),
            status,
            reason: reason.map(|r| bounded(r, MAX_REASON_BYTES)),
            user_id,
            body_hash: self.body_hash.clone(),
            payload: self.body.clone(),
            received_at: self.received_at,
            job_ids,
            duplicate_body_hashes: Vec::new(),
            waiting_on: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Processed {
        event: String,
        user_id: Option<UserId>,
    },
    Duplicate {
        event: String,
    },
    Ignored {
        event: String,
    },
    Failed {
        event: String,
        reason: String,
    },
    Superseded {
        event: String,
    },
    /// Recorded, waiting for its member; applied when the member is known.
    Pending {
        event: String,
        reason: String,
    },
    /// A course completion for an email no member has: kept for review, and
    /// applied when a member with that email appears (or an admin links one).
    Unmatched {
        event: String,
        reason: String,
    },
}

impl WebhookOutcome {
    pub fn status(&self) -> &'static str {
        match self {
            Self::Processed { .. } => "processed",
            Self::Duplicate { .. } => "duplicate",
            Self::Ignored { .. } => "ignored",
            Self::Failed { .. } => "failed",
            Self::Superseded { .. } => "superseded",
            Self::Pending { .. } => "pending",
            Self::Unmatched { .. } => "unmatched",
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::Processed { event, .. }
            | Self::Duplicate { event }
            | Self::Ignored { event }
            | Self::Superseded { event } => {
                json!({"status": self.status(), "event": event})
            }
            Self::Failed { event, reason }
            | Self::Pending { event, reason }
            | Self::Unmatched { event, reason } => {
                json!({"status": self.status(), "event": event, "reason": reason})
            }
        }
    }
}

/// What a failed commit means for a webhook transaction (event record at item 0).
pub enum CommitVerdict {
    Duplicate(Option<Box<EventRecord>>),
    Retry,
}

pub fn webhook_commit_verdict(err: CommitError) -> Result<CommitVerdict, ServiceError> {
    match err {
        CommitError::ConditionFailed { index: 0, .. } => {
            Ok(CommitVerdict::Duplicate(err.old_event().map(Box::new)))
        }
        CommitError::ConditionFailed { .. } | CommitError::Conflict => Ok(CommitVerdict::Retry),
        CommitError::Store(e) => Err(e.into()),
    }
}

/// Backoff between transaction attempts: short, since conflicts clear fast.
pub async fn backoff(attempt: u32) {
    let jitter = u64::from(rand::random::<u8>() % 20);
    tokio::time::sleep(std::time::Duration::from_millis(
        15 * (1u64 << attempt.min(4)) + jitter,
    ))
    .await;
}

impl Services {
    /// Records a delivery that has no effects (ignored, or failed with a reason).
    pub async fn record_terminal(
        &self,
        delivery: &Delivery,
        status: EventStatus,
        reason: Option<String>,
        user_id: Option<UserId>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let record = delivery.record(status, reason, user_id, Vec::new());
        if let Some(old) = self.store.record_event(&record).await? {
            return self.answer_duplicate(old, delivery).await;
        }
        let reason = record.reason;
        let event = delivery.key.to_string();
        tracing::info!(event_key = %event, outcome = status.as_str(), reason = reason.as_deref().unwrap_or(""), "webhook recorded");
        Ok(match status {
            EventStatus::Ignored => WebhookOutcome::Ignored { event },
            EventStatus::Superseded => WebhookOutcome::Superseded { event },
            _ => WebhookOutcome::Failed {
                event,
                reason: reason.unwrap_or_else(|| "unprocessable".into()),
            },
        })
    }

    pub async fn fail(
        &self,
        delivery: &Delivery,
        reason: impl Into<String>,
        user_id: Option<UserId>,
    ) -> Result<WebhookOutcome, ServiceError> {
        self.record_terminal(delivery, EventStatus::Failed, Some(reason.into()), user_id)
            .await
    }

    /// A redelivery of a final event: no effects. Notes a differing body, and
    /// re-enqueues the event's jobs while they are young enough that the sweeper
    /// has not taken over (sent ones are skipped by the sender).
    pub async fn answer_duplicate(
        &self,
        old: EventRecord,
        delivery: &Delivery,
    ) -> Result<WebhookOutcome, ServiceError> {
        if old.body_hash != delivery.body_hash
            && !old.duplicate_body_hashes.contains(&delivery.body_hash)
        {
            self.store
                .note_duplicate_body(&old.key, &delivery.body_hash)
                .await?;
        }
        let age = self.now().signed_duration_since(old.received_at);
        let sweep_window = chrono::Duration::from_std(self.settings.outbox_sweep_after)
            .unwrap_or(chrono::Duration::minutes(15));
        if !old.job_ids.is_empty() && age < sweep_window {
            self.outbox.enqueue(&old.job_ids).await?;
        }
        tracing::info!(event_key = %old.key, outcome = "duplicate", "webhook duplicate");
        Ok(WebhookOutcome::Duplicate {
            event: old.key.to_string(),
        })
    }

    /// Commits a webhook transaction (event record at item 0, recorded with
    /// `status`) and enqueues its jobs after commit. `Ok(None)` asks the
    /// runner to load again and retry.
    pub(crate) async fn commit_webhook(
        &self,
        mut tx: Tx,
        delivery: &Delivery,
        jobs: &[EmailJob],
        user_id: Option<UserId>,
        status: EventStatus,
    ) -> Result<Option<WebhookOutcome>, ServiceError> {
        for job in jobs {
            tx.put_job(job)?;
            // The member's in-app notice goes with its email, in the same transaction.
            if let Some(user) = &user_id {
                if job.to != self.settings.admin_email
                    && crate::domain::notice_text(job.template, &job.data).is_some()
                {
                    tx.put_notice(user, job)?;
                }
            }
        }
        let job_ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        match self.store.commit(tx).await {
            Ok(()) => {
                self.outbox.enqueue(&job_ids).await?;
                tracing::info!(event_key = %delivery.key, outcome = status.as_str(), jobs = jobs.len(), "webhook processed");
                let event = delivery.key.to_string();
                Ok(Some(match status {
                    EventStatus::Superseded => WebhookOutcome::Superseded { event },
                    EventStatus::Ignored => WebhookOutcome::Ignored { event },
                    _ => WebhookOutcome::Processed { event, user_id },
                }))
            }
            Err(err) => match webhook_commit_verdict(err)? {
                CommitVerdict::Duplicate(Some(old)) if old.status.is_final() => {
                    Ok(Some(self.answer_duplicate(*old, delivery).await?))
                }
                CommitVerdict::Duplicate(_) => match self.store.get_event(&delivery.key).await? {
                    Some(old) if old.status.is_final() => {
                        Ok(Some(self.answer_duplicate(old, delivery).await?))
                    }
                    _ => Ok(None),
                },
                CommitVerdict::Retry => Ok(None),
            },
        }
    }
}

/// The checks every webhook runs, in this order: size (413), authentication
/// (401, naming the failed check), content type (415), JSON framing (400).
/// Authenticated deliveries that fail the last two are recorded as failed
/// (keyed by body hash) before the 4xx, so nothing received is lost.
impl Services {
    pub async fn receive_webhook<A, E>(
        &self,
        provider: Provider,
        request: &ApiRequest,
        authenticate: A,
    ) -> Result<(serde_json::Value, DateTime<Utc>), ApiResponse>
    where
        A: FnOnce(&ApiRequest, DateTime<Utc>) -> Result<(), E>,
        E: std::fmt::Display,
    {
        crate::metrics::count(provider.as_str(), "received");
        if request.body.len() > MAX_BODY_BYTES {
            crate::metrics::count(provider.as_str(), "rejected");
            return Err(reject::too_large(request.body.len()));
        }
        let received_at = self.now();
        if let Err(e) = authenticate(request, received_at) {
            tracing::warn!(request_id = %request.request_id, provider = provider.as_str(), outcome = "unauthorized", check = %e, "webhook rejected");
            crate::metrics::count(provider.as_str(), "unauthorized");
            return Err(reject::unauthorized(e.to_string()));
        }
        let unframed = |reason: String, response: ApiResponse| async move {
            let delivery = Delivery::new(provider, None, "unknown", &request.body, received_at);
            match self
                .record_terminal(&delivery, EventStatus::Failed, Some(reason), None)
                .await
            {
                Ok(_) => {
                    crate::metrics::count(provider.as_str(), "failed");
                    response
                }
                Err(e) => {
                    tracing::error!(event_key = %delivery.key, error = %e, "could not record rejected delivery");
                    crate::metrics::count(provider.as_str(), "unavailable");
                    reject::unavailable("could not record the delivery; retry later")
                }
            }
        };
        if !request.has_json_content_type() {
            let content_type = request.header("content-type");
            let reason = format!(
                "unsupported content type {}",
                content_type.unwrap_or("(none)")
            );
            return Err(unframed(reason, reject::unsupported_media_type(content_type)).await);
        }
        match serde_json::from_slice(&request.body) {
            Ok(json) => Ok((json, received_at)),
            Err(e) => Err(unframed(format!("invalid JSON: {e}"), reject::invalid_json(&e)).await),
        }
    }

    /// 200 with the outcome, or 503 when storage or the queue failed (the event stays re-processable).
    pub fn webhook_response(
        &self,
        request: &ApiRequest,
        delivery: &Delivery,
        result: Result<WebhookOutcome, ServiceError>,
    ) -> ApiResponse {
        let provider = delivery.key.provider().as_str();
        let latency = (self.now() - delivery.received_at)
            .num_milliseconds()
            .max(0) as f64;
        let status = match &result {
            Ok(outcome) => outcome.status(),
            Err(_) => "unavailable",
        };
        crate::metrics::emit(
            &[("Provider", provider)],
            &[
                (status, crate::metrics::Unit::Count, 1.0),
                ("latency", crate::metrics::Unit::Milliseconds, latency),
            ],
        );
        match result {
            Ok(outcome) => ApiResponse::json(200, &outcome.to_json()),
            Err(e) => {
                tracing::error!(request_id = %request.request_id, event_key = %delivery.key, outcome = "error", error = %e, "webhook not processed");
                reject::unavailable(
                    "storage or queue is unavailable; the event was not applied and can be retried",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_ids_are_hashed_into_the_key() {
        let now = chrono::Utc::now();
        let short = Delivery::new(Provider::Kajabi, Some("evt_1".into()), "t", b"{}", now);
        assert_eq!(short.key.event_id(), "evt_1");
        let long = Delivery::new(Provider::Kajabi, Some("x".repeat(5000)), "t", b"{}", now);
        assert!(long.key.event_id().starts_with("sha256-id:"));
        assert!(long.key.event_id().len() < 100);
        let none = Delivery::new(Provider::Kajabi, None, "t", b"{}", now);
        assert!(none.key.event_id().starts_with("sha256:"));
    }
}
