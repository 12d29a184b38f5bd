//! Sends one email job through SESv2. Each job is claimed with a lease before
//! sending and marked sent after, so redelivered or concurrent messages for one
//! job send it once (a crash between SES accepting and the mark may repeat one).
//! A copy that finds the job leased by another sender is dropped; the sweeper
//! covers a sender that dies holding the lease.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::Duration;

use super::Services;
use crate::domain::JobId;
use crate::email::{render, RenderContext};
use crate::store::{Claim, StoreError};

const LEASE_SECS: i64 = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        message_id: String,
    },
    AlreadySent,
    /// Another delivery holds the lease and is sending it now. This copy is
    /// dropped: if that sender dies, the job stays on the pending index and the
    /// sweeper re-enqueues it once the lease has lapsed.
    LeasedElsewhere,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("job {0} does not exist")]
    NotFound(String),
    #[error("job {job} cannot be rendered: {reason}")]
    Render { job: String, reason: String },
    #[error("SES refused job {job}: {reason}")]
    Ses { job: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn content(text: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Render {
            job: String::new(),
            reason: e.to_string(),
        })
}

impl Services {
    pub async fn send_job(&self, job_id: &JobId) -> Result<SendOutcome, SendError> {
        let now = self.now();
        let claim_id = hex::encode(rand::random::<[u8; 12]>());
        let stored = match self
            .store
            .claim_job(job_id, &claim_id, now, now + Duration::seconds(LEASE_SECS))
            .await?
        {
            Claim::Claimed(stored) => stored,
            Claim::AlreadySent => return Ok(SendOutcome::AlreadySent),
            Claim::InFlight => return Ok(SendOutcome::LeasedElsewhere),
            Claim::NotFound => return Err(SendError::NotFound(job_id.to_string())),
        };
        let job = &stored.job;
        let ctx = RenderContext {
            frontend_url: &self.settings.frontend_url,
            token_key: &self.settings.token_signing_key,
        };
        let rendered = match render(job.template, &job.id, &job.data, &ctx) {
            Ok(r) => r,
            Err(e) => {
                self.store
                    .release_job(job_id, &claim_id, &e.to_string())
                    .await?;
                return Err(SendError::Render {
                    job: job_id.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let message = Message::builder()
            .subject(content(&rendered.subject)?)
            .body(
                Body::builder()
                    .text(content(&rendered.text)?)
                    .html(content(&rendered.html)?)
                    .build(),
            )
            .build();
        let result = self
            .ses
            .send_email()
            .from_email_address(self.settings.from_email.as_str())
            .destination(Destination::builder().to_addresses(job.to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(out) => {
                let message_id = out.message_id.unwrap_or_default();
                self.store
                    .mark_job_sent(job_id, &claim_id, &message_id, self.now())
                    .await?;
                tracing::info!(job_id = %job_id, template = job.template.as_str(), outcome = "sent", "email sent");
                Ok(SendOutcome::Sent { message_id })
            }
            Err(e) => {
                // SES names the refused address; it is never logged or stored.
                let reason = crate::domain::redact_emails(&format!(
                    "{}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                ));
                self.store.release_job(job_id, &claim_id, &reason).await?;
                Err(SendError::Ses {
                    job: job_id.to_string(),
                    reason,
                })
            }
        }
    }
}
