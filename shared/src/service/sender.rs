//! Sends one email job through SESv2. Each job is claimed with a lease before
//! sending and marked sent after, so redelivered or concurrent messages for one
//! job send it once. A copy that finds the job leased by another sender is
//! dropped; the sweeper covers a sender that dies holding the lease.
//!
//! The send is never retried by the SDK: a 5xx after SES accepted would send
//! the email again. When SES accepted but marking the job sent fails, the
//! sender queues a confirmation carrying SES's message id, and the delivery of
//! that confirmation marks the job sent without sending. A job whose send
//! fails permanently (SES refuses the message, or it cannot be rendered) is
//! parked after [`MAX_SEND_ATTEMPTS`] claims, with its reason.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::Duration;

use super::Services;
use crate::domain::JobId;
use crate::email::{render, RenderContext};
use crate::store::{Claim, StoreError};

/// Long enough to outlast a confirmation's redeliveries (60 s visibility
/// timeout, 5 receives): while a confirmation may still arrive, no other copy
/// can claim the job and send it again. A sender that died holding a lease is
/// covered by the sweeper, which waits 15 minutes anyway.
const LEASE_SECS: i64 = 600;

/// Claims after which a permanently failing job is parked (the queue's
/// `maxReceiveCount` is the same, so the last redelivery parks it).
pub const MAX_SEND_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        message_id: String,
    },
    AlreadySent,
    /// SES had accepted it; this delivery only recorded that.
    Confirmed,
    /// No job has this id: nothing to send, and no retry would change that.
    NoSuchJob,
    /// It failed permanently [`MAX_SEND_ATTEMPTS`] times and is kept aside.
    Parked {
        reason: String,
    },
    /// Another delivery holds the lease and is sending it now. This copy is
    /// dropped: if that sender dies, the job stays on the pending index and the
    /// sweeper re-enqueues it once the lease has lapsed.
    LeasedElsewhere,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("job {job} cannot be rendered: {reason}")]
    Render { job: String, reason: String },
    #[error("SES refused job {job}: {reason}")]
    Ses { job: String, reason: String },
    #[error("{0} is not configured for the sender")]
    NotConfigured(&'static str),
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
            Claim::Parked => {
                return Ok(SendOutcome::Parked {
                    reason: "parked by an earlier delivery".into(),
                })
            }
            Claim::InFlight => return Ok(SendOutcome::LeasedElsewhere),
            // Jobs are committed before they are queued, and reads of an item
            // are consistent: a job that is not there never will be (a resend
            // for an address with no account queues such an id on purpose).
            Claim::NotFound => return Ok(SendOutcome::NoSuchJob),
        };
        let job = &stored.job;
        let Some(token_key) = self.settings.token_signing_key.as_ref() else {
            // Configuration, not the job: given back for a retry once it is fixed.
            let error = SendError::NotConfigured("TOKEN_SIGNING_KEY");
            self.store
                .release_job(job_id, &claim_id, &error.to_string(), self.now())
                .await?;
            return Err(error);
        };
        let ctx = RenderContext {
            frontend_url: &self.settings.frontend_url,
            token_key,
        };
        let rendered = match render(job.template, &job.id, &job.data, &ctx) {
            Ok(r) => r,
            Err(e) => {
                let error = SendError::Render {
                    job: job_id.to_string(),
                    reason: e.to_string(),
                };
                return self.failed_permanently(&stored, &claim_id, error).await;
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
            .customize()
            .config_override(
                aws_sdk_sesv2::config::Config::builder()
                    .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        match result {
            Ok(out) => {
                let message_id = out.message_id.unwrap_or_default();
                if let Err(e) = self
                    .store
                    .mark_job_sent(job_id, Some(&claim_id), &message_id, self.now())
                    .await
                {
                    // SES has it: never send again. The confirmation marks it
                    // sent on its delivery; only if SQS fails too does the
                    // lease lapse and a later delivery send it once more.
                    tracing::warn!(job_id = %job_id, error = %e, "could not mark a sent job; queueing its confirmation");
                    if let Err(queue) = self.outbox.enqueue_confirmation(job_id, &message_id).await
                    {
                        tracing::error!(job_id = %job_id, error = %queue, "could not queue the confirmation either; the job may be sent again once its lease lapses");
                        return Err(SendError::Store(e));
                    }
                }
                tracing::info!(job_id = %job_id, template = job.template.as_str(), outcome = "sent", "email sent");
                crate::metrics::email("sent");
                Ok(SendOutcome::Sent { message_id })
            }
            Err(e) => {
                // About this message: retrying it cannot help. Account-level
                // refusals (an unverified MAIL FROM domain, a missing
                // configuration set, a paused account) go to the DLQ instead,
                // to be redriven once fixed.
                let permanent = e
                    .as_service_error()
                    .is_some_and(|err| err.is_message_rejected() || err.is_bad_request_exception());
                // SES names the refused address; it is never logged or stored.
                let reason = crate::domain::redact_emails(&format!(
                    "{}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                ));
                let error = SendError::Ses {
                    job: job_id.to_string(),
                    reason,
                };
                if permanent {
                    return self.failed_permanently(&stored, &claim_id, error).await;
                }
                self.store
                    .release_job(job_id, &claim_id, &error.to_string(), self.now())
                    .await?;
                crate::metrics::email("failed");
                Err(error)
            }
        }
    }

    /// The delivery of a confirmation: SES accepted the job as `message_id`.
    pub async fn confirm_job_sent(
        &self,
        job_id: &JobId,
        message_id: &str,
    ) -> Result<SendOutcome, SendError> {
        let recorded = self
            .store
            .mark_job_sent(job_id, None, message_id, self.now())
            .await?;
        if recorded {
            tracing::info!(job_id = %job_id, outcome = "confirmed", "sent job recorded");
        } else {
            tracing::info!(job_id = %job_id, outcome = "already_sent", "confirmation for a job already recorded sent");
        }
        Ok(SendOutcome::Confirmed)
    }

    /// A failure that a retry will not fix: given back for the next delivery
    /// until the job has had its attempts, then parked.
    async fn failed_permanently(
        &self,
        stored: &crate::store::StoredJob,
        claim_id: &str,
        error: SendError,
    ) -> Result<SendOutcome, SendError> {
        let reason = error.to_string();
        if stored.attempts >= MAX_SEND_ATTEMPTS {
            let parked = self
                .store
                .park_job(&stored.job.id, claim_id, &reason, self.now())
                .await?;
            if parked {
                tracing::error!(job_id = %stored.job.id, attempts = stored.attempts, outcome = "parked", reason = %reason, "email job parked");
                crate::metrics::email("parked");
            }
            return Ok(SendOutcome::Parked { reason });
        }
        self.store
            .release_job(&stored.job.id, claim_id, &reason, self.now())
            .await?;
        crate::metrics::email("failed");
        Err(error)
    }
}
