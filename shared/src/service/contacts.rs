//! Kajabi contacts and tags (the full-sync seed). A tag change sets the
//! member's tag, ordered by the contact's `updated_at`; a tag the plans file
//! maps to a plan grants that plan's roles while present, with the same
//! access rules as a plan. A change for an email no account has waits
//! (`unmatched`) on the email, like a course completion, and applies when an
//! account appears. A contact change updates a member's name and Kajabi
//! contact id, newest first; for anyone else it is recorded with the reason.

use chrono::{DateTime, Utc};

use super::runner::{Decision, Step, Until};
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::{normalize_tag, tag_step, Email, Provider, TagStamp, TagStep};
use crate::providers::kajabi::{Member, TagChange};
use crate::store::{EventStatus, TagRecord, WaitingEvent};

fn member_email(member: &Member) -> Result<Email, String> {
    super::kajabi::required_email(member.email.as_deref(), "contact")
}

impl Services {
    pub(crate) async fn kajabi_tag(
        &self,
        delivery: &Delivery,
        change: &TagChange,
    ) -> Result<WebhookOutcome, ServiceError> {
        let email = match member_email(&change.member) {
            Ok(email) => email,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let Some(name) = change.tag.as_deref().filter(|n| !n.trim().is_empty()) else {
            return self.fail(delivery, "the change names no tag", None).await;
        };
        let key = normalize_tag(name);
        // The contact's `updated_at` is the only order Kajabi gives tag
        // changes; Gatehouse's receipt time would mix two clocks.
        let Some(at) = change.updated_at else {
            return self
                .fail(
                    delivery,
                    "the tag change carries no contact updated_at, so it cannot be ordered against the contact's other tag changes",
                    None,
                )
                .await;
        };
        let stamp = TagStamp::new(at, change.added);
        let verb = if change.added { "added" } else { "removed" };
        let waits_on = super::completion::completion_key(&email);
        let (email, waits_on, key) = (&email, &waits_on, &key);
        self.run(delivery, |now| async move {
            let loaded = self
                .store
                .load_for_event(&delivery.key, Some(email), Some((Provider::Kajabi, waits_on)))
                .await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            // The member an admin linked this email to, else the account
            // with the email, as for course completions.
            let Some(user) = loaded.customer_user.or(loaded.email.map(|r| r.user_id)) else {
                return Ok(Step::Wait {
                    provider: Provider::Kajabi,
                    customer: waits_on.clone(),
                    entry: WaitingEvent::new(&delivery.key, at, i64::from(stamp.rank)),
                    reason: format!(
                        "no member has this email: tag \"{name}\" ({verb}) applies when a member with this email appears or an admin links it"
                    ),
                    until: Until::Account(email.clone()),
                }
                .into());
            };
            let Some(member) = self.store.load_member(&user).await? else {
                return Ok(Decision::failed(
                    format!("member {user} has no profile"),
                    Some(user),
                ));
            };
            let stored = member.kajabi_tags.iter().find(|t| &t.key == key);
            Ok(match tag_step(stored.map(|t| t.stamp), stamp) {
                TagStep::Superseded => Decision::record(
                    EventStatus::Superseded,
                    Some(format!(
                        "tag \"{name}\" changed later ({} at {}): this older change is not applied",
                        if stored.is_some_and(|t| t.present) { "added" } else { "removed" },
                        stored
                            .and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.stamp.at_millis))
                            .map(crate::store::timestamp)
                            .unwrap_or_default()
                    )),
                    Some(user),
                ),
                TagStep::AlreadySo => Decision::record(
                    EventStatus::Ignored,
                    Some(format!("tag \"{name}\" was already {verb} at that time")),
                    Some(user),
                ),
                TagStep::Apply => {
                    let mut tx = self.store.tx();
                    tx.put_kajabi_tag(
                        &user,
                        &TagRecord {
                            key: key.clone(),
                            name: name.to_string(),
                            present: change.added,
                            stamp,
                            event: delivery.key.to_string(),
                        },
                        now,
                    )?;
                    Decision::apply(tx, Vec::new(), user)
                }
            })
        })
        .await
    }

    pub(crate) async fn kajabi_contact(
        &self,
        delivery: &Delivery,
        member: &Member,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let email = match member_email(member) {
            Ok(email) => email,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let at = updated_at.unwrap_or(delivery.received_at);
        let email = &email;
        self.run(delivery, |_now| async move {
            let loaded = self
                .store
                .load_for_event(&delivery.key, Some(email), None)
                .await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let Some(user) = loaded.email.map(|r| r.user_id) else {
                return Ok(Decision::record(
                    EventStatus::Ignored,
                    Some("no member has this email: Kajabi contacts update members only".into()),
                    None,
                ));
            };
            let Some(current) = self.store.load_member(&user).await? else {
                return Ok(Decision::failed(
                    format!("member {user} has no profile"),
                    Some(user),
                ));
            };
            if current.kajabi_contact_at.is_some_and(|seen| seen >= at) {
                return Ok(Decision::record(
                    EventStatus::Superseded,
                    Some("a later change of this contact was already applied".into()),
                    Some(user),
                ));
            }
            let mut tx = self.store.tx();
            tx.update_kajabi_contact(
                &user,
                member.first_name.as_deref(),
                member.last_name.as_deref(),
                member.member_id.as_deref(),
                at,
            )?;
            Ok(Decision::apply(tx, Vec::new(), user))
        })
        .await
    }
}
