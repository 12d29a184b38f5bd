//! Admin verify and sync: compare each stored subscription with the
//! provider's current view (Stripe `GET /v1/subscriptions/{id}`, Paystack
//! `GET /subscription/{code}`, Kajabi's v1 purchases), and apply that view
//! through the same state machine webhooks use.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::admin_change::{not_found, AdminChange, ChangeAnswer};
use super::stripe::MemberRef;
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::{has_access, Email, Provider, SubscriptionState};
use crate::providers::api::{ApiError, ProviderSubscription};
use crate::providers::kajabi::{LifecycleChange, Member};
use crate::store::{MemberRecord, SubscriptionRecord};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The provider failed (5xx after retries, unreachable, garbled): a 502.
    #[error(transparent)]
    Provider(ApiError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::store::StoreError> for SyncError {
    fn from(e: crate::store::StoreError) -> Self {
        SyncError::Service(e.into())
    }
}

/// What the provider said about one stored subscription.
#[derive(Debug, Clone)]
enum Lookup {
    Found(ProviderSubscription),
    /// The provider answered 404 for the stored reference.
    Missing,
    /// No provider id was ever recorded for it (e.g. a one-time purchase).
    NoReference,
    /// The provider's API key is not configured.
    NotConfigured(&'static str),
}

/// The most a request's provider lookups may take together (retries and `Retry-After` waits included).
const PROVIDER_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

fn time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Differences worth acting on: the plan, the state, and the period end when both know it.
fn differences(
    catalog: &crate::domain::PlanCatalog,
    stored: &SubscriptionRecord,
    seen: &ProviderSubscription,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(other) = other_plan(catalog, stored, seen) {
        out.push(other);
        return out;
    }
    // Kajabi's purchases say nothing of a cancel: a canceled purchase stays
    // active there until its end, which is what Gatehouse holds too.
    let canceled_running = stored.provider == Provider::Kajabi
        && stored.view.state == SubscriptionState::Canceled
        && seen.state == SubscriptionState::Active
        && has_access(stored.view.state, stored.view.access_until, now);
    // Nor a refund: Kajabi reports a refunded purchase as active or
    // deactivated, and a sync must never hand a refunded plan back.
    let refunded =
        stored.provider == Provider::Kajabi && stored.view.state == SubscriptionState::Refunded;
    if stored.view.state != seen.state && !canceled_running && !refunded {
        out.push(format!(
            "state: stored {}, provider {} ({})",
            stored.view.state.as_str(),
            seen.state.as_str(),
            seen.status
        ));
    }
    if let (Some(a), Some(b)) = (stored.view.period_end, seen.period_end) {
        if (a - b).num_seconds().abs() > 1 {
            out.push(format!(
                "period_end: stored {}, provider {}",
                time(Some(a)).unwrap_or_default(),
                time(Some(b)).unwrap_or_default()
            ));
        }
    }
    out
}

/// The provider's products name another plan: a plan change, which the
/// provider's own webhook applies (sync never moves state across plans).
fn other_plan(
    catalog: &crate::domain::PlanCatalog,
    stored: &SubscriptionRecord,
    seen: &ProviderSubscription,
) -> Option<String> {
    if seen.products.is_empty() || stored.provider == Provider::Kajabi {
        return None;
    }
    let plans: Vec<&str> = seen
        .products
        .iter()
        .filter_map(|p| catalog.for_product(stored.provider, p))
        .map(|plan| plan.id.as_str())
        .collect();
    (!plans.is_empty() && !plans.contains(&stored.plan_id.as_str())).then(|| {
        format!(
            "plan: stored {}, provider's products map to {}",
            stored.plan_id,
            plans.join(", ")
        )
    })
}

impl Services {
    /// The provider's view, by `deadline` (one `PROVIDER_BUDGET` for the whole
    /// request), so the answer beats API Gateway's 30 s.
    async fn lookup(
        &self,
        sub: &SubscriptionRecord,
        deadline: tokio::time::Instant,
    ) -> Result<Lookup, SyncError> {
        let provider = sub.provider.as_str();
        match tokio::time::timeout_at(deadline, self.lookup_unbounded(sub)).await {
            Ok(result) => result,
            Err(_) => Err(SyncError::Provider(ApiError::Unreachable {
                provider: match sub.provider {
                    Provider::Stripe => "stripe",
                    Provider::Paystack => "paystack",
                    _ => "kajabi",
                },
                detail: format!(
                    "{provider} gave no answer within {} s",
                    PROVIDER_BUDGET.as_secs()
                ),
            })),
        }
    }

    async fn lookup_unbounded(&self, sub: &SubscriptionRecord) -> Result<Lookup, SyncError> {
        let Some(reference) = sub.provider_ref.as_deref() else {
            return Ok(Lookup::NoReference);
        };
        let result = match sub.provider {
            Provider::Stripe => match &self.stripe_api {
                Some(api) => api.subscription(reference).await,
                None => return Ok(Lookup::NotConfigured("STRIPE_SECRET_KEY")),
            },
            Provider::Paystack => match &self.paystack_api {
                Some(api) => api.subscription(reference).await,
                None => return Ok(Lookup::NotConfigured("PAYSTACK_SECRET_KEY")),
            },
            Provider::Kajabi => match &self.kajabi_api {
                Some(api) => {
                    let offers = self
                        .settings
                        .plans
                        .products_for(Provider::Kajabi, &sub.plan_id);
                    api.membership(reference, &offers).await
                }
                None => {
                    return Ok(Lookup::NotConfigured(
                        "KAJABI_CLIENT_ID and KAJABI_CLIENT_SECRET",
                    ))
                }
            },
            Provider::Admin => return Ok(Lookup::NoReference),
        };
        match result {
            Ok(seen) => Ok(Lookup::Found(seen)),
            Err(ApiError::NotFound { .. }) => Ok(Lookup::Missing),
            Err(e) => Err(SyncError::Provider(e)),
        }
    }

    fn report(
        &self,
        user: &MemberRecord,
        sub: &SubscriptionRecord,
        lookup: &Lookup,
        now: DateTime<Utc>,
    ) -> Value {
        let database = json!({
            "state": sub.view.state.as_str(),
            "access": has_access(sub.view.state, sub.view.access_until, now),
            "period_end": time(sub.view.period_end),
            "access_until": time(sub.view.access_until),
        });
        let sync = format!("POST /admin/users/{}/sync-subscription", user.user_id);
        let (provider, diffs, action): (Value, Vec<String>, Option<String>) = match lookup {
            Lookup::Found(seen) => {
                let diffs = differences(&self.settings.plans, sub, seen, now);
                let action = (!diffs.is_empty()).then(|| sync.clone());
                (
                    json!({"found": true, "status": seen.status, "state": seen.state.as_str(), "period_end": time(seen.period_end), "products": seen.products}),
                    diffs,
                    action,
                )
            }
            Lookup::Missing => (
                json!({"found": false}),
                vec!["the provider has no subscription with the stored reference".into()],
                Some("check the provider's dashboard; sync does not apply a subscription the provider does not have".into()),
            ),
            Lookup::NoReference => (
                json!({"found": null, "note": "no provider reference recorded (a one-time purchase, or data older than references)"}),
                vec![],
                None,
            ),
            Lookup::NotConfigured(setting) => (
                json!({"found": null, "note": format!("{setting} is not configured")}),
                vec![],
                None,
            ),
        };
        json!({
            "provider": sub.provider.as_str(),
            "plan": sub.plan_id,
            "provider_ref": sub.provider_ref,
            "database_status": database,
            "provider_status": provider,
            "mismatch": !diffs.is_empty(),
            "differences": diffs,
            "recommended_action": action,
        })
    }

    /// `GET /admin/users/{id}/verify-subscription`. `None`: no such user.
    pub async fn admin_verify(
        &self,
        user: &crate::domain::UserId,
    ) -> Result<Option<Value>, SyncError> {
        let Some(member) = self.store.load_member(user).await? else {
            return Ok(None);
        };
        let now = self.now();
        let deadline = tokio::time::Instant::now() + PROVIDER_BUDGET;
        let mut rows = Vec::new();
        for sub in &member.subscriptions {
            let lookup = self.lookup(sub, deadline).await?;
            rows.push(self.report(&member, sub, &lookup, now));
        }
        let mismatch = rows.iter().any(|r| r["mismatch"] == true);
        let recommended = rows
            .iter()
            .find_map(|r| r["recommended_action"].as_str().map(str::to_string));
        Ok(Some(json!({
            "user": {"id": member.user_id.as_str(), "email": member.email, "kajabi_member_id": member.metadata.get("kajabi_member_id")},
            "subscriptions": rows,
            "mismatch": mismatch,
            "recommended_action": recommended,
        })))
    }

    /// `POST /admin/users/{id}/sync-subscription`: applies each mismatched
    /// provider view as an admin event through the webhook state machine.
    pub async fn admin_sync(&self, change: &AdminChange) -> Result<ChangeAnswer, SyncError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let Some(user) = change.target_user.as_ref() else {
            return Err(ServiceError::Internal("sync needs a user".into()).into());
        };
        let Some(member) = self.store.load_member(user).await? else {
            return Ok(not_found(user));
        };
        let email = Email::parse(&member.email)
            .map_err(|e| ServiceError::Internal(format!("stored email is invalid: {e}")))?;
        let now = self.now();
        let deadline = tokio::time::Instant::now() + PROVIDER_BUDGET;
        let mut results = Vec::new();
        for sub in &member.subscriptions {
            let lookup = self.lookup(sub, deadline).await?;
            let Lookup::Found(seen) = &lookup else {
                results.push(json!({"provider": sub.provider.as_str(), "plan": sub.plan_id, "old_status": sub.view.state.as_str(), "new_status": sub.view.state.as_str(), "applied": false, "reason": self.report(&member, sub, &lookup, now)["provider_status"].clone()}));
                continue;
            };
            if differences(&self.settings.plans, sub, seen, now).is_empty() {
                results.push(json!({"provider": sub.provider.as_str(), "plan": sub.plan_id, "old_status": sub.view.state.as_str(), "new_status": sub.view.state.as_str(), "applied": false, "reason": "already matches"}));
                continue;
            }
            if let Some(reason) = other_plan(&self.settings.plans, sub, seen) {
                results.push(json!({"provider": sub.provider.as_str(), "plan": sub.plan_id, "old_status": sub.view.state.as_str(), "new_status": sub.view.state.as_str(), "applied": false, "reason": format!("{reason}: left to the provider's webhook")}));
                continue;
            }
            let key = change.event_key();
            let delivery = Delivery {
                key: crate::domain::EventKey::new(
                    Provider::Admin,
                    format!("{}:{}#{}", key.event_id(), sub.provider, sub.row),
                ),
                event_type: "admin.sync".into(),
                body: json!({"principal": change.principal.arn, "provider_view": {"status": seen.status, "state": seen.state.as_str(), "period_end": time(seen.period_end)}}).to_string().into_bytes(),
                body_hash: String::new(),
                received_at: now,
            };
            let outcome = self
                .apply_provider_view(&delivery, &email, &member, sub, seen, now)
                .await?;
            // The row as it is now: under the same key, or under the
            // subscription's id if the sync moved a plan-keyed row there.
            let after = self
                .store
                .subscriptions(user, Some(sub.provider))
                .await?
                .into_iter()
                .find(|s| {
                    s.row == sub.row
                        || (sub.provider_ref.is_some() && s.provider_ref == sub.provider_ref)
                })
                .map(|s| s.view.state.as_str())
                .unwrap_or("missing");
            let mut row = json!({"provider": sub.provider.as_str(), "plan": sub.plan_id, "subscription": sub.provider_ref, "old_status": sub.view.state.as_str(), "new_status": after, "applied": matches!(outcome, WebhookOutcome::Processed { .. })});
            if let WebhookOutcome::Failed { reason, .. } = &outcome {
                row["reason"] = json!(reason);
            }
            results.push(row);
        }
        let body = json!({"user_id": user.as_str(), "results": results});
        let answer = self
            .commit_admin_change(change, |_| Ok(()), &[], 200, body.clone())
            .await?;
        Ok(answer.unwrap_or(ChangeAnswer {
            status: 200,
            body,
            replayed: false,
        }))
    }

    async fn apply_provider_view(
        &self,
        delivery: &Delivery,
        email: &Email,
        member: &MemberRecord,
        sub: &SubscriptionRecord,
        seen: &ProviderSubscription,
        now: DateTime<Utc>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let Some(plan) = self.settings.plans.get(&sub.plan_id).cloned() else {
            return Err(ServiceError::Internal(format!(
                "plan {} is no longer in the plans file",
                sub.plan_id
            )));
        };
        match sub.provider {
            Provider::Kajabi => {
                let change = if seen.state == SubscriptionState::Active {
                    LifecycleChange::Renewed
                } else {
                    LifecycleChange::Expired
                };
                let offers = self
                    .settings
                    .plans
                    .products_for(Provider::Kajabi, &sub.plan_id);
                let kajabi_member = Member {
                    email: Some(email.to_string()),
                    member_id: sub.provider_ref.clone(),
                    first_name: member.first_name.clone(),
                    last_name: member.last_name.clone(),
                };
                self.kajabi_lifecycle_change(
                    delivery,
                    change,
                    &kajabi_member,
                    offers.first().copied(),
                    now,
                )
                .await
            }
            provider => {
                self.subscription_change(
                    delivery,
                    provider,
                    MemberRef::Email(email, None),
                    &plan,
                    seen.state,
                    seen.period_end,
                    now,
                    0,
                    sub.provider_ref.as_deref(),
                )
                .await
            }
        }
    }
}

impl SyncError {
    /// 502 naming the provider's status for provider failures, 503 otherwise.
    pub fn into_response(self) -> crate::http::ApiResponse {
        use crate::http::{reject, ApiResponse};
        match self {
            SyncError::Provider(e) => {
                let provider_status = match &e {
                    ApiError::Status { status, .. } => Some(*status),
                    _ => None,
                };
                let mut response =
                    ApiResponse::problem(502, "provider-error", "Provider error", e.to_string());
                let mut body = response.body_json();
                body["provider_status"] = json!(provider_status);
                response.body = body.to_string();
                response
            }
            SyncError::Service(e) => {
                tracing::error!(error = %e, "verify or sync failed");
                reject::unavailable("could not reach the store right now; try again")
            }
        }
    }
}
