//! Stripe checkout, subscription and invoice events.
//!
//! Checkout (with the customer's email) creates or links the user and maps the
//! Stripe customer to it. Subscription and invoice events find the user through
//! that mapping (subscriptions carry no email). Each subscription keeps a
//! watermark (the event's `created` second and a lifecycle rank), so an older
//! event never changes newer state.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::provision::{AccountPlan, MemberProfile};
use super::rows::{keyed_by_subscription, row_for};
use super::runner::{Decision, Step};
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::rank;
use crate::domain::{
    concerns_replaced_subscription, disable_keeps_paid_period, has_access, leaves_unchanged,
    notice_for, pass_starts_at, queued_pass, refunded_queued_view, refunded_view, reported_view,
    stale_payment_extends, Email, PaymentReference, Plan, Provider, SubscriptionState,
    SubscriptionView, UserId,
};
use crate::email::Template;
use crate::providers::stripe::{lifecycle_rank, map_status, StripeAction, StripeEvent};
use crate::store::{keys, EmailJob, EventStatus, Payment, SubscriptionRecord};

/// How an event names its member.
#[derive(Clone, Copy)]
pub(crate) enum MemberRef<'a> {
    /// A provider customer id, through the `PROVIDER_CUSTOMER` mapping.
    Customer(&'a str),
    /// An email, and the provider's customer id when the event carries one
    /// (an event for an unknown email then waits on that customer).
    Email(&'a Email, Option<&'a str>),
}

impl MemberRef<'_> {
    fn customer(&self) -> Option<&str> {
        match self {
            Self::Customer(c) => Some(c),
            Self::Email(_, c) => *c,
        }
    }
}

pub(crate) fn human_date(at: Option<DateTime<Utc>>) -> String {
    at.map(|d| d.format("%B %-d, %Y").to_string())
        .unwrap_or_else(|| "further notice".into())
}

/// A payment's rank among events of the same second: an activation.
const RANK_PURCHASE: i64 = rank::ACTIVE;

/// Whether an event at (`created`, `rank`) is older than the subscription's watermark.
pub fn is_superseded(
    current: Option<&SubscriptionRecord>,
    created: DateTime<Utc>,
    rank: i64,
) -> bool {
    current
        .and_then(SubscriptionRecord::mark)
        .is_some_and(|mark| mark.supersedes(created, rank))
}

impl Services {
    /// A `customer.subscription.*` event (or the subscription a checkout read):
    /// its plan, state and rank, applied to the customer's member.
    async fn stripe_subscription_event(
        &self,
        delivery: &Delivery,
        action: &StripeAction,
        created: DateTime<Utc>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let StripeAction::Subscription {
            subscription_id,
            customer,
            status,
            cancel_at_period_end,
            period_end,
            products,
            ..
        } = action
        else {
            return self.fail(delivery, "not a subscription", None).await;
        };
        let plan = match self.plan_for_products(products) {
            Ok(plan) => plan,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let Some(state) = map_status(status, *cancel_at_period_end) else {
            return self
                .fail(
                    delivery,
                    format!("unknown subscription status: {status}"),
                    None,
                )
                .await;
        };
        let Some(customer) = customer else {
            return self
                .fail(delivery, "subscription has no customer", None)
                .await;
        };
        let rank = lifecycle_rank(status, *cancel_at_period_end);
        self.subscription_change(
            delivery,
            Provider::Stripe,
            MemberRef::Customer(customer),
            plan,
            state,
            *period_end,
            created,
            rank,
            subscription_id.as_deref(),
        )
        .await
    }

    /// With Stripe's API configured, a subscription-mode checkout reads the
    /// subscription it started (`GET /v1/subscriptions/{id}`) and applies it as
    /// an event of its own, ordered at the time it was read: the checkout alone
    /// grants access, even when the subscription's own events are late or lost.
    /// Best effort: if the read or the write fails, those events still apply it.
    async fn apply_checkout_subscription(&self, checkout: &Delivery, subscription_id: &str) {
        let Some(api) = &self.stripe_api else {
            return;
        };
        let object = match api.subscription_object(subscription_id).await {
            Ok(object) => object,
            Err(e) => {
                tracing::warn!(event_key = %checkout.key, error = %e, "could not read the checkout's subscription; its own events will apply it");
                return;
            }
        };
        let now = self.now();
        let event_id = format!("{}:subscription", checkout.key.event_id());
        let read = serde_json::json!({
            "id": event_id, "object": "event", "type": "customer.subscription.updated",
            "created": now.timestamp(), "data": {"object": object},
        });
        let body = read.to_string().into_bytes();
        let event = StripeEvent::from_json(&read);
        let delivery = Delivery::new(
            Provider::Stripe,
            Some(event_id),
            "checkout.session.subscription_read",
            &body,
            now,
        );
        if let Err(e) = self
            .stripe_subscription_event(&delivery, &event.action, now)
            .await
        {
            tracing::warn!(event_key = %delivery.key, error = %e, "the checkout's subscription was not applied; its own events will apply it");
        }
    }

    /// With Stripe's API configured, the member a customer that no checkout
    /// has mapped belongs to: `GET /v1/customers/{id}` gives its email, and
    /// the account with that email is the member. `None` when no account has
    /// that email (yet), or the API cannot say: the event then waits for its
    /// checkout, as it does without the API.
    async fn member_of_stripe_customer(
        &self,
        customer: &str,
    ) -> Result<Option<UserId>, ServiceError> {
        let Some(api) = &self.stripe_api else {
            return Ok(None);
        };
        let email = match api.customer_email(customer).await {
            Ok(Some(raw)) => match Email::parse(&raw) {
                Ok(email) => email,
                Err(_) => return Ok(None),
            },
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the Stripe customer; the event waits for its checkout");
                return Ok(None);
            }
        };
        Ok(self.store.get_email(&email).await?.map(|r| r.user_id))
    }

