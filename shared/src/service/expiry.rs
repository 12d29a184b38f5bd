//! Expires canceled subscriptions whose access has ended, in case the provider
//! never says so. Idempotent and safe to run concurrently: each change is
//! conditional on the subscription's version, and the expiry email is written
//! in the same transaction.

use std::collections::BTreeMap;

use super::{ServiceError, Services};
use crate::domain::{Email, EventKey, JobId, SubscriptionState, SubscriptionView};
use crate::email::Template;
use crate::store::CommitError;

/// Subscriptions handled per run; the next run takes the rest.
pub const EXPIRY_BATCH: usize = 500;

impl Services {
    pub async fn expire_ended_subscriptions(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut expired = 0;
        for (user_id, provider, plan_id) in
            self.store.canceled_ending_before(now, EXPIRY_BATCH).await?
        {
            let Some(current) = self
                .store
                .get_subscription(&user_id, provider, &plan_id)
                .await?
            else {
                continue;
            };
            let ended = current.view.access_until.is_some_and(|until| until <= now);
            if current.view.state != SubscriptionState::Canceled || !ended {
                continue;
            }
            let view = SubscriptionView {
                state: SubscriptionState::Expired,
                ..current.view.clone()
            };
            let plan_name = self
                .settings
                .plans
                .get(&plan_id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| plan_id.clone());
            let email = self.store.get_profile(&user_id).await?.and_then(|p| {
                crate::store::attr::get_s(&p, "email").and_then(|e| Email::parse(e).ok())
            });
            let mut tx = self.store.tx();
            tx.put_subscription(
                &user_id,
                provider,
                &plan_id,
                &view,
                Some(current.version),
                &EventKey::new(provider, "subscription-sweeper"),
                (current.watermark.unwrap_or(now), current.watermark_rank),
                now,
                current.provider_ref.as_deref(),
            )?;
            let mut jobs: Vec<JobId> = Vec::new();
            if let Some(email) = email {
                let data = BTreeMap::from([
                    ("email".to_string(), email.to_string()),
                    ("plan_name".to_string(), plan_name),
                ]);
                let job = self.job(Template::ExpiryNotice, &email, data, now);
                tx.put_job(&job)?;
                jobs.push(job.id);
            }
            match self.store.commit(tx).await {
                Ok(()) => {
                    self.outbox.enqueue(&jobs).await?;
                    expired += 1;
                }
                // Another run, or a provider event, changed it first.
                Err(CommitError::ConditionFailed { .. }) | Err(CommitError::Conflict) => {}
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        tracing::info!(expired, "subscriptions swept");
        Ok(expired)
    }
}
