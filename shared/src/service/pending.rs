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

use super::webhook::{webhook_commit_verdict, CommitVerdict, Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::Provider;
use crate::providers::{kajabi::KajabiEvent, paystack::PaystackEvent, stripe::StripeEvent};
use crate::store::{CommitError, EventRecord, EventStatus, Waiting, WaitingEvent};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, ServiceError>> + Send + 'a>>;

impl Services {
    /// Runs a stored event through its provider's processing again (replay,
    /// and waiting events). `None` for admin records, which are an audit trail.
    pub fn reprocess<'a>(&'a self, record: &'a EventRecord) -> Boxed<'a, Option<WebhookOutcome>> {
        Box::pin(async move {
            let json: serde_json::Value =
                serde_json::from_slice(&record.payload).unwrap_or(serde_json::Value::Null);
            let delivery = Delivery::from_record(record);
            Ok(Some(match record.key.provider() {
                Provider::Kajabi => {
                    self.process_kajabi(&delivery, &KajabiEvent::from_json(&json))
                        .await?
                }
                Provider::Stripe => {
                    self.process_stripe(&delivery, &StripeEvent::from_json(&json))
                        .await?
                }
                Provider::Paystack => {
                    self.process_paystack(&delivery, &PaystackEvent::from_json(&json))
                        .await?
                }
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
    ) -> Result<Option<WebhookOutcome>, ServiceError> {
        let mut tx = self.store.tx();
        tx.put_event(&delivery.record(
            EventStatus::Pending,
            Some(reason.clone()),
            None,
            Vec::new(),
        ))?;
        tx.wait_on_customer(provider, customer, waiting)?;
        match self.store.commit(tx).await {
            Ok(()) => {
                tracing::info!(event_key = %delivery.key, outcome = "pending", "webhook waiting for its member");
                Ok(Some(WebhookOutcome::Pending {
                    event: delivery.key.to_string(),
                    reason,
                }))
            }
            // Item 1 is the customer: mapped since the load.
            Err(CommitError::ConditionFailed { index: 1, .. }) => Ok(None),
            Err(err) => match webhook_commit_verdict(err)? {
                CommitVerdict::Duplicate(Some(old)) if old.status.is_final() => {
                    Ok(Some(self.answer_duplicate(*old, delivery).await?))
                }
                CommitVerdict::Duplicate(_) | CommitVerdict::Retry => Ok(None),
            },
        }
    }

    /// Applies the events waiting on a customer that is now mapped, oldest
    /// first, and takes each off the set. An error leaves the rest waiting:
    /// the purchase answers 503, and its redelivery drains them again.
    pub(crate) async fn drain_waiting(
        &self,
        provider: Provider,
        customer: &str,
        waiting: &Waiting,
    ) -> Result<(), ServiceError> {
        for event in &waiting.events {
            if let Some(record) = self.store.get_event(&event.key).await? {
                if record.status == EventStatus::Pending {
                    let outcome = self.reprocess(&record).await?;
                    if matches!(outcome, Some(WebhookOutcome::Pending { .. })) {
                        continue;
                    }
                }
            }
            self.store
                .release_waiting(provider, customer, event)
                .await?;
        }
        Ok(())
    }
}
