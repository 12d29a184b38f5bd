//! Gatehouse's own checkout. A member (or a visitor, by email) chooses a plan;
//! Gatehouse writes a `pending` payment bound to them under a random
//! reference and opens the provider's hosted page. The buyer's return is
//! verified with the provider's API and applied through the event runner
//! under the key the provider's webhook for the same payment has (Stripe:
//! `checkout.paid:<session>`; Paystack: `charge.success:<transaction id>`),
//! so the return and the webhook have one effect together, whichever is first.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::webhook::Delivery;
use super::{ServiceError, Services};
use crate::domain::{
    has_access, judge_return, CheckoutProvider, ChoiceError, Email, Money, PaymentReference,
    Refusal, ReturnVerdict, Sale, UserId, VerifiedPayment,
};
use crate::providers::api::ApiError;
use crate::providers::paystack::PaystackEvent;
use crate::providers::stripe::StripeEvent;
use crate::store::{CheckoutPayment, CommitError, MemberRecord, NewUser, StoreError};

/// Checkouts a visitor may start for one address in an hour.
pub const VISITOR_CHECKOUTS_PER_ADDRESS_PER_HOUR: u32 = 10;

/// Who is buying.
#[derive(Debug, Clone)]
pub enum Buyer {
    /// A signed-in member.
    Member(UserId),
    /// A visitor with no session: the account is created inactive now, and
    /// its setup link is sent once the payment is applied.
    Visitor(Email),
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("payments are disabled")]
    Disabled,
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error("{0} checkout is not configured: its secret key is not set")]
    NotConfigured(&'static str),
    #[error("the signed-in account no longer exists or is not active")]
    NoAccount,
    #[error("too many checkouts for this address or from everyone just now; try again later")]
    RateLimited,
    #[error("{provider} could not open the checkout: {source}")]
    Provider {
        provider: &'static str,
        /// The payment, kept `failed` with the provider's answer.
        reference: PaymentReference,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not write the payment: {0}")]
    Commit(#[from] CommitError),
}

/// A checkout the buyer can be sent to.
#[derive(Debug, Clone)]
pub struct StartedCheckout {
    pub reference: PaymentReference,
    pub url: String,
}

/// What a return came to, for the return page.
#[derive(Debug, Clone)]
pub enum ReturnOutcome {
    /// Applied (now or earlier): the payment has succeeded.
    Paid(CheckoutPayment),
    /// Paid but not applied yet, or still settling at the provider.
    Processing(CheckoutPayment),
    /// Not paid: the payment is `failed` with the provider's answer.
    Unpaid(CheckoutPayment),
    /// The buyer left the provider's page.
    Cancelled(CheckoutPayment),
    /// Nothing granted, nothing changed.
    Refused(Refusal),
}

impl ReturnOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Paid(_) => "paid",
            Self::Processing(_) => "processing",
            Self::Unpaid(_) => "unpaid",
            Self::Cancelled(_) => "cancelled",
            Self::Refused(_) => "refused",
        }
    }

    pub fn payment(&self) -> Option<&CheckoutPayment> {
        match self {
            Self::Paid(p) | Self::Processing(p) | Self::Unpaid(p) | Self::Cancelled(p) => Some(p),
            Self::Refused(_) => None,
        }
    }
}

/// The Stripe Checkout form for one plan.
#[allow(clippy::too_many_arguments)]
fn stripe_form(
    frontend_url: &str,
    price: &str,
    recurring: bool,
    reference: &PaymentReference,
    plan_id: &str,
    email: &Email,
    customer: Option<&str>,
) -> Vec<(String, String)> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut form = vec![
        pair("mode", if recurring { "subscription" } else { "payment" }),
        pair("line_items[0][price]", price),
        pair("line_items[0][quantity]", "1"),
        pair("client_reference_id", reference.as_str()),
        pair("metadata[reference]", reference.as_str()),
        pair("metadata[plan]", plan_id),
        pair(
            "success_url",
            &format!("{frontend_url}/payments/stripe/success?session_id={{CHECKOUT_SESSION_ID}}"),
        ),
        pair(
            "cancel_url",
            &format!(
                "{frontend_url}/payments/stripe/cancel?reference={reference}&session_id={{CHECKOUT_SESSION_ID}}"
            ),
        ),
    ];
    if recurring {
        form.push(pair(
            "subscription_data[metadata][reference]",
            reference.as_str(),
        ));
        form.push(pair("subscription_data[metadata][plan]", plan_id));
    }
    match customer {
        Some(c) => form.push(pair("customer", c)),
        None => form.push(pair("customer_email", email.as_str())),
    }
    form
}

