//! Paystack charges, subscriptions, invoices and refunds. Paystack events carry
//! the customer's email, so the member is found by email. Its watermark is the
//! event's own time where the payload has one (see `providers::paystack`),
//! else the receipt time.

use super::stripe::MemberRef;
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::rank;
use crate::domain::{Email, Plan, Provider, SubscriptionState, Watermark};
use crate::providers::paystack::{PaystackAction, PaystackEvent};
use crate::store::{EventStatus, Payment};

/// Lifecycle ranks, for events from the same second (`domain::rank`).
const RANK_ACTIVE: i64 = rank::ACTIVE;
const RANK_CANCELED: i64 = rank::CANCELING;
const RANK_PAST_DUE: i64 = rank::PAST_DUE;
const RANK_EXPIRED: i64 = rank::ENDED;

impl Services {
    fn paystack_plan(&self, event: &PaystackEvent) -> Result<&Plan, String> {
        if let Some(code) = &event.subject.plan_code {
            return self
                .settings
                .plans
                .for_product(Provider::Paystack, code)
                .ok_or_else(|| format!("unknown plan code: {code}"));
        }
        match &event.subject.plan_hint {
            Some(plan) => self
                .settings
                .plans
                .get(plan)
                .ok_or_else(|| format!("unknown plan in metadata.plan: {plan}")),
            None => Err("no plan: neither plan.plan_code nor metadata.plan".into()),
        }
    }

    pub async fn process_paystack(
        &self,
        delivery: &Delivery,
        event: &PaystackEvent,
    ) -> Result<WebhookOutcome, ServiceError> {
        if event.action == PaystackAction::Unsupported {
            return self
                .record_terminal(delivery, EventStatus::Ignored, None, None)
                .await;
        }
        if let PaystackAction::RefundProcessed { reference, amount } = &event.action {
            let Some(reference) = reference else {
                return self
                    .fail(delivery, "refund has no transaction reference", None)
                    .await;
            };
            let original = self
                .store
                .get_payment(Provider::Paystack, reference)
                .await?
                .and_then(|p| p.amount);
            let full = match (amount, original) {
                (Some(refunded), Some(paid)) => *refunded >= paid,
                _ => true,
            };
            return self
                .refund_payment(delivery, Provider::Paystack, reference, full, *amount, None)
                .await;
        }
        let email = match event.subject.email.as_deref().map(Email::parse) {
            None => return self.fail(delivery, "missing customer email", None).await,
            Some(Err(e)) => {
                return self
                    .fail(delivery, format!("invalid customer email: {e}"), None)
                    .await
            }
            Some(Ok(email)) => email,
        };
        let plan = match self.paystack_plan(event) {
            Ok(plan) => plan,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let created = Watermark::second_of(event.occurred_at.unwrap_or(delivery.received_at));
        let member = MemberRef::Email(&email, event.subject.customer_code.as_deref());
        match &event.action {
            PaystackAction::ChargeSuccess {
                reference,
                amount,
                currency,
            } => {
                let Some(reference) = reference else {
                    return self.fail(delivery, "charge has no reference", None).await;
                };
                // A redelivered charge is settled before asking Paystack's API
                // again, in one round trip with its customer. Without the API,
                // the purchase's own load settles it (and drains what waits).
                if self.settings.paystack_verify_charges {
                    let code = event.subject.customer_code.as_deref();
                    let loaded = self
                        .store
                        .load_for_event(&delivery.key, None, code.map(|c| (Provider::Paystack, c)))
                        .await?;
                    if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                        // Its first attempt may have stopped after mapping the
                        // customer and before applying what waited on it.
                        if let (Some(c), Some(_)) = (code, &loaded.customer_user) {
                            if !loaded.customer_waiting.events.is_empty() {
                                self.drain_waiting(Provider::Paystack, c, &loaded.customer_waiting)
                                    .await?;
                            }
                        }
                        return self.answer_duplicate(old, delivery).await;
                    }
                    if let Some(reason) = self.unconfirmed_charge(reference, *amount).await? {
                        return self.fail(delivery, reason, None).await;
                    }
                }
                let payment = Payment {
                    provider: Provider::Paystack,
                    reference: reference.clone(),
                    status: "succeeded".into(),
                    amount: *amount,
                    currency: currency.clone(),
                    user_id: None,
                    plan_id: None,
                    starts_at: None,
                    listed_as: None,
                };
                self.purchase_with_account(
                    delivery,
                    Provider::Paystack,
                    &email,
                    event.subject.first_name.as_deref(),
                    event.subject.customer_code.as_deref(),
                    Some(plan),
                    created,
                    None,
                    Some(payment),
                )
                .await
            }
            PaystackAction::SubscriptionCreate { .. }
            | PaystackAction::SubscriptionNotRenew { .. }
            | PaystackAction::SubscriptionDisable
            | PaystackAction::InvoicePaymentFailed
            | PaystackAction::InvoiceUpdate { paid: true, .. } => {
                // What each event says of the subscription, on the shared rank scale.
                let (state, period_end, rank) = match &event.action {
                    PaystackAction::SubscriptionCreate { next_payment_date } => {
                        (SubscriptionState::Active, *next_payment_date, RANK_ACTIVE)
                    }
                    PaystackAction::SubscriptionNotRenew { next_payment_date } => (
                        SubscriptionState::Canceled,
                        *next_payment_date,
                        RANK_CANCELED,
                    ),
                    PaystackAction::SubscriptionDisable => {
                        (SubscriptionState::Expired, None, RANK_EXPIRED)
                    }
                    PaystackAction::InvoiceUpdate { period_end, .. } => {
                        (SubscriptionState::Active, *period_end, RANK_ACTIVE)
                    }
                    _ => (SubscriptionState::PastDue, None, RANK_PAST_DUE),
                };
                self.subscription_change(
                    delivery,
                    Provider::Paystack,
                    member,
                    plan,
                    state,
                    period_end,
                    created,
                    rank,
                    event.subject.subscription_code.as_deref(),
                )
                .await
            }
            PaystackAction::InvoiceUpdate { paid: false, .. } => {
                self.record_terminal(
                    delivery,
                    EventStatus::Ignored,
                    Some("invoice not paid yet".into()),
                    None,
                )
                .await
            }
            PaystackAction::RefundProcessed { .. } | PaystackAction::Unsupported => {
                self.record_terminal(delivery, EventStatus::Ignored, None, None)
                    .await
            }
        }
    }

    /// `Some(reason)` when Paystack does not confirm the charge; transient API errors are `Err`.
    async fn unconfirmed_charge(
        &self,
        reference: &str,
        amount: Option<i64>,
    ) -> Result<Option<String>, ServiceError> {
        let Some(api) = &self.paystack_api else {
            return Ok(Some(
                "PAYSTACK_VERIFY_CHARGES is on but PAYSTACK_SECRET_KEY is not set".into(),
            ));
        };
        match api.verify_transaction(reference).await {
            Ok(verified) if verified.status != "success" => Ok(Some(format!(
                "charge not confirmed by Paystack: status {}",
                verified.status
            ))),
            Ok(verified)
                if amount.is_some() && verified.amount.is_some() && verified.amount != amount =>
            {
                Ok(Some(format!(
                    "charge amount {} does not match Paystack's {}",
                    amount.unwrap_or_default(),
                    verified.amount.unwrap_or_default()
                )))
            }
            Ok(_) => Ok(None),
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => Ok(Some(format!("charge verification failed: {e}"))),
        }
    }
}
