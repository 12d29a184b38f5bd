//! Expires canceled subscriptions whose access has ended, in case the provider
//! never says so. Each expiry is an event of its own, run through the event
//! runner: keyed by the subscription and the end it reached, so concurrent or
//! repeated sweeps apply it once, its expiry email commits with it, and the
//! admin event list shows why access ended.

use std::collections::BTreeMap;

use serde_json::json;

use super::runner::Decision;
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::{SubscriptionState, SubscriptionView};
use crate::email::Template;
use crate::store::timestamp as ts;
use crate::store::EventStatus;

/// Subscriptions handled per run; the next run takes the rest.
pub const EXPIRY_BATCH: usize = 500;

/// The type the sweeper's expiry events are recorded with.
pub const ACCESS_ENDED: &str = "gatehouse.subscription.access_ended";

impl Services {
    pub async fn expire_ended_subscriptions(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut expired = 0;
        for (user_id, provider, row) in self.store.canceled_ending_before(now, EXPIRY_BATCH).await?
        {
            let Some(found) = self
                .store
                .get_subscription(&user_id, provider, &row)
                .await?
            else {
                continue;
            };
            let Some(until) = found.view.access_until.filter(|until| *until <= now) else {
                continue;
            };
            if found.view.state != SubscriptionState::Canceled {
                continue;
            }
            let body = json!({"user_id": user_id.as_str(), "provider": provider.as_str(),
                "subscription": row, "plan_id": found.plan_id, "access_until": ts(until)})
            .to_string();
            let delivery = Delivery::new(
                provider,
                Some(format!("sweeper:{user_id}:{row}:{}", until.timestamp())),
                ACCESS_ENDED,
                body.as_bytes(),
                now,
            );
            let delivery = &delivery;
            let (user_id, row) = (&user_id, &row);
            let result = self
                .run(delivery, |now| async move {
                    let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
                    if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                        return Ok(Decision::duplicate(old));
                    }
                    let current = self.store.get_subscription(user_id, provider, row).await?;
                    let Some(current) = current.filter(|c| {
                        c.view.state == SubscriptionState::Canceled
                            && c.view.access_until == Some(until)
                    }) else {
                        return Ok(Decision::record(
                            EventStatus::Superseded,
                            Some("the subscription changed before the sweep reached it".into()),
                            Some(user_id.clone()),
                        ));
                    };
                    let view = SubscriptionView {
                        state: SubscriptionState::Expired,
                        ..current.view.clone()
                    };
                    let plan_name = self
                        .settings
                        .plans
                        .get(&current.plan_id)
                        .map_or_else(|| current.plan_id.clone(), |p| p.name.clone());
                    let mut jobs = Vec::new();
                    let email = self.store.profile_email(user_id).await?;
                    if let Some(email) = email {
                        let data = BTreeMap::from([
                            ("email".to_string(), email.to_string()),
                            ("plan_name".to_string(), plan_name),
                        ]);
                        jobs.push(self.job(Template::ExpiryNotice, &email, data, now));
                    }
                    let mut tx = self.store.tx();
                    tx.restate_subscription(&current, &view, &delivery.key, now)?;
                    Ok(Decision::apply(tx, jobs, user_id.clone()))
                })
                .await;
            match result {
                Ok(WebhookOutcome::Processed { .. }) => expired += 1,
                Ok(_) => {}
                // One subscription's trouble must not stop the rest of the
                // sweep; the next run (15 minutes on) tries it again.
                Err(e) => {
                    tracing::warn!(event_key = %delivery.key, error = %e, "expiry not applied; the next sweep retries it")
                }
            }
        }
        tracing::info!(expired, "subscriptions swept");
        Ok(expired)
    }
}
