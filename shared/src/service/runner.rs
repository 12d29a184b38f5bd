//! The event runner: the one place a provider event's effects are committed.
//!
//! Every webhook (Kajabi, Stripe, Paystack), every admin replay and sync, and
//! every waiting event goes through [`Services::run`]. Each attempt:
//! 1. the caller's rule loads the facts it needs and returns a [`Decision`]
//!    (a duplicate; record only, with a status and a reason; wait for the
//!    member; or apply writes and email jobs);
//! 2. the runner writes it: the event record is always item 0 of the one
//!    transaction, so the effects commit exactly once;
//! 3. it judges the result: a duplicate is answered as one, a lost race on
//!    another item retries from step 1 with a short backoff, up to
//!    [`MAX_ATTEMPTS`], and only then answers 503 (contention);
//! 4. after the commit it enqueues the jobs and applies the events that were
//!    waiting on the customer the event introduced.
//!
//! No other loop retries a webhook's effects.

use chrono::{DateTime, Utc};

use super::webhook::{backoff, Delivery, WebhookOutcome, MAX_ATTEMPTS};
use super::{ServiceError, Services};
use crate::domain::{Email, Provider, Unchanged, UserId};
use crate::store::{EmailJob, EventRecord, EventStatus, Tx, Waiting, WaitingEvent};

/// What a rule decided for one attempt.
pub(crate) enum Step {
    /// The event is already final: no effect, answered as a duplicate.
    Duplicate(Box<EventRecord>),
    /// Recorded with no effects (ignored, superseded or failed), with the reason.
    Record {
        status: EventStatus,
        reason: Option<String>,
        user_id: Option<UserId>,
    },
    /// Recorded `pending` on a provider customer no purchase has mapped yet,
    /// or `unmatched` until an account has the email.
    Wait {
        provider: Provider,
        customer: String,
        entry: WaitingEvent,
        reason: String,
        until: Until,
    },
    /// The event record (with `status` and `reason`) and `writes`, in one
    /// transaction, then the jobs on the queue.
    Apply {
        status: EventStatus,
        reason: Option<String>,
        user_id: Option<UserId>,
        writes: Tx,
        jobs: Vec<EmailJob>,
    },
}

/// What a waiting event waits for.
pub(crate) enum Until {
    /// A purchase that maps the provider customer to a member (`pending`).
    Mapped,
    /// An account with this email, or an admin's link (`unmatched`).
    Account(Email),
}

/// Events waiting on a customer the decided event maps: applied after it.
pub(crate) struct Drain {
    pub provider: Provider,
    pub customer: String,
    pub waiting: Waiting,
}

pub(crate) struct Decision {
    pub step: Step,
    pub drains: Vec<Drain>,
}

impl Decision {
    pub fn duplicate(old: EventRecord) -> Self {
        Step::Duplicate(Box::new(old)).into()
    }

    pub fn record(status: EventStatus, reason: Option<String>, user_id: Option<UserId>) -> Self {
        Step::Record {
            status,
            reason,
            user_id,
        }
        .into()
    }

    pub fn failed(reason: impl Into<String>, user_id: Option<UserId>) -> Self {
        Self::record(EventStatus::Failed, Some(reason.into()), user_id)
    }

    /// A change the lifecycle rules refuse, recorded with their reason.
    pub fn unchanged(verdict: Unchanged, user_id: UserId) -> Self {
        let (status, reason) = match verdict {
            Unchanged::Ignored(reason) => (EventStatus::Ignored, reason),
            Unchanged::Superseded(reason) => (EventStatus::Superseded, reason),
        };
        Self::record(status, Some(reason.into()), Some(user_id))
    }

    /// Applies `writes` and `jobs`, recorded `processed`.
    pub fn apply(writes: Tx, jobs: Vec<EmailJob>, user_id: impl Into<Option<UserId>>) -> Self {
        Step::Apply {
            status: EventStatus::Processed,
            reason: None,
            user_id: user_id.into(),
            writes,
            jobs,
        }
        .into()
    }

    /// The same, with the reason a processed event changed less than it says.
    pub fn with_reason(mut self, why: Option<String>) -> Self {
        if let Step::Apply { reason, .. } = &mut self.step {
            *reason = why;
        }
        self
    }

    /// The same, recorded with another status (a superseded event that still
    /// fills in the subscription's provider id).
    pub fn with_status(mut self, recorded: EventStatus) -> Self {
        if let Step::Apply { status, .. } = &mut self.step {
            *status = recorded;
        }
        self
    }

    /// After this decision is written (or found to be a duplicate), the events
    /// waiting on `customer` are applied, oldest first.
    pub fn then_drain(mut self, provider: Provider, customer: &str, waiting: &Waiting) -> Self {
        if !waiting.events.is_empty() {
            self.drains.push(Drain {
                provider,
                customer: customer.to_string(),
                waiting: waiting.clone(),
            });
        }
        self
    }

    /// After this decision, the course completions that waited for an
    /// account with `email` apply (it has one once a purchase committed;
    /// a redelivered purchase drains what its first attempt left).
    pub fn then_apply_completions(self, email: &Email, waiting: &Waiting) -> Self {
        self.then_drain(
            Provider::Kajabi,
            &crate::store::completion_customer(email),
            waiting,
        )
    }
}

impl From<Step> for Decision {
    fn from(step: Step) -> Self {
        Self {
            step,
            drains: Vec::new(),
        }
    }
}

impl Services {
    /// Runs one event: `decide` loads the facts and decides, the runner writes
    /// the decision and retries from a fresh load when a race lost it.
    ///
    /// `decide` is a plain closure returning a future (not an async closure),
    /// so the future's `Send` is known without higher-ranked lifetimes.
    pub(crate) async fn run<F, Fut>(
        &self,
        delivery: &Delivery,
        mut decide: F,
    ) -> Result<WebhookOutcome, ServiceError>
    where
        F: FnMut(DateTime<Utc>) -> Fut,
        Fut: std::future::Future<Output = Result<Decision, ServiceError>>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let Decision { step, drains } = decide(self.now()).await?;
            let written = match step {
                Step::Duplicate(old) => Some(self.answer_duplicate(*old, delivery).await?),
                Step::Record {
                    status,
                    reason,
                    user_id,
                } => Some(
                    self.record_terminal(delivery, status, reason, user_id)
                        .await?,
                ),
                Step::Wait {
                    provider,
                    customer,
                    entry,
                    reason,
                    until,
                } => {
                    self.record_pending(delivery, provider, &customer, &entry, reason, until)
                        .await?
                }
                Step::Apply {
                    status,
                    reason,
                    user_id,
                    writes,
                    jobs,
                } => {
                    let job_ids = jobs.iter().map(|j| j.id.clone()).collect();
                    let mut tx = self.store.tx();
                    tx.put_event(&delivery.record(status, reason, user_id.clone(), job_ids))?;
                    tx.append(writes);
                    self.commit_webhook(tx, delivery, &jobs, user_id, status)
                        .await?
                }
            };
            if let Some(outcome) = written {
                for drain in drains {
                    self.drain_waiting(drain.provider, &drain.customer, &drain.waiting)
                        .await?;
                }
                return Ok(outcome);
            }
            backoff(attempt).await;
        }
        Err(ServiceError::Contention)
    }
}
