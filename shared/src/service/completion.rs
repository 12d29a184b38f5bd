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
    crate::store::completion_customer(email)
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
    /// A submission of a form that completes no course: recorded `ignored`
    /// with the reason, and the submitter kept as a lead (never a user, and
    /// no email is sent). Without a usable
    /// email there is no one to keep: recorded `ignored` with the reason.
    async fn kajabi_lead(
        &self,
        delivery: &Delivery,
        form: &FormSubmission,
    ) -> Result<WebhookOutcome, ServiceError> {
        let reason = not_a_completion(form);
        let Some(email) = form
            .member
            .email
            .as_deref()
            .and_then(|raw| Email::parse(raw).ok())
        else {
            return self
                .record_terminal(
                    delivery,
                    EventStatus::Ignored,
                    Some(format!(
                        "{reason}; it carries no valid email to keep as a lead"
                    )),
                    None,
                )
                .await;
        };
        let name = match (&form.member.first_name, &form.member.last_name) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(first), None) => Some(first.clone()),
            (None, Some(last)) => Some(last.clone()),
            (None, None) => None,
        };
        let form_name = form
            .form_title
            .clone()
            .or_else(|| form.form_id.clone())
            .unwrap_or_else(|| "a form".into());
        let (email, name, form_name, reason) = (&email, &name, &form_name, &reason);
        self.run(delivery, |now| async move {
            let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
            if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                return Ok(Decision::duplicate(old));
            }
            let mut tx = self.store.tx();
            tx.put_lead(email, name.as_deref(), form_name, now)?;
            // Still `ignored` (it awards nothing), with the lead in its transaction.
            Ok(Step::Apply {
                status: EventStatus::Ignored,
                reason: Some(format!("{reason}: its submitter is kept as a Kajabi lead")),
                user_id: None,
                writes: tx,
                jobs: Vec::new(),
            }
            .into())
        })
        .await
    }

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
            return self.kajabi_lead(delivery, form).await;
        };
        let email = match super::kajabi::required_email(form.member.email.as_deref(), "member") {
            Ok(email) => email,
            Err(reason) => return self.fail(delivery, reason, None).await,
        };
        let completed_at = form.completed_on.or(occurred_at);
        let (email, key) = (&email, &completion_key(&email));
        let recorded_before = &std::sync::atomic::AtomicBool::new(false);
        let outcome = self
            .run(delivery, |now| async move {
                let loaded = self
                    .store
                    .load_for_event(&delivery.key, Some(email), Some((Provider::Kajabi, key)))
                    .await?;
                recorded_before.store(loaded.event.is_some(), std::sync::atomic::Ordering::Relaxed);
                let leftovers = loaded.customer_waiting.clone();
                if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                    return Ok(Decision::duplicate(old));
                }
                // The member an admin linked this email's completions to, else
                // the account with this email: a link holds even after an
                // account with the email appears, so a course is never
                // awarded to both.
                let Some(user) = loaded.customer_user.or(loaded.email.map(|r| r.user_id)) else {
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
                // Completions left waiting (a purchase that stopped after its
                // commit) apply after this one.
                let leftovers = |decision: Decision| {
                    decision.then_drain(Provider::Kajabi, key, &leftovers)
                };
                if let Some(award) = self.store.get_course_award(&user, &course.id).await? {
                    return Ok(leftovers(Decision::record(
                        EventStatus::Ignored,
                        Some(format!(
                            "{} was already completed: its {} points were awarded by {}",
                            course.name,
                            award.points,
                            award.event.as_deref().unwrap_or("an earlier event")
                        )),
                        Some(user),
                    )));
                }
                let mut tx = self.store.tx();
                tx.award_course(&user, course, &delivery.key, completed_at, now)?;
                Ok(leftovers(Decision::apply(tx, Vec::new(), user)))
            })
            .await?;
        // Received and unmatched count once per completion, at its first
        // recording: not again for a redelivery, nor when a waiting one is
        // looked at again. So `1 - unmatched / received` is the match rate,
        // and `awarded` counts each award once, whenever it happens.
        let first_recording = !recorded_before.load(std::sync::atomic::Ordering::Relaxed)
            && !matches!(outcome, WebhookOutcome::Duplicate { .. });
        let metric = match &outcome {
            WebhookOutcome::Processed { .. } => Some("completions_awarded"),
            WebhookOutcome::Ignored { .. } | WebhookOutcome::Duplicate { .. } => {
                Some("completions_duplicate")
            }
            WebhookOutcome::Unmatched { .. } if first_recording => Some("completions_unmatched"),
            _ => None,
        };
        if first_recording {
            crate::metrics::count("kajabi", "completions_received");
        }
        if let Some(metric) = metric {
            crate::metrics::count("kajabi", metric);
        }
        Ok(outcome)
    }
}

