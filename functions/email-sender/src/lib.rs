//! SQS -> SESv2. Reports partial batch failures so only failed messages are
//! retried; the queue's redrive policy moves repeated failures to the DLQ.

use gatehouse::domain::JobId;
use gatehouse::outbox::JobMessage;
use gatehouse::service::sender::SendOutcome;
use gatehouse::service::Services;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SqsRecord {
    #[serde(rename = "messageId", default)]
    pub message_id: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

pub struct EmailSender {
    services: Services,
}

impl EmailSender {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, event: SqsEvent) -> BatchResponse {
        let results =
            futures::future::join_all(event.records.iter().map(|r| self.send_one(r))).await;
        BatchResponse {
            batch_item_failures: event
                .records
                .iter()
                .zip(results)
                .filter(|(_, ok)| !ok)
                .map(|(r, _)| ItemFailure {
                    item_identifier: r.message_id.clone(),
                })
                .collect(),
        }
    }

    async fn send_one(&self, record: &SqsRecord) -> bool {
        let message: JobMessage = match serde_json::from_str(&record.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(message_id = %record.message_id, error = %e, "malformed email job message");
                return false;
            }
        };
        let job = JobId::from_stored(message.job_id);
        let outcome = match &message.ses_message_id {
            Some(ses_message_id) => self.services.confirm_job_sent(&job, ses_message_id).await,
            None => self.services.send_job(&job).await,
        };
        match outcome {
            Ok(SendOutcome::Sent { .. } | SendOutcome::Confirmed) => true,
            // Kept aside with its reason (admin user view); redelivering cannot help.
            Ok(SendOutcome::Parked { .. }) => true,
            Ok(SendOutcome::AlreadySent) => {
                tracing::info!(job_id = %job, outcome = "already_sent", "skipped");
                true
            }
            Ok(SendOutcome::NoSuchJob) => {
                tracing::info!(job_id = %job, outcome = "no_such_job", "dropped");
                true
            }
            Ok(SendOutcome::LeasedElsewhere) => {
                tracing::info!(job_id = %job, outcome = "leased_elsewhere", "skipped");
                true
            }
            Err(e) => {
                tracing::warn!(job_id = %job, error = %e, "email job failed");
                false
            }
        }
    }
}
