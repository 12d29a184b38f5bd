//! What a signed-in member does to their own billing: turn a subscription's
//! renewal off or back on, and get a link to fix their card. Gatehouse asks
//! the provider; the stored state changes only through the provider's
//! webhook, so the member's request and the provider's own changes agree.

use chrono::{DateTime, Utc};

use super::Services;
use crate::domain::{Provider, UserId};
use crate::providers::api::ApiError;
use crate::store::{MemberRecord, StoreError, SubscriptionRecord};

/// Turn renewal off (cancel at period end) or back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Cancel,
    Resume,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfServiceError {
    #[error("the signed-in account no longer exists or is not active")]
    NoAccount,
    #[error("no subscription {0} on this account")]
    NotFound(String),
    /// Nothing Gatehouse can do through the provider; the text says what can be done.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0} is not configured: its secret key is not set")]
    NotConfigured(&'static str),
    #[error("{provider} did not answer; try again: {source}")]
    ProviderBusy {
        provider: &'static str,
        #[source]
        source: ApiError,
    },
    #[error("{provider} refused the change: {source}")]
    Provider {
        provider: &'static str,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the member is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalAnswer {
    pub status: &'static str,
    pub access_until: Option<DateTime<Utc>>,
    pub message: String,
}

/// The id `/account/me` gives a subscription: its provider and row.
pub fn subscription_id(sub: &SubscriptionRecord) -> String {
    format!("{}:{}", sub.provider, sub.row)
}

fn human(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%B %-d, %Y").to_string())
        .unwrap_or_else(|| "the end of the current period".into())
}

/// The member's answer for a change the provider accepted.
pub fn renewal_answer(change: Renewal, access_until: Option<DateTime<Utc>>) -> RenewalAnswer {
    match change {
        Renewal::Cancel => RenewalAnswer {
            status: "cancellation requested",
            access_until,
            message: format!(
                "cancellation requested; access until {}",
                human(access_until)
            ),
        },
        Renewal::Resume => RenewalAnswer {
            status: "resume requested",
            access_until,
            message: format!(
                "resume requested; the subscription renews after {}",
                human(access_until)
            ),
        },
    }
}

/// A transient provider failure is worth retrying (503); anything else is a refusal (502).
fn provider_failure(provider: &'static str, source: ApiError) -> SelfServiceError {
    if source.is_transient() {
        SelfServiceError::ProviderBusy { provider, source }
    } else {
        SelfServiceError::Provider { provider, source }
    }
}

/// A one-time purchase: marked so, or its plan is sold one-time or for life
/// (Paystack's rows are not marked, as its renewals are charges too).
pub fn is_pass(sub: &SubscriptionRecord, plans: &crate::domain::PlanCatalog) -> bool {
    sub.one_time
        || plans
            .get(&sub.plan_id)
            .is_some_and(|p| p.lifetime || p.sale.as_ref().is_some_and(|s| !s.recurring))
}

impl Services {
    /// After a Paystack re-enable: `GET /subscription/:code`, applied
    /// through the runner as an event of its own.
    async fn apply_resumed_paystack(
        &self,
        member: &MemberRecord,
        sub: &SubscriptionRecord,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SelfServiceError> {
        let (Some(api), Some(plan), Ok(email)) = (
            &self.paystack_api,
            self.settings.plans.get(&sub.plan_id),
            crate::domain::Email::parse(&member.email),
        ) else {
            return Ok(());
        };
        let seen = api
            .subscription(code)
            .await
            .map_err(|source| provider_failure("paystack", source))?;
        let body =
            serde_json::json!({"subscription_code": code, "status": seen.status}).to_string();
        let delivery = super::webhook::Delivery::new(
            Provider::Paystack,
            Some(format!(
                "gatehouse.resume:{code}:{}",
                now.timestamp_millis()
            )),
            "gatehouse.subscription.resumed",
            body.as_bytes(),
            now,
        );
        self.subscription_change(
            &delivery,
            Provider::Paystack,
            super::stripe::MemberRef::Email(&email, None),
            plan,
            seen.state,
            seen.period_end,
            // When the member resumed: after the disable it undoes.
            now,
            crate::domain::rank::ACTIVE,
            Some(code),
        )
        .await
        .map_err(|e| SelfServiceError::Store(StoreError::Request(e.to_string())))?;
        Ok(())
    }

    async fn active_member(&self, user: &UserId) -> Result<MemberRecord, SelfServiceError> {
        self.store
            .load_member(user)
            .await?
            .filter(|m| m.is_active)
            .ok_or(SelfServiceError::NoAccount)
    }

    /// Turns renewal of the member's subscription `id` off or back on at its provider.
    pub async fn change_renewal(
        &self,
        user: &UserId,
        id: &str,
        change: Renewal,
    ) -> Result<RenewalAnswer, SelfServiceError> {
        let member = self.active_member(user).await?;
        let Some(sub) = member
            .subscriptions
            .iter()
            .find(|s| subscription_id(s) == id)
        else {
            return Err(SelfServiceError::NotFound(id.to_string()));
        };
        if is_pass(sub, &self.settings.plans) {
            return Err(SelfServiceError::Unsupported(
                "a one-time purchase does not renew, so there is nothing to cancel or resume"
                    .into(),
            ));
        }
        let now = self.now();
        if !crate::domain::has_access(sub.view.state, sub.view.access_until, now) {
            return Err(SelfServiceError::Unsupported(format!(
                "this subscription has ended ({}); choose a plan to subscribe again",
                sub.view.state.as_str()
            )));
        }
        let provider_error =
            |provider: &'static str| move |source: ApiError| provider_failure(provider, source);
        match sub.provider {
            Provider::Kajabi => Err(SelfServiceError::Unsupported(
                "Kajabi has no API to cancel or resume a subscription: use the customer's \
                 Kajabi account (Settings → Billing) or ask the site owner to do it in Kajabi"
                    .into(),
            )),
            Provider::Admin => Err(SelfServiceError::NotFound(id.to_string())),
            Provider::Stripe => {
                let api = self
                    .stripe_api
                    .as_ref()
                    .ok_or(SelfServiceError::NotConfigured("stripe"))?;
                let stripe_id = if sub.row.starts_with("sub_") {
                    sub.row.clone()
                } else {
                    sub.provider_ref
                        .clone()
                        .ok_or_else(|| SelfServiceError::NotFound(id.to_string()))?
                };
                // A fresh key each time: setting the flag is idempotent anyway,
                // and a reused key would replay an older answer (cancel,
                // resume, cancel would end with Stripe still renewing).
                let key = format!("renewal-{}", crate::domain::PaymentReference::generate());
                let answered = api
                    .set_cancel_at_period_end(&stripe_id, change == Renewal::Cancel, &key)
                    .await
                    .map_err(provider_error("stripe"))?;
                tracing::info!(
                    provider = "stripe",
                    cancel = change == Renewal::Cancel,
                    "member changed renewal"
                );
                Ok(renewal_answer(
                    change,
                    answered.period_end.or(sub.view.period_end),
                ))
            }
            Provider::Paystack => {
                let api = self
                    .paystack_api
                    .as_ref()
                    .ok_or(SelfServiceError::NotConfigured("paystack"))?;
                let code = sub.provider_ref.clone().ok_or_else(|| {
                    SelfServiceError::Unsupported(
                        "Paystack has not told Gatehouse this subscription's code yet; try again shortly"
                            .into(),
                    )
                })?;
                let token = api
                    .subscription_token(&code)
                    .await
                    .map_err(provider_error("paystack"))?
                    .ok_or(SelfServiceError::Provider {
                        provider: "paystack",
                        source: ApiError::Body {
                            provider: "paystack",
                        },
                    })?;
                // Noted first (the disable's webhook may arrive before this
                // call returns), and kept if the call fails: Paystack may have
                // disabled it all the same, and the note softens only a
                // disable of this very subscription.
                if change == Renewal::Cancel {
                    self.store
                        .note_renewal(user, sub.provider, &sub.row, Some(&code), now)
                        .await?;
                }
                api.set_subscription_enabled(&code, &token, change == Renewal::Resume)
                    .await
                    .map_err(provider_error("paystack"))?;
                tracing::info!(
                    provider = "paystack",
                    cancel = change == Renewal::Cancel,
                    "member changed renewal"
                );
                if change == Renewal::Resume {
                    self.store
                        .note_renewal(user, sub.provider, &sub.row, None, now)
                        .await?;
                    // Paystack sends no event for a re-enable: its view is
                    // applied through the runner, as a sync applies it.
                    self.apply_resumed_paystack(&member, sub, &code, now)
                        .await?;
                }
                Ok(renewal_answer(change, sub.view.period_end))
            }
        }
    }

    /// Where the member fixes their card: a Stripe Billing Portal session for
    /// their Stripe customer, else Paystack's manage link for their Paystack
    /// subscription (`subscription` picks one by its `/account/me` id).
    pub async fn billing_link(
        &self,
        user: &UserId,
        subscription: Option<&str>,
    ) -> Result<String, SelfServiceError> {
        let member = self.active_member(user).await?;
        let chosen = match subscription {
            Some(id) => Some(
                member
                    .subscriptions
                    .iter()
                    .find(|s| subscription_id(s) == id)
                    .ok_or_else(|| SelfServiceError::NotFound(id.to_string()))?,
            ),
            None => None,
        };
        let stripe_customer = member.metadata.get("stripe_customer_id");
        let wants_stripe = chosen.map_or(stripe_customer.is_some(), |s| {
            s.provider == Provider::Stripe
        });
        if wants_stripe {
            let customer = stripe_customer.ok_or_else(|| {
                SelfServiceError::Unsupported("no Stripe customer on this account".into())
            })?;
            let api = self
                .stripe_api
                .as_ref()
                .ok_or(SelfServiceError::NotConfigured("stripe"))?;
            let key = format!("portal-{}", crate::domain::PaymentReference::generate());
            return api
                .billing_portal(customer, &self.settings.app_url, &key)
                .await
                .map_err(|source| SelfServiceError::Provider {
                    provider: "stripe",
                    source,
                });
        }
        let paystack = chosen
            .filter(|s| s.provider == Provider::Paystack)
            .or_else(|| {
                member
                    .subscriptions
                    .iter()
                    .find(|s| s.provider == Provider::Paystack && s.provider_ref.is_some())
            });
        match paystack.and_then(|s| s.provider_ref.as_deref()) {
            Some(code) => {
                let api = self
                    .paystack_api
                    .as_ref()
                    .ok_or(SelfServiceError::NotConfigured("paystack"))?;
                api.manage_link(code)
                    .await
                    .map_err(|source| SelfServiceError::Provider {
                        provider: "paystack",
                        source,
                    })
            }
            None => Err(SelfServiceError::Unsupported(
                "no Stripe or Paystack subscription on this account has a card to update".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_answer_names_the_end_of_access() {
        let until = Utc.with_ymd_and_hms(2027, 1, 7, 0, 0, 0).unwrap();
        let answer = renewal_answer(Renewal::Cancel, Some(until));
        assert_eq!(answer.status, "cancellation requested");
        assert_eq!(
            answer.message,
            "cancellation requested; access until January 7, 2027"
        );
        assert!(renewal_answer(Renewal::Resume, None)
            .message
            .contains("renews after the end of the current period"));
    }
}