/// What importing one CSV row did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowResult {
    Awarded,
    AlreadyAwarded,
    Unmatched,
    Invalid(String),
    /// Storage failed for this row, or the request ran out of time before
    /// it: importing the file again applies it (and nothing twice).
    NotApplied(String),
}

/// An import stops starting rows after this, to answer inside API Gateway's
/// 30 s; the rest are reported not applied.
pub const IMPORT_BUDGET: std::time::Duration = std::time::Duration::from_secs(22);

/// Longest list of row numbers (or invalid rows) an import answer carries;
/// the counts are always whole.
pub const MAX_LISTED_ROWS: usize = 1_000;

/// Rows imported at once: each is a few round trips, so 10,000 rows fit the
/// admin timeout without crowding the table.
const IMPORT_CONCURRENCY: usize = 16;

impl Services {
    /// Imports completion rows through the same rule as a webhook: each valid
    /// row is a Kajabi event keyed by its email and course, so importing it
    /// again, or after the webhook delivered it, awards nothing twice.
    pub async fn import_completions(
        &self,
        rows: &[crate::admin::import::CsvRow],
        dry_run: bool,
    ) -> Result<Vec<(usize, RowResult)>, ServiceError> {
        use futures::stream::{self, StreamExt};
        let deadline = std::time::Instant::now() + IMPORT_BUDGET;
        let mut seen = std::collections::HashSet::new();
        let mut results: Vec<(usize, RowResult)> = stream::iter(rows.iter().cloned())
            .map(|row| {
                // The same email and course twice in one file: the second is
                // a repeat, whatever the first does.
                let repeat = crate::admin::import::check_row(&row, &self.settings.courses)
                    .is_ok_and(|valid| {
                        !seen.insert((valid.email.as_str().to_string(), valid.course.id.clone()))
                    });
                self.import_one(row, dry_run, repeat, deadline)
            })
            .buffer_unordered(IMPORT_CONCURRENCY)
            .collect()
            .await;
        results.sort_by_key(|(line, _)| *line);
        Ok(results)
    }

    async fn import_one(
        &self,
        row: crate::admin::import::CsvRow,
        dry_run: bool,
        repeat: bool,
        deadline: std::time::Instant,
    ) -> (usize, RowResult) {
        let result = match crate::admin::import::check_row(&row, &self.settings.courses) {
            Err(reason) => RowResult::Invalid(reason),
            Ok(_) if std::time::Instant::now() > deadline => {
                RowResult::NotApplied("the request ran out of time first".into())
            }
            Ok(_) if repeat && dry_run => RowResult::AlreadyAwarded,
            Ok(valid) => {
                let done = if dry_run {
                    self.preview_row(&valid).await
                } else {
                    self.import_row(&valid).await
                };
                done.unwrap_or_else(|e| RowResult::NotApplied(e.to_string()))
            }
        };
        (row.line, result)
    }

    /// The row as the Kajabi event it stands for: the seed's dialect, naming
    /// the course, so a later account or an admin link applies it like any
    /// unmatched completion.
    fn import_delivery(&self, row: &crate::admin::import::ImportRow<'_>) -> Delivery {
        let id = format!(
            "import:{}",
            &crate::signature::sha256_hex(
                format!("{}\n{}", row.email.as_str(), row.course.id).as_bytes()
            )[..32]
        );
        let body = serde_json::json!({
            "event_type": "form.submitted", "event_id": id,
            "data": {"form": {"id": "gatehouse-csv-import", "name": "CSV import"},
                "submission": {"id": format!("line-{}", row.line), "fields": {
                    "email": row.email.as_str(), "course_name": row.course.name,
                    "completion_date": row.completed_on.format("%Y-%m-%d").to_string()}}}
        })
        .to_string();
        Delivery::new(
            Provider::Kajabi,
            Some(id),
            "form.submitted",
            body.as_bytes(),
            self.now(),
        )
    }