    /// The plan of the first price or product id the plans file knows.
    fn plan_for_products(&self, products: &[String]) -> Result<&Plan, String> {
        products
            .iter()
            .find_map(|id| self.settings.plans.for_product(Provider::Stripe, id))
            .ok_or_else(|| format!("unknown price or product: {}", products.join(", ")))
    }

    pub async fn process_stripe(
        &self,
        delivery: &Delivery,
        event: &StripeEvent,
    ) -> Result<WebhookOutcome, ServiceError> {
        let created = event
            .created
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .unwrap_or(delivery.received_at);
        match &event.action {
            StripeAction::Unsupported => {
                self.record_terminal(delivery, EventStatus::Ignored, None, None)
                    .await
            }
            StripeAction::Checkout {
                mode,
                paid,
                customer,
                email,
                name,
                plan_hint,
                payment_intent,
                session_id,
                amount_total,
                currency,
                subscription,
                client_reference_id,
            } => {
                if !paid {
                    return self
                        .record_terminal(
                            delivery,
                            EventStatus::Ignored,
                            Some("payment not completed yet".into()),
                            None,
                        )
                        .await;
                }
                // Paid checkouts were keyed by Stripe's event id before they
                // were keyed by their session: a redelivery of one recorded
                // that way is a duplicate too.
                if let Some(old) = self.recorded_under_event_id(delivery, event).await? {
                    return self.answer_duplicate(old, delivery).await;
                }
                let Some(raw_email) = email else {
                    return self
                        .fail(delivery, "checkout session has no customer email", None)
                        .await;
                };
                let email = match Email::parse(raw_email) {
                    Ok(e) => e,
                    Err(e) => {
                        return self
                            .fail(delivery, format!("invalid customer email: {e}"), None)
                            .await
                    }
                };
                let one_time = if mode == "payment" {
                    match plan_hint
                        .as_deref()
                        .map(|p| (p, self.settings.plans.get(p)))
                    {
                        Some((_, Some(plan))) => Some(plan),
                        Some((p, None)) => {
                            return self
                                .fail(
                                    delivery,
                                    format!("unknown plan in metadata.plan: {p}"),
                                    None,
                                )
                                .await
                        }
                        None => match self
                            .plan_from_line_items(delivery, session_id.as_deref())
                            .await?
                        {
                            Ok(plan) => Some(plan),
                            Err(outcome) => return Ok(outcome),
                        },
                    }
                } else {
                    None
                };
                let outcome = self
                    .purchase_with_account(
                        delivery,
                        Provider::Stripe,
                        &email,
                        name.as_deref(),
                        customer.as_deref(),
                        one_time,
                        created,
                        client_reference_id
                            .as_deref()
                            .and_then(PaymentReference::parse)
                            .map(|reference| Payment {
                                provider: Provider::Stripe,
                                reference: reference.to_string(),
                                status: "succeeded".into(),
                                amount: *amount_total,
                                currency: currency.clone(),
                                user_id: None,
                                plan_id: None,
                                starts_at: None,
                                listed_as: None,
                            })
                            .as_ref(),
                        payment_intent
                            .clone()
                            .or_else(|| session_id.clone())
                            .map(|reference| Payment {
                                provider: Provider::Stripe,
                                reference,
                                status: "succeeded".into(),
                                amount: *amount_total,
                                currency: currency.clone(),
                                user_id: None,
                                plan_id: None,
                                starts_at: None,
                                listed_as: None,
                            }),
                    )
                    .await?;
                if let (WebhookOutcome::Processed { .. }, Some(sub_id)) = (
                    &outcome,
                    subscription.as_deref().filter(|_| mode == "subscription"),
                ) {
                    self.apply_checkout_subscription(delivery, sub_id).await;
                }
                Ok(outcome)
            }
            StripeAction::Subscription { .. } => {
                self.stripe_subscription_event(delivery, &event.action, created)
                    .await
            }
            StripeAction::CheckoutClosed {
                client_reference_id,
                failed,
                ..
            } => {
                let reference = client_reference_id
                    .as_deref()
                    .and_then(PaymentReference::parse);
                self.close_checkout_by_event(delivery, reference, *failed)
                    .await
            }
            StripeAction::PaymentIntent {
                id,
                succeeded,
                amount,
                currency,
                ..
            } => {
                let Some(reference) = id else {
                    return self.fail(delivery, "payment intent has no id", None).await;
                };
                let payment = Payment {
                    provider: Provider::Stripe,
                    reference: reference.clone(),
                    status: if *succeeded { "succeeded" } else { "failed" }.into(),
                    amount: *amount,
                    currency: currency.clone(),
                    user_id: None,
                    plan_id: None,
                    starts_at: None,
                    listed_as: None,
                };
                self.record_payment(delivery, &payment).await
            }
            StripeAction::Refund {
                payment_intent,
                full,
                amount_refunded,
                currency,
            } => {
                let Some(reference) = payment_intent else {
                    return self
                        .fail(delivery, "refunded charge has no payment intent", None)
                        .await;
                };
                self.refund_payment(
                    delivery,
                    Provider::Stripe,
                    reference,
                    *full,
                    *amount_refunded,
                    currency.as_deref(),
                )
                .await
            }
            StripeAction::Invoice {
                paid,
                customer,
                subscription,
                period_end,
                products,
                ..
            } => {
                let plan = match self.plan_for_products(products) {
                    Ok(plan) => plan,
                    Err(reason) => return self.fail(delivery, reason, None).await,
                };
                let Some(customer) = customer else {
                    return self.fail(delivery, "invoice has no customer", None).await;
                };
                let (state, rank) = if *paid {
                    (SubscriptionState::Active, rank::ACTIVE)
                } else {
                    (SubscriptionState::PastDue, rank::PAST_DUE)
                };
                self.subscription_change(
                    delivery,
                    Provider::Stripe,
                    MemberRef::Customer(customer),
                    plan,
                    state,
                    *period_end,
                    created,
                    rank,
                    subscription.as_deref(),
                )
                .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// A one-time checkout without `metadata.plan`: the plan comes from the
    /// session's line items, read through the Stripe API. `Err` carries the
    /// outcome to answer (recorded as failed) when no plan can be found.
    async fn plan_from_line_items(
        &self,
        delivery: &Delivery,
        session_id: Option<&str>,
    ) -> Result<Result<&Plan, WebhookOutcome>, ServiceError> {
        let (Some(api), Some(session_id)) = (&self.stripe_api, session_id) else {
            return Ok(Err(self
                .fail(delivery, "one-time checkout has no metadata.plan, and STRIPE_SECRET_KEY is not set to read its line items", None)
                .await?));
        };
        match api.checkout_line_item_products(session_id).await {
            Ok(products) => match self.plan_for_products(&products) {
                Ok(plan) => Ok(Ok(plan)),
                Err(reason) => Ok(Err(self
                    .fail(delivery, format!("{reason} (from the line items)"), None)
                    .await?)),
            },
            // Stripe's API is down or busy: answer 5xx so Stripe retries the event later.
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => Ok(Err(self
                .fail(delivery, format!("line items lookup failed: {e}"), None)
                .await?)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// A paid purchase: the account (created or linked), the customer mapping and,
    /// for a plan bought outright, its subscription and payment record.
    pub(crate) async fn purchase_with_account(
        &self,
        delivery: &Delivery,
        provider: Provider,
        email: &Email,
        name: Option<&str>,
        customer: Option<&str>,
        one_time: Option<&Plan>,
        created: DateTime<Utc>,
        checkout: Option<&Payment>,
        payment: Option<Payment>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let payment = &payment;
        self.run(delivery, |now| async move {
            let loaded = self
                .store
                .load_for_event(&delivery.key, Some(email), customer.map(|c| (provider, c)))
                .await?;
            let waiting = loaded.customer_waiting.clone();
            let completions = loaded.completions_waiting.clone();
            if let Some(old) = loaded.event.clone().filter(|e| e.status.is_final()) {
                let duplicate =
                    Decision::duplicate(old).then_apply_completions(email, &completions);
                // A first attempt that stopped after its commit left these waiting.
                return Ok(match (customer, &loaded.customer_user) {
                    (Some(c), Some(_)) => duplicate.then_drain(provider, c, &waiting),
                    _ => duplicate,
                });
            }
            let email_user = loaded.email.as_ref().map(|e| &e.user_id);
            if let (Some(c), Some(mapped), Some(email_user)) =
                (customer, &loaded.customer_user, email_user)
            {
                if email_user != mapped {
                    // Re-reading cannot fix this: say so, and answer 200. What
                    // waits on the customer is its member's, whatever this says.
                    return Ok(Decision::failed(
                        customer_mismatch(provider, c, mapped),
                        Some(mapped.clone()),
                    )
                    .then_drain(provider, c, &waiting));
                }
            }
            let mut metadata = BTreeMap::new();
            if let Some(c) = customer {
                metadata.insert(format!("{provider}_customer_id"), c.to_string());
            }
            let plan_name = one_time
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "your membership".into());
            let mut data = BTreeMap::from([
                ("email".to_string(), email.to_string()),
                ("plan_name".to_string(), plan_name),
            ]);
            if let Some(first) = name.and_then(|n| n.split_whitespace().next()) {
                data.insert("first_name".to_string(), first.to_string());
            }
            let one_time_view = one_time.map(|plan| {
                let until = plan
                    .period_days
                    .filter(|_| !plan.lifetime)
                    .map(|d| now + Duration::days(i64::from(d)));
                SubscriptionView {
                    state: SubscriptionState::Active,
                    period_end: until,
                    access_until: until,
                }
            });

            // An email new to Gatehouse with a customer it knows: the customer's member
            // paid under another address (linked by an admin, or changed at the
            // provider). The payment is theirs; no second account is made.
            let paid_by_customer = match (&loaded.email, &loaded.customer_user) {
                (None, Some(mapped)) => Some(mapped.clone()),
                _ => None,
            };
            let account = match &paid_by_customer {
                Some(user_id) => AccountPlan {
                    user_id: user_id.clone(),
                    is_new: false,
                    welcome: None,
                },
                None => self.plan_account(loaded.email.as_ref(), email, data.clone(), now)?,
            };
            let user_id = account.user_id.clone();
            // The plan's subscription as it stands: a payment older than its last
            // change (a charge redelivered after a disable) must not reopen it.
            let current = match (one_time, account.is_new) {
                (Some(plan), false) => {
                    self.store
                        .get_subscription(&user_id, provider, &plan.id)
                        .await?
                }
                _ => None,
            };
            let stale =
                one_time.is_some() && is_superseded(current.as_ref(), created, RANK_PURCHASE);
            // A stale payment still paid for its period: a live subscription
            // keeps its state and runs to the paid end, keeping its watermark.
            // Its paid period runs from when it was paid, not from now.
            let extended = match (stale, &current, one_time) {
                (true, Some(c), Some(plan)) => {
                    let paid_until = plan
                        .period_days
                        .filter(|_| !plan.lifetime)
                        .map(|d| created + Duration::days(i64::from(d)));
                    let paid = SubscriptionView {
                        state: SubscriptionState::Active,
                        period_end: paid_until,
                        access_until: paid_until,
                    };
                    stale_payment_extends(&c.view, &paid)
                }
                _ => None,
            };
            // A pass bought while another of the same plan runs starts when it ends.
            // (A Paystack row is not marked one-time, as Paystack's renewals
            // are charges too: a plan sold one-time is a pass all the same.)
            let sold_as_pass = one_time
                .and_then(|p| p.sale.as_ref())
                .is_some_and(|sale| !sale.recurring);
            let starts_at = one_time_view.as_ref().and_then(|bought| {
                pass_starts_at(
                    current.as_ref().map(|c| &c.view),
                    current.as_ref().is_some_and(|c| c.one_time) || sold_as_pass,
                    bought,
                    now,
                )
            });
            let one_time_view = one_time_view
                .filter(|_| !stale)
                .map(|bought| match starts_at {
                    Some(start) => queued_pass(&bought, start, now),
                    None => bought,
                });
            let mut jobs: Vec<EmailJob> = account.welcome_job().into_iter().collect();
            if let (None, Some(view)) = (&account.welcome, &one_time_view) {
                let mut paid = data.clone();
                paid.insert("access_until".into(), human_date(view.access_until));
                if let Some(start) = starts_at {
                    paid.insert("starts_at".into(), human_date(Some(start)));
                }
                jobs.push(self.job(Template::PaymentSuccessful, email, paid, now));
            }
            // A visitor's checkout made the account before it paid: its first
            // payment is the signup the admin hears of.
            let first_payment = loaded.email.as_ref().is_some_and(|e| e.awaiting_payment);
            if account.is_new || first_payment {
                jobs.push(self.job(
                    Template::AdminNewSignup,
                    &self.settings.admin_email,
                    data.clone(),
                    now,
                ));
            }
            let reason = match (stale, &extended) {
                (false, _) => None,
                (true, None) => Some(
                    "payment recorded; the subscription changed after it, so access is unchanged"
                        .to_string(),
                ),
                (true, Some(_)) => Some(
                    "payment recorded; the subscription changed after it, so only its paid period extends access"
                        .to_string(),
                ),
            };
            // A payment Gatehouse's checkout started is settled with the
            // purchase (the reference is the buyer's, so it may name nothing).
            let settles = match checkout {
                Some(c) => match PaymentReference::parse(&c.reference) {
                    Some(reference) => self
                        .store
                        .get_checkout(provider, &reference)
                        .await?
                        .map(|_| c),
                    None => None,
                },
                None => None,
            };
            let mut tx = self.store.tx();
            let profile = MemberProfile {
                email: email.clone(),
                first_name: name
                    .and_then(|n| n.split_whitespace().next())
                    .map(str::to_string),
                last_name: None,
                provider,
                metadata,
            };
            if paid_by_customer.is_none() {
                self.write_account(&mut tx, &account, profile, &completions, now)?;
            }
            if let Some(c) = customer {
                tx.put_customer(provider, c, &user_id, &waiting)?;
            }
            if let (Some(plan), Some(payment)) = (one_time, payment) {
                // The payment record says what a refund of it revokes.
                // A checkout Gatehouse started is listed once, under its reference.
                let listed_as = settles
                    .filter(|c| c.reference != payment.reference)
                    .map(|c| c.reference.clone());
                tx.upsert_payment(
                    &Payment {
                        user_id: Some(user_id.clone()),
                        plan_id: Some(plan.id.clone()),
                        starts_at,
                        listed_as,
                        ..payment.clone()
                    },
                    now,
                )?;
            }
            if let Some(settled) = settles {
                tx.upsert_payment(
                    &Payment {
                        user_id: Some(user_id.clone()),
                        ..settled.clone()
                    },
                    now,
                )?;
            }
            if let (Some(plan), Some(view)) = (one_time, &one_time_view) {
                tx.put_subscription(
                    &user_id,
                    provider,
                    &plan.id,
                    &plan.id,
                    view,
                    current.as_ref().map(|c| c.version),
                    &delivery.key,
                    (created, RANK_PURCHASE),
                    now,
                    current.as_ref().and_then(|c| c.provider_ref.as_deref()),
                    // Paystack's charges are its subscriptions' payments; Stripe's one-time
                    // checkouts are not, and no subscription may take their row over.
                    provider == Provider::Stripe || current.as_ref().is_some_and(|c| c.one_time),
                )?;
            }
            if let (Some(view), Some(c)) = (&extended, &current) {
                tx.restate_subscription(c, view, &delivery.key, now)?;
            }
            let apply = Decision::apply(tx, jobs, user_id)
                .with_reason(reason)
                .then_apply_completions(email, &completions);
            Ok(match customer {
                Some(c) => apply.then_drain(provider, c, &waiting),
                None => apply,
            })
        })
        .await
    }

    /// The final record of a paid checkout stored under Stripe's event id
    /// (before paid checkouts were keyed by their session).
    async fn recorded_under_event_id(
        &self,
        delivery: &Delivery,
        event: &StripeEvent,
    ) -> Result<Option<crate::store::EventRecord>, ServiceError> {
        let Some(id) = event.id.as_deref().filter(|id| id.starts_with("evt_")) else {
            return Ok(None);
        };
        if delivery.key.event_id() == id {
            return Ok(None);
        }
        let legacy = crate::domain::EventKey::new(Provider::Stripe, id);
        Ok(self
            .store
            .get_event(&legacy)
            .await?
            .filter(|e| e.status.is_final()))
    }

    /// A Checkout Session that ended unpaid closes its pending payment
    /// (`failed` for a delayed payment that failed, `cancelled` for one that expired).
    async fn close_checkout_by_event(
        &self,
        delivery: &Delivery,
        reference: Option<PaymentReference>,
        failed: bool,
    ) -> Result<WebhookOutcome, ServiceError> {
        let reference = &reference;
        self.run(delivery, |now| async move {
            let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let payment = match reference {
                Some(r) => self.store.get_checkout(Provider::Stripe, r).await?,
                None => None,
            };
            let Some(payment) = payment else {
                return Ok(Decision::record(
                    EventStatus::Ignored,
                    Some("not a checkout Gatehouse started".into()),
                    None,
                ));
            };
            if payment.status != "pending" {
                return Ok(Decision::record(
                    EventStatus::Ignored,
                    Some(format!("the payment is already {}", payment.status)),
                    Some(payment.user_id),
                ));
            }
            let (status, reason) = if failed {
                ("failed", "the delayed payment failed after checkout")
            } else {
                ("cancelled", "the checkout session expired unpaid")
            };
            let mut tx = self.store.tx();
            tx.close_checkout(Provider::Stripe, &payment.reference, status, reason, now)?;
            Ok(Decision::apply(tx, Vec::new(), Some(payment.user_id)))
        })
        .await
    }

    /// Records a payment's status with the event, in one transaction.
    async fn record_payment(
        &self,
        delivery: &Delivery,
        payment: &Payment,
    ) -> Result<WebhookOutcome, ServiceError> {
        self.run(delivery, |now| async move {
            let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let mut tx = self.store.tx();
            tx.upsert_payment(payment, now)?;
            Ok(Decision::apply(tx, Vec::new(), None))
        })
        .await
    }

    /// A full refund revokes what the payment granted; a partial one is only recorded.
    pub(crate) async fn refund_payment(
        &self,
        delivery: &Delivery,
        provider: Provider,
        reference: &str,
        full: bool,
        amount_refunded: Option<i64>,
        currency: Option<&str>,
    ) -> Result<WebhookOutcome, ServiceError> {
        self.run(delivery, |now| async move {
            let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let Some(payment) = self.store.get_payment(provider, reference).await? else {
                return Ok(Decision::failed(
                    format!("no payment record for {reference}"),
                    None,
                ));
            };
            let record = Payment {
                status: if full {
                    "refunded"
                } else {
                    "partially_refunded"
                }
                .into(),
                amount: payment.amount,
                currency: currency.map(str::to_string).or(payment.currency.clone()),
                ..payment.clone()
            };
            let mut tx = self.store.tx();
            let mut jobs = Vec::new();
            // Only a payment that was applied granted anything: a checkout's
            // payment names its buyer and plan before it is paid.
            let applied = !matches!(payment.status.as_str(), "pending" | "failed" | "cancelled");
            let granted = payment
                .user_id
                .clone()
                .zip(payment.plan_id.clone())
                .filter(|_| applied);
            if let (true, Some((user_id, plan_id))) = (full, &granted) {
                let current = self
                    .store
                    .get_subscription(user_id, provider, plan_id)
                    .await?;
                // A queued pass refunded before it started takes back its own
                // days only; the pass running before it keeps its access.
                let refunded = |c: &SubscriptionRecord| match payment.starts_at {
                    Some(start) => refunded_queued_view(&c.view, start, full, now),
                    None => refunded_view(&c.view, full, now),
                };
                if let Some((current, view)) =
                    current.and_then(|c| refunded(&c).map(|view| (c, view)))
                {
                    let email = self.store.profile_email(user_id).await?;
                    if let Some(email) = email {
                        let plan_name = self
                            .settings
                            .plans
                            .get(plan_id)
                            .map(|p| p.name.clone())
                            .unwrap_or_else(|| plan_id.clone());
                        let data = BTreeMap::from([
                            ("email".to_string(), email.to_string()),
                            ("plan_name".to_string(), plan_name),
                        ]);
                        jobs.push(self.job(Template::RefundNotice, &email, data, now));
                    }
                    tx.restate_subscription(&current, &view, &delivery.key, now)?;
                }
            }
            tx.upsert_payment(&record, now)?;
            // A checkout's payment intent: its listed record says refunded too.
            if let Some(listed) = payment.listed_as.clone() {
                tx.upsert_payment(
                    &Payment {
                        reference: listed,
                        status: record.status.clone(),
                        amount: None,
                        currency: None,
                        user_id: None,
                        plan_id: None,
                        starts_at: None,
                        listed_as: None,
                        provider,
                    },
                    now,
                )?;
            }
            tracing::info!(event_key = %delivery.key, full, amount_refunded = amount_refunded.unwrap_or(0), "refund");
            Ok(Decision::apply(tx, jobs, payment.user_id.clone()))
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn subscription_change(
        &self,
        delivery: &Delivery,
        provider: Provider,
        member: MemberRef<'_>,
        plan: &Plan,
        state: SubscriptionState,
        period_end: Option<DateTime<Utc>>,
        created: DateTime<Utc>,
        rank: i64,
        provider_ref: Option<&str>,
    ) -> Result<WebhookOutcome, ServiceError> {
        self.run(delivery, |now| async move {
            let email = match member {
                MemberRef::Email(email, _) => Some(email),
                MemberRef::Customer(_) => None,
            };
            let customer = member.customer().map(|c| (provider, c));
            let loaded = self
                .store
                .load_for_event(&delivery.key, email, customer)
                .await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            if let (Some(email_user), Some(mapped), Some(c)) = (
                loaded.email.as_ref().map(|e| &e.user_id),
                &loaded.customer_user,
                member.customer(),
            ) {
                if email_user != mapped {
                    return Ok(Decision::failed(
                        customer_mismatch(provider, c, mapped),
                        Some(mapped.clone()),
                    ));
                }
            }
            let mut user_id = loaded.email.map(|e| e.user_id).or(loaded.customer_user);
            // A customer no checkout has mapped yet: Stripe's API may know its email.
            let resolved = match (user_id.is_none(), member) {
                (true, MemberRef::Customer(c)) if provider == Provider::Stripe => {
                    self.member_of_stripe_customer(c).await?
                }
                _ => None,
            };
            if resolved.is_some() {
                user_id = resolved.clone();
            }
            let Some(user_id) = user_id else {
                let Some(customer) = member.customer() else {
                    // Nothing to wait on: the provider's retry, or an admin replay, applies it.
                    return Ok(Decision::failed("no member with this email", None));
                };
                return Ok(Step::Wait {
                    provider,
                    customer: customer.to_string(),
                    entry: crate::store::WaitingEvent::new(&delivery.key, created, rank),
                    reason: format!(
                        "waiting for customer {customer}: no checkout or charge with an email seen yet"
                    ),
                    until: super::runner::Until::Mapped,
                }
                .into());
            };
            // One Query: the profile (for the notice's address) and every row.
            let Some(record) = self.store.load_member(&user_id).await? else {
                return Ok(Decision::failed(
                    format!("member {user_id} has no profile"),
                    Some(user_id),
                ));
            };
            let subscription_id = provider_ref.filter(|_| keyed_by_subscription(provider));
            let row = match row_for(&record.subscriptions, provider, &plan.id, subscription_id) {
                Ok(row) => row,
                Err(reason) => return Ok(Decision::failed(reason, Some(user_id))),
            };
            let current = row.current;
            // Paystack's disable after the member's own cancel keeps the paid
            // period; the member's note is spent with it.
            let softened = match (provider, current) {
                (Provider::Paystack, Some(c)) => {
                    let kept = disable_keeps_paid_period(
                        Some(&c.view),
                        record.stopped_renewal(provider, &c.row, provider_ref),
                        state,
                        now,
                    );
                    (kept != state).then_some((kept, c.row.clone()))
                }
                _ => None,
            };
            let state = softened.as_ref().map_or(state, |(kept, _)| *kept);
            if is_superseded(current, created, rank) {
                // Older than the subscription's state, but it may be the only
                // event that names it (a Paystack create after its first
                // charge, a Stripe row still keyed by its plan).
                // A row it would move under the subscription's id stays where
                // it is until an event that applies moves it.
                if let (Some(c), Some(reference)) = (current, provider_ref) {
                    if c.provider_ref.is_none() {
                        let mut tx = self.store.tx();
                        tx.set_subscription_ref(&user_id, provider, &c.row, reference, c.version)?;
                        return Ok(Decision::apply(tx, Vec::new(), user_id)
                            .with_status(EventStatus::Superseded));
                    }
                }
                return Ok(Decision::record(
                    EventStatus::Superseded,
                    None,
                    Some(user_id),
                ));
            }
            if let Some(row_ref) = current.and_then(|c| c.provider_ref.as_deref()) {
                if concerns_replaced_subscription(Some(row_ref), provider_ref, state) {
                    let reason = format!(
                        "about {}, which the member replaced on this plan with {row_ref}",
                        provider_ref.unwrap_or_default()
                    );
                    return Ok(Decision::record(
                        EventStatus::Superseded,
                        Some(reason),
                        Some(user_id),
                    ));
                }
            }
            if let Some(verdict) = leaves_unchanged(plan, current.map(|c| c.view.state), state) {
                return Ok(Decision::unchanged(verdict, user_id));
            }
            let previous = current.map(|c| c.view.state);
            let grace =
                Duration::from_std(self.settings.past_due_grace).unwrap_or(Duration::days(7));
            let view = reported_view(current.map(|c| &c.view), state, period_end, now, grace);
            let mut jobs = Vec::new();
            // Another subscription on the plan (not this row, nor the row it
            // moves) still grants access: nothing the member has ends.
            let this_row = keys::bounded(&row.key);
            let still_covered = record.subscriptions.iter().any(|s| {
                s.plan_id == plan.id
                    && s.row != this_row
                    && current.is_none_or(|c| c.row != s.row)
                    && has_access(s.view.state, s.view.access_until, now)
            });
            if let (Some(notice), Ok(email)) = (notice_for(previous, state, still_covered), Email::parse(&record.email)) {
                let data = BTreeMap::from([
                    ("email".to_string(), email.to_string()),
                    ("plan_name".to_string(), plan.name.clone()),
                    ("access_until".to_string(), human_date(view.access_until)),
                ]);
                let mut data = data;
                // Where to fix the card, for this very subscription.
                if notice == crate::domain::Notice::PaymentFailed {
                    data.insert(
                        "subscription".to_string(),
                        format!("{provider}:{}", row.key),
                    );
                }
                jobs.push(self.job(Template::for_notice(notice), &email, data, now));
            }
            // A plan-keyed row taken over is deleted in the same transaction,
            // and the row under the subscription's id must not exist yet.
            let mut tx = self.store.tx();
            if let Some((_, stopped_row)) = &softened {
                tx.clear_renewal_stop(&user_id, provider, stopped_row)?;
            }
            let expected = match current {
                Some(c) if row.adopts => {
                    tx.delete_subscription(&user_id, provider, &c.row, c.version)?;
                    None
                }
                other => other.map(|c| c.version),
            };
            tx.put_subscription(
                &user_id,
                provider,
                &row.key,
                &plan.id,
                &view,
                expected,
                &delivery.key,
                (created, rank),
                now,
                provider_ref.or(current.and_then(|c| c.provider_ref.as_deref())),
                false,
            )?;
            if let (Some(c), Some(_)) = (member.customer(), &resolved) {
                // Mapped in the same transaction; what waited on it applies after.
                tx.put_customer(provider, c, &user_id, &loaded.customer_waiting)?;
                return Ok(Decision::apply(tx, jobs, user_id.clone()).then_drain(
                    provider,
                    c,
                    &loaded.customer_waiting,
                ));
            }
            Ok(Decision::apply(tx, jobs, user_id))
        })
        .await
    }
}

/// Why an event whose email and provider customer name two members fails.
fn customer_mismatch(provider: Provider, customer: &str, mapped: &UserId) -> String {
    format!(
        "{provider} customer {customer} belongs to member {mapped}, not to the member with this email; link them by hand"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mark: DateTime<Utc>, rank: i64) -> SubscriptionRecord {
        SubscriptionRecord {
            user_id: UserId::from_stored("u"),
            provider: Provider::Stripe,
            row: "p".into(),
            plan_id: "p".into(),
            view: SubscriptionView {
                state: SubscriptionState::Active,
                period_end: None,
                access_until: None,
            },
            version: 1,
            watermark: Some(mark),
            watermark_rank: rank,
            provider_ref: None,
            last_event: None,
            one_time: false,
        }
    }

    #[test]
    fn ordering_by_created_then_lifecycle_rank() {
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let active = lifecycle_rank("active", false);
        let incomplete = lifecycle_rank("incomplete", false);
        assert!(!is_superseded(None, t, 0));
        assert!(is_superseded(
            Some(&record(t, 0)),
            t - Duration::seconds(1),
            50
        ));
        assert!(!is_superseded(
            Some(&record(t, 0)),
            t + Duration::seconds(1),
            0
        ));
        // Same second: updated(active) applied first, created(incomplete) after it is superseded.
        assert!(is_superseded(Some(&record(t, active)), t, incomplete));
        assert!(!is_superseded(Some(&record(t, incomplete)), t, active));
        // A redelivery at the same rank applies (idempotent).
        assert!(!is_superseded(Some(&record(t, active)), t, active));
    }
}