/// What Stripe's Checkout Session says of the payment.
fn stripe_verified(session: &Value) -> VerifiedPayment {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let payment_status = text(session.get("payment_status")).unwrap_or_default();
    let status = text(session.get("status")).unwrap_or_default();
    let paid = matches!(payment_status.as_str(), "paid" | "no_payment_required");
    VerifiedPayment {
        status: format!("{status}/{payment_status}"),
        paid,
        // Open (not paid yet) or complete and settling (delayed methods):
        // only an expired session is over.
        processing: !paid && status != "expired",
        reference: text(session.get("client_reference_id")),
        session_id: text(session.get("id")),
        email: text(session.get("customer_details").and_then(|c| c.get("email")))
            .or_else(|| text(session.get("customer_email"))),
        price: None,
        plan_code: None,
        gateway_answer: None,
    }
}

/// What Paystack's transaction says of the payment.
fn paystack_verified(data: &Value) -> VerifiedPayment {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let status = text(data.get("status")).unwrap_or_default();
    // `amount` can include fees passed to the buyer; `requested_amount` is what was asked.
    let asked = data
        .get("requested_amount")
        .and_then(Value::as_i64)
        .or_else(|| data.get("amount").and_then(Value::as_i64));
    let price = match (asked, text(data.get("currency"))) {
        (Some(amount), Some(currency)) => Some(Money {
            amount,
            currency: currency.to_ascii_lowercase(),
        }),
        _ => None,
    };
    VerifiedPayment {
        paid: status == "success",
        processing: matches!(
            status.as_str(),
            "ongoing" | "pending" | "processing" | "queued"
        ),
        status,
        reference: text(data.get("reference")),
        session_id: None,
        email: text(data.get("customer").and_then(|c| c.get("email"))),
        price,
        // Verify answers `plan` as a code, with the details in `plan_object`.
        plan_code: text(data.get("plan_object").and_then(|p| p.get("plan_code")))
            .or_else(|| text(data.get("plan")).filter(|p| p.starts_with("PLN_"))),
        gateway_answer: text(data.get("gateway_response")),
    }
}

/// Access a member holds through `plan_id` now: `Some(None)` never ends.
pub fn plan_access(
    member: &MemberRecord,
    plan_id: &str,
    now: DateTime<Utc>,
) -> Option<Option<DateTime<Utc>>> {
    let mut best: Option<Option<DateTime<Utc>>> = None;
    for sub in member
        .subscriptions
        .iter()
        .filter(|s| s.plan_id == plan_id && has_access(s.view.state, s.view.access_until, now))
    {
        best = Some(match (best, sub.view.access_until) {
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
            (None, Some(b)) => Some(b),
        });
    }
    best
}