    async fn import_row(
        &self,
        row: &crate::admin::import::ImportRow<'_>,
    ) -> Result<RowResult, ServiceError> {
        let delivery = self.import_delivery(row);
        let form = FormSubmission {
            member: crate::providers::kajabi::Member {
                email: Some(row.email.as_str().to_string()),
                ..Default::default()
            },
            form_id: Some("gatehouse-csv-import".into()),
            form_title: Some("CSV import".into()),
            submission_id: Some(format!("line-{}", row.line)),
            course_name: Some(row.course.name.clone()),
            completed_on: Some(row.completed_on),
        };
        Ok(
            match self.kajabi_form_submission(&delivery, &form, None).await? {
                WebhookOutcome::Processed { .. } => RowResult::Awarded,
                WebhookOutcome::Unmatched { .. } => RowResult::Unmatched,
                WebhookOutcome::Failed { reason, .. } => RowResult::Invalid(reason),
                _ => RowResult::AlreadyAwarded,
            },
        )
    }

    /// What importing the row would do, reading only.
    async fn preview_row(
        &self,
        row: &crate::admin::import::ImportRow<'_>,
    ) -> Result<RowResult, ServiceError> {
        let delivery = self.import_delivery(row);
        let key = completion_key(&row.email);
        let loaded = self
            .store
            .load_for_event(
                &delivery.key,
                Some(&row.email),
                Some((Provider::Kajabi, &key)),
            )
            .await?;
        let Some(user) = loaded.customer_user.or(loaded.email.map(|r| r.user_id)) else {
            return Ok(RowResult::Unmatched);
        };
        Ok(
            match self.store.get_course_award(&user, &row.course.id).await? {
                Some(_) => RowResult::AlreadyAwarded,
                None => RowResult::Awarded,
            },
        )
    }
}

/// The import's answer: counts, and the rows of each outcome (line numbers
/// in the file, the header being line 1).
pub fn import_report(results: &[(usize, RowResult)], dry_run: bool) -> serde_json::Value {
    let lines = |want: &RowResult| -> Vec<usize> {
        results
            .iter()
            .filter(|(_, r)| r == want)
            .map(|(line, _)| *line)
            .collect()
    };
    let invalid: Vec<serde_json::Value> = results
        .iter()
        .filter_map(|(line, r)| match r {
            RowResult::Invalid(reason) => Some(serde_json::json!({"row": line, "reason": reason})),
            _ => None,
        })
        .collect();
    let listed = |all: Vec<usize>| -> serde_json::Value {
        serde_json::json!({"count": all.len(), "rows": all.iter().take(MAX_LISTED_ROWS).collect::<Vec<_>>()})
    };
    let not_applied: Vec<usize> = results
        .iter()
        .filter(|(_, r)| matches!(r, RowResult::NotApplied(_)))
        .map(|(line, _)| *line)
        .collect();
    let retry_reason = results.iter().find_map(|(_, r)| match r {
        RowResult::NotApplied(reason) => Some(reason.clone()),
        _ => None,
    });
    serde_json::json!({
        "dry_run": dry_run,
        "rows": results.len(),
        "awarded": listed(lines(&RowResult::Awarded)),
        "already_awarded": listed(lines(&RowResult::AlreadyAwarded)),
        "unmatched": listed(lines(&RowResult::Unmatched)),
        "invalid": {"count": invalid.len(), "rows": invalid.into_iter().take(MAX_LISTED_ROWS).collect::<Vec<_>>()},
        "not_applied": {"count": not_applied.len(), "rows": not_applied.into_iter().take(MAX_LISTED_ROWS).collect::<Vec<_>>(),
            "reason": retry_reason, "retry": "import the same file again: applied rows are not applied twice"},
    })
}
