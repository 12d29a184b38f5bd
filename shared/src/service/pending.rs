//! Events that arrive before their member. Stripe does not order events, so
//! `customer.subscription.*` and `invoice.*` often come before the checkout
//! that carries the email; Paystack's subscription events can come before the
//! first `charge.success`. Such an event is recorded `pending` and added to
//! the waiting set on the provider's customer item, in one transaction. The
//! purchase that maps the customer to a member reads that set in its first
//! round trip and, after its commit, runs each waiting event again through its
//! provider's processing, oldest first. Each event applies exactly once: its
//! record's condition admits only a new, failed or pending record, and the
//! subscription watermark orders what is applied.

use std::future::Future;
use std::pin::Pin;

use super::runner::Until;
use super::source;
use super::webhook::{webhook_commit_verdict, CommitVerdict, Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::Provider;
use crate::store::{CommitError, EventRecord, EventStatus, StoreError, Waiting, WaitingEvent};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

impl Services {
    /// Runs a stored event through its provider's processing again (replay,
    /// and waiting events). `None` for admin records, which are an audit trail.
    pub fn reprocess<'a>(&'a self, record: &'a EventRecord) -> Boxed<'a, Option<WebhookOutcome>> {
        Box::pin(async move {
            let delivery = Delivery::from_record(record);
            Ok(Some(match record.key.provider() {
                Provider::Kajabi => self.reprocess_as::<source::Kajabi>(&delivery).await?,
                Provider::Stripe => self.reprocess_as::<source::Stripe>(&delivery).await?,
                Provider::Paystack => self.reprocess_as::<source::Paystack>(&delivery).await?,
                Provider::Admin => return Ok(None),
            }))
        })
    }

    /// Records an event as `pending` on a customer no purchase has mapped
    /// yet. `Ok(None)`: the customer was mapped meanwhile, so the caller loads
    /// again and applies the event instead.
    pub(crate) async fn record_pending(
        &self,
        delivery: &Delivery,
        provider: Provider,
        customer: &str,
        waiting: &WaitingEvent,
        reason: String,
        until: Until,
    ) -> Result<Option<WebhookOutcome>, ServiceError> {
        let status = match until {
            Until::Mapped => EventStatus::Pending,
            Until::Account(_) => EventStatus::Unmatched,
        };
        let mut record = delivery.record(status, Some(reason.clone()), None, Vec::new());
        record.waiting_on = Some(customer.to_string());
        let mut tx = self.store.tx();
        tx.put_event(&record)?;
        tx.wait_on_customer(provider, customer, waiting)?;
        if let Until::Account(email) = &until {
            tx.check_no_account(email)?;
        }
        match self.store.commit(tx).await {
            Ok(()) => {
                tracing::info!(event_key = %delivery.key, outcome = status.as_str(), "webhook waiting for its member");
                let event = delivery.key.to_string();
                Ok(Some(match until {
                    Until::Mapped => WebhookOutcome::Pending { event, reason },
                    Until::Account(_) => WebhookOutcome::Unmatched { event, reason },
                }))
            }
            // Item 1 is the customer: mapped since the load. Item 2: the
            // account it waits for appeared. Either way, load again.
            Err(CommitError::ConditionFailed { index: 1 | 2, .. }) => Ok(None),
            Err(err) => match webhook_commit_verdict(err)? {
                CommitVerdict::Duplicate(Some(old)) if old.status.is_final() => {
                    Ok(Some(self.answer_duplicate(*old, delivery).await?))
                }
                CommitVerdict::Duplicate(_) | CommitVerdict::Retry => Ok(None),
            },
        }
    }

    /// Applies the events waiting on a customer that is now mapped, oldest
    /// first, and takes each off the set. A transient error stops the drain
    /// there, so no newer event applies ahead of an older one (which its
    /// watermark would then supersede); the redelivery drains again. A
    /// malformed record is skipped, since no retry can fix it.
    pub(crate) async fn drain_waiting(
        &self,
        provider: Provider,
        customer: &str,
        waiting: &Waiting,
    ) -> Result<(), ServiceError> {
        for event in &waiting.events {
            match self.apply_waiting(provider, customer, event).await {
                Ok(()) => {}
                // A malformed record cannot be fixed by trying again; leave it
                // waiting for an admin, and do not make the purchase retry.
                Err(ServiceError::Store(StoreError::Corrupt(e))) => {
                    tracing::error!(event_key = %event.key, error = %e, "waiting event is malformed; left pending");
                }
                Err(e) => {
                    tracing::warn!(event_key = %event.key, error = %e, "waiting event not applied yet");
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn apply_waiting(
        &self,
        provider: Provider,
        customer: &str,
        event: &WaitingEvent,
    ) -> Result<(), ServiceError> {
        if let Some(record) = self.store.get_event(&event.key).await? {
            if record.status.is_waiting() {
                let outcome = self.reprocess(&record).await?;
                if matches!(
                    outcome,
                    Some(WebhookOutcome::Pending { .. } | WebhookOutcome::Unmatched { .. })
                ) {
                    return Ok(());
                }
            }
        }
        Ok(self
            .store
            .release_waiting(provider, customer, event)
            .await?)
    }
}