impl Services {
    /// Opens a checkout for `buyer`: the pending payment first, then the
    /// provider's hosted page. A provider that cannot open it leaves the
    /// payment `failed` with its answer.
    pub async fn start_checkout(
        &self,
        buyer: &Buyer,
        plan_id: &str,
        provider_name: &str,
    ) -> Result<StartedCheckout, CheckoutError> {
        if !self.settings.payments_enabled {
            return Err(CheckoutError::Disabled);
        }
        let (plan, sale, provider) = self.settings.plans.choose(plan_id, provider_name)?;
        let configured = match provider {
            CheckoutProvider::Stripe => self.stripe_api.is_some(),
            CheckoutProvider::Paystack => self.paystack_api.is_some(),
        };
        if !configured {
            return Err(CheckoutError::NotConfigured(provider.as_str()));
        }
        let now = self.now();
        let reference = PaymentReference::generate();
        let (user_id, email, customer) = self.checkout_buyer(buyer, provider, now).await?;
        let (price, plan_code) = match (provider, &sale.paystack) {
            (CheckoutProvider::Paystack, Some(p)) => (Some(p.price.clone()), p.plan_code.clone()),
            _ => (None, None),
        };
        let payment = CheckoutPayment {
            provider: provider.provider(),
            reference: reference.clone(),
            user_id: user_id.clone(),
            email: email.clone(),
            plan_id: plan.id.clone(),
            status: "pending".into(),
            price,
            plan_code,
            session_id: None,
            reason: None,
            created_at: Some(now),
        };
        let mut tx = self.store.tx();
        tx.start_checkout(&payment, now)?;
        self.store.commit(tx).await?;
        let opened = self
            .open_at_provider(provider, sale, &payment, customer.as_deref())
            .await;
        match opened {
            Ok((url, session)) => {
                if let Some(session) = session {
                    self.store
                        .checkout_opened(payment.provider, &reference, &session, now)
                        .await?;
                }
                tracing::info!(provider = provider.as_str(), plan = %plan.id, reference = %reference, "checkout opened");
                Ok(StartedCheckout { reference, url })
            }
            Err(source) => {
                let reason = format!(
                    "{} could not open the checkout: {source}",
                    provider.as_str()
                );
                self.store
                    .close_checkout(payment.provider, &reference, "failed", &reason, now)
                    .await?;
                tracing::warn!(provider = provider.as_str(), reference = %reference, error = %source, "checkout not opened");
                Err(CheckoutError::Provider {
                    provider: provider.as_str(),
                    reference,
                    source,
                })
            }
        }
    }

