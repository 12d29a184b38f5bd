//! Kajabi course completions. Kajabi has no completion hook, so a course ends
//! with a form, and that form's submission awards the course's points: once
//! per member and course, in the transaction that records the event.
//!
//! A completion whose email no account has is recorded `unmatched` and waits
//! on the email's hash. It is applied, once, when an account with that email
//! is created (any provider's purchase), or when an admin links it to a
//! member. The member is found by the exact, normalized email: never a guess.

use chrono::{DateTime, Utc};

use super::runner::{Decision, Step, Until};
use super::webhook::{Delivery, WebhookOutcome};
use super::{ServiceError, Services};
use crate::domain::{Email, Provider};
use crate::providers::kajabi::FormSubmission;
use crate::store::{EventStatus, WaitingEvent};

/// The customer key completions for `email` wait on: apart from the Kajabi
/// purchase's own, so linking completions never looks like a purchase.
pub(crate) fn completion_key(email: &Email) -> String {
    format!("completion:{}", super::kajabi::waiting_key(email))
}

/// Why a form submission awards nothing: it is not a completion form.
fn not_a_completion(form: &FormSubmission) -> String {
    let form_name = match (&form.form_id, &form.form_title) {
        (Some(id), Some(title)) => format!("form {id} ({title})"),
        (Some(id), None) => format!("form {id}"),
        (None, Some(title)) => format!("form \"{title}\""),
        (None, None) => "a form without an id".to_string(),
    };
    match &form.course_name {
        Some(course) => format!(
            "{form_name} is not a completion form, and its course_name \"{course}\" is no course in the courses file"
        ),
        None => format!("{form_name} is not a completion form in the courses file"),
    }
}

impl Services {
    pub(crate) async fn kajabi_form_submission(
        &self,
        delivery: &Delivery,
        form: &FormSubmission,
        occurred_at: Option<DateTime<Utc>>,
    ) -> Result<WebhookOutcome, ServiceError> {
        let Some(course) = self
            .settings
            .courses
            .for_submission(form.form_id.as_deref(), form.course_name.as_deref())
        else {
            let reason = not_a_completion(form);
            return self
                .record_terminal(delivery, EventStatus::Ignored, Some(reason), None)
                .await;
        };
        let email = match form.member.email.as_deref() {
            None => return self.fail(delivery, "missing member email", None).await,
            Some(raw) => match Email::parse(raw) {
                Ok(email) => email,
                Err(e) => {
                    return self
                        .fail(delivery, format!("invalid member email: {e}"), None)
                        .await
                }
            },
        };
        let completed_at = form.completed_on.or(occurred_at);
        let (email, key) = (&email, &completion_key(&email));
        crate::metrics::count("kajabi", "completions_received");
        let outcome = self
            .run(delivery, |now| async move {
                let loaded = self
                    .store
                    .load_for_event(&delivery.key, Some(email), Some((Provider::Kajabi, key)))
                    .await?;
                if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                    return Ok(Decision::duplicate(old));
                }
                // The account with this email, else the member an admin linked
                // this email's completions to.
                let Some(user) = loaded.email.map(|r| r.user_id).or(loaded.customer_user) else {
                    return Ok(Step::Wait {
                        provider: Provider::Kajabi,
                        customer: key.clone(),
                        entry: WaitingEvent::new(
                            &delivery.key,
                            completed_at.unwrap_or(delivery.received_at),
                            0,
                        ),
                        reason: format!(
                            "no member has this email: the completion of {} is kept for review, and applied when a member with this email appears or an admin links it",
                            course.name
                        ),
                        until: Until::Account(email.clone()),
                    }
                    .into());
                };
                if let Some(award) = self.store.get_course_award(&user, &course.id).await? {
                    return Ok(Decision::record(
                        EventStatus::Ignored,
                        Some(format!(
                            "{} was already completed: its {} points were awarded by {}",
                            course.name,
                            award.points,
                            award.event.as_deref().unwrap_or("an earlier event")
                        )),
                        Some(user),
                    ));
                }
                let mut tx = self.store.tx();
                tx.award_course(&user, course, &delivery.key, completed_at, now)?;
                Ok(Decision::apply(tx, Vec::new(), user))
            })
            .await?;
        let metric = match &outcome {
            WebhookOutcome::Processed { .. } => Some("completions_awarded"),
            WebhookOutcome::Ignored { .. } | WebhookOutcome::Duplicate { .. } => {
                Some("completions_duplicate")
            }
            WebhookOutcome::Unmatched { .. } => Some("completions_unmatched"),
            _ => None,
        };
        if let Some(metric) = metric {
            crate::metrics::count("kajabi", metric);
        }
        Ok(outcome)
    }

    /// After an account for `email` commits: applies the completions that
    /// waited for it. Best effort: one that cannot be applied now stays
    /// `unmatched`, and an admin replay applies it (its email now matches).
    pub(crate) async fn apply_unmatched_completions(&self, email: &Email) {
        let key = completion_key(email);
        let drained = async {
            let found = self.store.get_customer(Provider::Kajabi, &key).await?;
            if found.waiting.events.is_empty() {
                return Ok(());
            }
            self.drain_waiting(Provider::Kajabi, &key, &found.waiting)
                .await
        };
        if let Err(e) = drained.await {
            tracing::warn!(error = %e, "unmatched completions stay unmatched for now");
        }
    }
}
