//! The outbox: email jobs are written in the same transaction as the effects
//! (see `store::Tx::put_job`) and sent to SQS only after commit. A job that
//! misses SQS stays pending: the provider's retry of the same event, or the
//! sweeper, enqueues it again.

use serde::{Deserialize, Serialize};

use crate::domain::JobId;

/// The SQS message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: String,
    /// Set when SES already accepted the job but marking it sent failed: the
    /// receiver marks it sent with this id and sends nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("SQS request failed: {0}")]
    Request(String),
    #[error("SQS refused {0} of the messages")]
    Refused(usize),
}

#[derive(Clone, Debug)]
pub struct Outbox {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Outbox {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    /// Resolves the queue URL from the settings: the URL when given, else the name.
    pub async fn connect(
        sqs: aws_sdk_sqs::Client,
        url: Option<&str>,
        name: Option<&str>,
    ) -> Result<Self, OutboxError> {
        if let Some(url) = url {
            return Ok(Self::new(sqs, url));
        }
        let name = name.ok_or_else(|| {
            OutboxError::Request("EMAIL_QUEUE_URL or EMAIL_QUEUE_NAME is required".into())
        })?;
        let out = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| OutboxError::Request(format!("{e:?}")))?;
        let url = out
            .queue_url
            .ok_or_else(|| OutboxError::Request(format!("queue {name} has no URL")))?;
        Ok(Self::new(sqs, url))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Enqueues jobs in batches of ten (one SQS request each).
    pub async fn enqueue(&self, jobs: &[JobId]) -> Result<(), OutboxError> {
        let messages: Vec<JobMessage> = jobs
            .iter()
            .map(|job| JobMessage {
                job_id: job.to_string(),
                ses_message_id: None,
            })
            .collect();
        self.send(&messages).await
    }

    /// Tells the next delivery that SES accepted `job` as `ses_message_id`.
    pub async fn enqueue_confirmation(
        &self,
        job: &JobId,
        ses_message_id: &str,
    ) -> Result<(), OutboxError> {
        self.send(&[JobMessage {
            job_id: job.to_string(),
            ses_message_id: Some(ses_message_id.to_string()),
        }])
        .await
    }

    async fn send(&self, messages: &[JobMessage]) -> Result<(), OutboxError> {
        for chunk in messages.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, message) in chunk.iter().enumerate() {
                let body = serde_json::to_string(message)
                    .map_err(|e| OutboxError::Request(e.to_string()))?;
                entries.push(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(body)
                        .build()
                        .map_err(|e| OutboxError::Request(e.to_string()))?,
                );
            }
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| OutboxError::Request(format!("{e:?}")))?;
            if !out.failed().is_empty() {
                return Err(OutboxError::Refused(out.failed().len()));
            }
        }
        Ok(())
    }
}