    /// The buyer's account, address and (Stripe) known customer. A visitor's
    /// new address gets an inactive account now; an address Gatehouse knows
    /// is that account's, whatever its state, so the answer never says which.
    async fn checkout_buyer(
        &self,
        buyer: &Buyer,
        provider: CheckoutProvider,
        now: DateTime<Utc>,
    ) -> Result<(UserId, Email, Option<String>), CheckoutError> {
        // Only a signed-in member's checkout names their Stripe customer: a
        // visitor typing a member's address must not reach that customer's
        // saved cards, nor learn from the page that the address is a member.
        let customer_of = |member: &MemberRecord| match provider {
            CheckoutProvider::Stripe => member.metadata.get("stripe_customer_id").cloned(),
            CheckoutProvider::Paystack => None,
        };
        match buyer {
            Buyer::Member(user_id) => {
                let member = self
                    .store
                    .load_member(user_id)
                    .await?
                    .filter(|m| m.is_active)
                    .ok_or(CheckoutError::NoAccount)?;
                let email = Email::parse(&member.email).map_err(|_| CheckoutError::NoAccount)?;
                Ok((user_id.clone(), email, customer_of(&member)))
            }
            Buyer::Visitor(email) => {
                self.count_visitor_checkout(email, now).await?;
                // Two attempts: a concurrent first checkout for the same new
                // address wins the email item, and the second binds to it.
                for _ in 0..2 {
                    if let Some(record) = self.store.get_email(email).await? {
                        return Ok((record.user_id, email.clone(), None));
                    }
                    let user_id = UserId::generate(now.timestamp_millis());
                    let mut tx = self.store.tx();
                    tx.create_user(
                        &NewUser {
                            id: user_id.clone(),
                            email: email.clone(),
                            first_name: None,
                            last_name: None,
                            auth_provider: provider.provider(),
                            metadata: std::collections::BTreeMap::from([(
                                "signup_date".to_string(),
                                crate::store::timestamp(now),
                            )]),
                            awaiting_payment: true,
                        },
                        now,
                    )?;
                    match self.store.commit(tx).await {
                        Ok(()) => return Ok((user_id, email.clone(), None)),
                        Err(CommitError::ConditionFailed { .. } | CommitError::Conflict) => {
                            continue
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(CheckoutError::Commit(CommitError::Conflict))
            }
        }
    }

    /// A visitor's checkout counts against its address (per hour) and
    /// everyone's (per minute): each may make an account and a provider
    /// session, so neither is free to repeat.
    async fn count_visitor_checkout(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<(), CheckoutError> {
        let mut tx = self.store.tx();
        let address = format!(
            "{}#{}",
            crate::signature::sha256_hex(email.as_str().as_bytes()),
            now.format("%Y%m%d%H")
        );
        tx.count_within(
            "checkout-address",
            &address,
            VISITOR_CHECKOUTS_PER_ADDRESS_PER_HOUR,
            now + chrono::Duration::hours(2),
        )?;
        tx.count_within(
            "checkout-global",
            &now.format("%Y%m%d%H%M").to_string(),
            self.settings.resend_global_per_minute,
            now + chrono::Duration::minutes(10),
        )?;
        match self.store.commit(tx).await {
            Ok(()) => Ok(()),
            Err(CommitError::ConditionFailed { .. }) => Err(CheckoutError::RateLimited),
            Err(e) => Err(e.into()),
        }
    }

    /// The provider's hosted page for `payment`, and Stripe's session id.
    async fn open_at_provider(
        &self,
        provider: CheckoutProvider,
        sale: &Sale,
        payment: &CheckoutPayment,
        customer: Option<&str>,
    ) -> Result<(String, Option<String>), ApiError> {
        let frontend = &self.settings.frontend_url;
        match (provider, &self.stripe_api, &self.paystack_api) {
            (CheckoutProvider::Stripe, Some(api), _) => {
                let price = sale.stripe.as_ref().map(|s| s.price.as_str()).unwrap_or("");
                let form = stripe_form(
                    frontend,
                    price,
                    sale.recurring,
                    &payment.reference,
                    &payment.plan_id,
                    &payment.email,
                    customer,
                );
                let created = api
                    .create_checkout_session(&form, &format!("checkout-{}", payment.reference))
                    .await?;
                Ok((created.url, Some(created.session_id)))
            }
            (CheckoutProvider::Paystack, _, Some(api)) => {
                let Some(price) = sale.paystack.as_ref() else {
                    return Err(ApiError::Body {
                        provider: "paystack",
                    });
                };
                let mut body = json!({
                    "email": payment.email.as_str(),
                    "amount": price.price.amount,
                    "currency": price.price.currency.to_uppercase(),
                    "reference": payment.reference.as_str(),
                    "callback_url": format!("{frontend}/payments/paystack/callback"),
                    "metadata": {"plan": payment.plan_id, "reference": payment.reference.as_str()},
                });
                if let Some(code) = &price.plan_code {
                    body["plan"] = json!(code);
                }
                let initialized = api.initialize_transaction(&body).await?;
                Ok((initialized.authorization_url, None))
            }
            _ => Err(ApiError::Unreachable {
                provider: provider.as_str(),
                detail: "no API client".into(),
            }),
        }
    }

    /// `GET /payments/stripe/success?session_id=…`: the session as Stripe
    /// has it, judged against the payment started, and applied if paid.
    pub async fn stripe_return(
        &self,
        session_id: &str,
        signed_in: Option<&UserId>,
    ) -> Result<ReturnOutcome, ServiceError> {
        let Some(api) = &self.stripe_api else {
            return Err(ServiceError::Internal(
                "STRIPE_SECRET_KEY is not set".into(),
            ));
        };
        if !session_id.starts_with("cs_") {
            return Ok(ReturnOutcome::Refused(Refusal::NotAtProvider));
        }
        let session = match api.checkout_session(session_id).await {
            Ok(session) => session,
            Err(ApiError::NotFound { .. }) => {
                return Ok(ReturnOutcome::Refused(Refusal::NotAtProvider))
            }
            // 401 (a wrong key) and the like: Gatehouse's problem, not the buyer's.
            Err(e) => return Err(e.into()),
        };
        let verified = stripe_verified(&session);
        let bound = match verified
            .reference
            .as_deref()
            .and_then(PaymentReference::parse)
        {
            Some(reference) => {
                self.store
                    .get_checkout(crate::domain::Provider::Stripe, &reference)
                    .await?
            }
            None => None,
        };
        let now = self.now();
        let event = json!({
            "id": format!("return:{session_id}"), "object": "event",
            "type": "checkout.session.completed", "created": now.timestamp(),
            "data": {"object": session},
        });
        self.settle_return(bound, verified, signed_in, &event, now, |services, body| {
            let parsed = StripeEvent::from_json(&event);
            let delivery = Delivery::new(
                crate::domain::Provider::Stripe,
                parsed.key_id(),
                "checkout.session.completed",
                body,
                now,
            );
            Box::pin(async move {
                services
                    .process_stripe(&delivery, &parsed)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// `GET /payments/paystack/callback?reference=…`: the transaction as
    /// Paystack has it, judged against the payment started, and applied if paid.
    pub async fn paystack_return(
        &self,
        raw_reference: &str,
        signed_in: Option<&UserId>,
    ) -> Result<ReturnOutcome, ServiceError> {
        let Some(reference) = PaymentReference::parse(raw_reference) else {
            return Ok(ReturnOutcome::Refused(Refusal::UnknownReference));
        };
        let Some(api) = &self.paystack_api else {
            return Err(ServiceError::Internal(
                "PAYSTACK_SECRET_KEY is not set".into(),
            ));
        };
        let bound = self
            .store
            .get_checkout(crate::domain::Provider::Paystack, &reference)
            .await?;
        if bound.is_none() {
            return Ok(ReturnOutcome::Refused(Refusal::UnknownReference));
        }
        let data = match api.transaction(reference.as_str()).await {
            Ok(Some(data)) => data,
            Ok(None) => return Ok(ReturnOutcome::Refused(Refusal::NotAtProvider)),
            Err(e) => return Err(e.into()),
        };
        let verified = paystack_verified(&data);
        let now = self.now();
        let event = json!({"event": "charge.success", "data": data});
        self.settle_return(bound, verified, signed_in, &event, now, |services, body| {
            let parsed = PaystackEvent::from_json(&event);
            let delivery = Delivery::new(
                crate::domain::Provider::Paystack,
                parsed.key_id(),
                "charge.success",
                body,
                now,
            );
            Box::pin(async move {
                services
                    .process_paystack(&delivery, &parsed)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Judges a verified return and acts on the verdict; `apply` runs the
    /// provider's own processing of the payment as its webhook would.
    async fn settle_return<'a, F>(
        &'a self,
        bound: Option<CheckoutPayment>,
        verified: VerifiedPayment,
        signed_in: Option<&UserId>,
        event: &Value,
        now: DateTime<Utc>,
        apply: F,
    ) -> Result<ReturnOutcome, ServiceError>
    where
        F: FnOnce(
            &'a Services,
            &[u8],
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), ServiceError>> + Send + 'a>,
        >,
    {
        let verdict = judge_return(
            bound.as_ref().map(CheckoutPayment::bound).as_ref(),
            Some(&verified),
            signed_in,
        );
        let payment = match (verdict, bound) {
            (ReturnVerdict::Apply, Some(payment)) => payment,
            (ReturnVerdict::Processing, Some(payment)) => {
                return Ok(ReturnOutcome::Processing(payment))
            }
            (ReturnVerdict::Unpaid(reason), Some(payment)) => {
                self.store
                    .close_checkout(payment.provider, &payment.reference, "failed", &reason, now)
                    .await?;
                let payment = self.reloaded(payment).await?;
                return Ok(ReturnOutcome::Unpaid(payment));
            }
            (ReturnVerdict::Refused(why), bound) => {
                tracing::info!(refused = why.code(), "checkout return grants nothing");
                // The buyer's own checkout, paid otherwise than started: kept
                // on the payment for support. (A webhook applying it later
                // settles it as the provider reports.)
                if let (Refusal::Mismatch, Some(payment)) = (why, bound) {
                    self.store
                        .close_checkout(
                            payment.provider,
                            &payment.reference,
                            "failed",
                            "the payment at the provider does not match the checkout started (amount, currency, plan or email)",
                            now,
                        )
                        .await?;
                }
                return Ok(ReturnOutcome::Refused(why));
            }
            // `judge_return` refuses a return with no payment started.
            (_, None) => return Ok(ReturnOutcome::Refused(Refusal::UnknownReference)),
        };
        let body = event.to_string().into_bytes();
        apply(self, &body).await?;
        let payment = self.reloaded(payment).await?;
        Ok(if payment.status == "succeeded" {
            ReturnOutcome::Paid(payment)
        } else {
            ReturnOutcome::Processing(payment)
        })
    }

    async fn reloaded(&self, payment: CheckoutPayment) -> Result<CheckoutPayment, ServiceError> {
        Ok(self
            .store
            .get_checkout(payment.provider, &payment.reference)
            .await?
            .unwrap_or(payment))
    }

    /// `GET /payments/stripe/cancel?reference=…`: the buyer left Stripe
    /// Checkout; a pending payment becomes `cancelled`.
    pub async fn stripe_cancelled(
        &self,
        raw_reference: &str,
        signed_in: Option<&UserId>,
    ) -> Result<ReturnOutcome, ServiceError> {
        let Some(reference) = PaymentReference::parse(raw_reference) else {
            return Ok(ReturnOutcome::Refused(Refusal::UnknownReference));
        };
        let Some(payment) = self
            .store
            .get_checkout(crate::domain::Provider::Stripe, &reference)
            .await?
        else {
            return Ok(ReturnOutcome::Refused(Refusal::UnknownReference));
        };
        if signed_in.is_some_and(|user| *user != payment.user_id) {
            return Ok(ReturnOutcome::Refused(Refusal::OtherAccount));
        }
        let now = self.now();
        self.store
            .close_checkout(
                payment.provider,
                &reference,
                "cancelled",
                "the buyer left Stripe Checkout",
                now,
            )
            .await?;
        let payment = self.reloaded(payment).await?;
        Ok(match payment.status.as_str() {
            "succeeded" => ReturnOutcome::Paid(payment),
            _ => ReturnOutcome::Cancelled(payment),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripe_form_carries_the_reference_and_the_return_urls() {
        let reference = PaymentReference::generate();
        let email = Email::parse("ann@example.com").unwrap();
        let form = stripe_form(
            "https://gh.example",
            "price_m",
            true,
            &reference,
            "premium_monthly",
            &email,
            None,
        );
        let get = |k: &str| {
            form.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("mode"), Some("subscription"));
        assert_eq!(get("client_reference_id"), Some(reference.as_str()));
        assert_eq!(get("metadata[plan]"), Some("premium_monthly"));
        assert_eq!(get("customer_email"), Some("ann@example.com"));
        assert_eq!(get("customer"), None);
        assert_eq!(
            get("success_url"),
            Some("https://gh.example/payments/stripe/success?session_id={CHECKOUT_SESSION_ID}")
        );
        assert!(get("cancel_url").unwrap().contains(reference.as_str()));
        let known = stripe_form(
            "https://gh.example",
            "price_l",
            false,
            &reference,
            "premium_lifetime",
            &email,
            Some("cus_1"),
        );
        assert!(known.contains(&("mode".into(), "payment".into())));
        assert!(known.contains(&("customer".into(), "cus_1".into())));
        assert!(!known.iter().any(|(k, _)| k == "customer_email"));
        assert!(!known
            .iter()
            .any(|(k, _)| k.starts_with("subscription_data")));
    }

    #[test]
    fn stripe_sessions_are_paid_open_or_over() {
        let paid = stripe_verified(&json!({"id": "cs_1", "status": "complete",
            "payment_status": "paid", "client_reference_id": "gh-x", "customer_details": {"email": "a@b.co"}}));
        assert!(paid.paid && !paid.processing);
        assert_eq!(paid.email.as_deref(), Some("a@b.co"));
        let open =
            stripe_verified(&json!({"id": "cs_1", "status": "open", "payment_status": "unpaid"}));
        assert!(!open.paid && open.processing);
        let expired = stripe_verified(
            &json!({"id": "cs_1", "status": "expired", "payment_status": "unpaid"}),
        );
        assert!(!expired.paid && !expired.processing);
    }

    #[test]
    fn paystack_transactions_are_success_or_not() {
        let ok = paystack_verified(&json!({"status": "success", "reference": "gh-x",
            "amount": 500000, "currency": "NGN", "customer": {"email": "a@b.co"}}));
        assert!(ok.paid);
        assert_eq!(ok.price.unwrap().currency, "ngn");
        let abandoned =
            paystack_verified(&json!({"status": "abandoned", "amount": 1, "currency": "NGN"}));
        assert!(!abandoned.paid && !abandoned.processing);
        assert!(paystack_verified(&json!({"status": "ongoing"})).processing);
    }
}
