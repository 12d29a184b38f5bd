//! Admin review of course completions no member's email matched: list them,
//! link one to a member (its points are awarded once), or dismiss one with a
//! reason. Each change is audited in the admin event log. A daily digest
//! tells the admin when any wait.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::admin::ListPage;
use super::admin_change::{not_found, problem, AdminChange, ChangeAnswer};
use super::runner::Decision;
use super::webhook::{Delivery, WebhookOutcome, MAX_ATTEMPTS};
use super::{ServiceError, Services};
use crate::admin::listing::{encode_event_key, CompletionQuery, Cursor};
use crate::domain::{Email, EventKey, Provider, UserId};
use crate::email::Template;
use crate::providers::kajabi::{KajabiAction, KajabiEvent};
use crate::store::admin::{completions_partition, IndexQuery, USER_EVENTS_INDEX};
use crate::store::timestamp as ts;
use crate::store::{EventRecord, EventStatus};

/// Completions one digest names; the count is whole up to `DIGEST_COUNTED`.
pub const DIGEST_LISTED: usize = 50;
const DIGEST_COUNTED: usize = 1_000;

/// The type the daily digest is recorded with.
pub const COMPLETIONS_DIGEST: &str = "gatehouse.completions.digest";

/// What a stored completion says, read back from its payload.
fn completion_view(services: &Services, record: &EventRecord) -> Value {
    let parsed = serde_json::from_slice::<Value>(&record.payload)
        .ok()
        .map(|body| KajabiEvent::from_json(&body).action);
    let Some(KajabiAction::FormSubmission(form)) = parsed else {
        return json!({});
    };
    let email = form
        .member
        .email
        .as_deref()
        .map(|raw| Email::parse(raw).map_or_else(|_| raw.to_string(), |e| e.to_string()));
    let course = services
        .settings
        .courses
        .for_submission(form.form_id.as_deref(), form.course_name.as_deref())
        .map(|c| json!({"id": c.id, "name": c.name, "points": c.points}));
    json!({
        "email": email,
        "course": course,
        "form": {"id": form.form_id, "title": form.form_title},
        "completed_on": form.completed_on.map(ts),
    })
}

fn completion_row(services: &Services, record: &EventRecord) -> Value {
    let mut row = json!({
        "id": encode_event_key(&record.key),
        "key": format!("{}:{}", record.key.provider(), record.key.event_id()),
        "type": record.event_type,
        "status": record.status.as_str(),
        "reason": record.reason,
        "received_at": ts(record.received_at),
    });
    if let (Value::Object(row), Value::Object(view)) = (&mut row, completion_view(services, record))
    {
        row.extend(view);
    }
    row
}

fn not_a_completion(key: &EventKey) -> ChangeAnswer {
    ChangeAnswer {
        status: 404,
        body: problem(
            404,
            "completion-not-found",
            "Completion not found",
            &format!("no course completion {key}"),
        ),
        replayed: false,
    }
}

fn conflict(detail: String) -> ChangeAnswer {
    ChangeAnswer {
        status: 409,
        body: problem(
            409,
            "completion-not-unmatched",
            "Not an unmatched completion",
            &detail,
        ),
        replayed: false,
    }
}

/// The completion record, or the answer that says why there is none to change.
fn unmatched(record: Option<EventRecord>, key: &EventKey) -> Result<EventRecord, ChangeAnswer> {
    let record = record
        .filter(|r| {
            r.key.provider() == Provider::Kajabi
                && crate::store::admin::is_completion_type(&r.event_type)
        })
        .ok_or_else(|| not_a_completion(key))?;
    if record.status != EventStatus::Unmatched {
        return Err(conflict(format!(
            "{key} is {}, not unmatched: only a completion waiting for review is linked or dismissed",
            record.status.as_str()
        )));
    }
    Ok(record)
}

impl Services {
    /// `GET /admin/completions`: newest first, from the review partition of
    /// the user-events index, each with what its submission says.
    pub async fn admin_list_completions(
        &self,
        query: &CompletionQuery,
    ) -> Result<ListPage, ServiceError> {
        let index = IndexQuery {
            index: USER_EVENTS_INDEX,
            partition: completions_partition(query.status).unwrap_or_default(),
            limit: query.limit as i32,
            start: query.cursor.as_ref().map(|c| c.0.clone()),
            descending: true,
            ..Default::default()
        };
        let page = self.store.query_index(index).await?;
        let keys: Vec<EventKey> = page
            .rows
            .iter()
            .filter_map(|row| row.event().map(|e| e.key))
            .collect();
        let mut records: BTreeMap<String, EventRecord> = self
            .store
            .get_events(&keys)
            .await?
            .into_iter()
            .map(|r| (r.key.to_string(), r))
            .collect();
        let items = keys
            .iter()
            .filter_map(|key| records.remove(&key.to_string()))
            // Linked or applied between the index read and this one.
            .filter(|r| r.status == query.status)
            .map(|r| completion_row(self, &r))
            .collect();
        Ok(ListPage {
            items,
            next_cursor: page.next.map(|k| Cursor::encode(&k, &query.fingerprint())),
        })
    }

    /// `POST /admin/completions/{id}/link`: the completion's email becomes
    /// this member's for completions, and every completion waiting on it
    /// (this one, and any other for the email, each listed in the answer)
    /// is applied: each course's points once. The mapping commits in the
    /// transaction that writes the audit record, on the condition that the
    /// completion is still unmatched; the awards follow, and a retry with the
    /// same key finishes them.
    pub async fn admin_link_completion(
        &self,
        change: &AdminChange,
        key: &EventKey,
        user: &UserId,
    ) -> Result<ChangeAnswer, ServiceError> {
        self.attach_waiting(change, key, user, |found| unmatched(found, key))
            .await
    }

    /// Maps the customer a waiting event waits on (for a completion, its
    /// email) to `user`, in the transaction that writes the audit record and
    /// on the condition that the event still waits, then applies everything
    /// waiting on it. `check` turns the event read into the record to attach,
    /// or the refusal to answer. A retry with the same key finishes the
    /// applying and answers the first answer, with the event's status now.
    pub(crate) async fn attach_waiting(
        &self,
        change: &AdminChange,
        key: &EventKey,
        user: &UserId,
        check: impl Fn(Option<EventRecord>) -> Result<EventRecord, ChangeAnswer>,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return self.finish_attach(answer, key).await;
        }
        // The audit names the member the event was attached to.
        let mut audited = change.clone();
        audited.target_user = Some(user.clone());
        let change = &audited;
        for _ in 0..MAX_ATTEMPTS {
            let record = match check(self.store.get_event(key).await?) {
                Ok(record) => record,
                Err(answer) => return self.unless_answered(change, answer).await,
            };
            if self.store.get_profile(user).await?.is_none() {
                return self.unless_answered(change, not_found(user)).await;
            }
            let provider = key.provider();
            let Some(customer) = record.waiting_on.clone() else {
                let detail =
                    format!("{key} waits on no provider customer; replay it without user_id");
                return self.unless_answered(change, conflict(detail)).await;
            };
            let found = self.store.get_customer(provider, &customer).await?;
            if let Some(linked) = found.user_id.as_ref().filter(|linked| *linked != user) {
                let detail = format!(
                    "what {key} waits on already belongs to member {linked}, whose link applies it"
                );
                return self.unless_answered(change, conflict(detail)).await;
            }
            let applies: Vec<String> = found
                .waiting
                .events
                .iter()
                .map(|w| w.key.to_string())
                .collect();
            let body = json!({
                "id": encode_event_key(key),
                "event": key.to_string(),
                "user_id": user.as_str(),
                "old_status": record.status.as_str(),
                "applies": applies,
            });
            let answer = self
                .commit_admin_change(
                    change,
                    |tx| {
                        if found.user_id.is_none() {
                            tx.put_customer(provider, &customer, user, &found.waiting)?;
                        }
                        tx.check_event_status(key, record.status)
                    },
                    &[],
                    200,
                    body,
                )
                .await?;
            if let Some(answer) = answer {
                return self.finish_attach(answer, key).await;
            }
        }
        Err(ServiceError::Contention)
    }

    /// Applies what waits on an attached event's customer (again, for a
    /// retry: each effect is keyed, so nothing twice), and answers with the
    /// event's status now. A failure is a 503: the stored answer stays, and
    /// a retry with the same key finishes the applying.
    async fn finish_attach(
        &self,
        mut answer: ChangeAnswer,
        key: &EventKey,
    ) -> Result<ChangeAnswer, ServiceError> {
        if answer.status != 200 {
            return Ok(answer);
        }
        let Some(record) = self.store.get_event(key).await? else {
            return Ok(answer);
        };
        if let Some(customer) = record
            .waiting_on
            .as_deref()
            .filter(|_| record.status.is_waiting())
        {
            let found = self.store.get_customer(key.provider(), customer).await?;
            self.drain_waiting(key.provider(), customer, &found.waiting)
                .await?;
        }
        let after = self.store.get_event(key).await?.unwrap_or(record);
        if after.status.is_waiting() {
            return Err(ServiceError::Contention);
        }
        answer.body["new_status"] = json!(after.status.as_str());
        if after.status != EventStatus::Processed {
            answer.body["reason"] = json!(after.reason);
        }
        Ok(answer)
    }

    /// `refusal`, unless a request with the same key committed meanwhile:
    /// then its answer, so a retry never sees a 404 or 409 the first did not.
    async fn unless_answered(
        &self,
        change: &AdminChange,
        refusal: ChangeAnswer,
    ) -> Result<ChangeAnswer, ServiceError> {
        Ok(self.earlier_answer(change).await?.unwrap_or(refusal))
    }

    /// `POST /admin/completions/{id}/dismiss`: final, with the reason, in the
    /// transaction that audits it; no later account, link or redelivery
    /// applies it. Refused once its email is linked to a member (that link
    /// is applying it).
    pub async fn admin_dismiss_completion(
        &self,
        change: &AdminChange,
        key: &EventKey,
        reason: &str,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        for _ in 0..MAX_ATTEMPTS {
            let record = match unmatched(self.store.get_event(key).await?, key) {
                Ok(record) => record,
                Err(answer) => return self.unless_answered(change, answer).await,
            };
            let Some(customer) = record.waiting_on.clone() else {
                return Err(ServiceError::Internal(format!(
                    "{key} is unmatched but waits on no completion key"
                )));
            };
            let found = self.store.get_customer(Provider::Kajabi, &customer).await?;
            if let Some(linked) = &found.user_id {
                let detail = format!(
                    "this completion's email is linked to member {linked}, and the link is applying it"
                );
                return self.unless_answered(change, conflict(detail)).await;
            }
            let entry = found.waiting.events.into_iter().find(|w| &w.key == key);
            let body = json!({
                "id": encode_event_key(key),
                "event": key.to_string(),
                "old_status": record.status.as_str(),
                "new_status": EventStatus::Dismissed.as_str(),
                "reason": reason,
            });
            let answer = self
                .commit_admin_change(
                    change,
                    |tx| {
                        tx.dismiss_completion(key, reason)?;
                        match &entry {
                            Some(entry) => tx.release_unlinked(Provider::Kajabi, &customer, entry),
                            None => Ok(()),
                        }
                    },
                    &[],
                    200,
                    body,
                )
                .await?;
            if let Some(answer) = answer {
                return Ok(answer);
            }
        }
        Err(ServiceError::Contention)
    }

    /// The daily digest: one email to the admin naming the completions that
    /// wait for review, only when some do. Keyed by the day, so repeated or
    /// concurrent runs send it once. `None` when none wait.
    pub async fn send_completions_digest(&self) -> Result<Option<WebhookOutcome>, ServiceError> {
        let now = self.now();
        let mut waiting: Vec<EventKey> = Vec::new();
        let mut index = IndexQuery {
            index: USER_EVENTS_INDEX,
            partition: completions_partition(EventStatus::Unmatched).unwrap_or_default(),
            limit: 100,
            descending: true,
            ..Default::default()
        };
        loop {
            let page = self.store.query_index(index.clone()).await?;
            waiting.extend(page.rows.iter().filter_map(|r| r.event().map(|e| e.key)));
            match page.next {
                Some(next) if waiting.len() < DIGEST_COUNTED => index.start = Some(next),
                _ => break,
            }
        }
        if waiting.is_empty() {
            tracing::info!("no completions wait for review: no digest");
            return Ok(None);
        }
        let listed = self
            .store
            .get_events(&waiting[..waiting.len().min(DIGEST_LISTED)])
            .await?;
        let lines: Vec<String> = listed
            .iter()
            // The index may lag a link or a dismissal by a moment.
            .filter(|record| record.status == EventStatus::Unmatched)
            .map(|record| {
                let view = completion_view(self, record);
                format!(
                    "{} · {} · received {}",
                    view["email"].as_str().unwrap_or("(no email)"),
                    view["course"]["name"].as_str().unwrap_or("(no course)"),
                    ts(record.received_at)
                )
            })
            .collect();
        let count = if waiting.len() >= DIGEST_COUNTED {
            format!("{DIGEST_COUNTED} or more")
        } else {
            waiting.len().to_string()
        };
        let day = now.format("%Y-%m-%d").to_string();
        // The day alone: a rerun that day is the same event, whatever waits now.
        let body = json!({"day": day}).to_string();
        let delivery = Delivery::new(
            Provider::Kajabi,
            Some(format!("digest:completions:{day}")),
            COMPLETIONS_DIGEST,
            body.as_bytes(),
            now,
        );
        let (delivery, lines, count) = (&delivery, &lines, &count);
        let outcome = self
            .run(delivery, |now| async move {
                let loaded = self.store.load_for_event(&delivery.key, None, None).await?;
                if let Some(old) = loaded.event.filter(|e| e.status.is_final()) {
                    return Ok(Decision::duplicate(old));
                }
                let data = BTreeMap::from([
                    ("count".to_string(), count.clone()),
                    ("lines".to_string(), lines.join("\n")),
                ]);
                let job = self.job(
                    Template::CompletionsDigest,
                    &self.settings.admin_email,
                    data,
                    now,
                );
                Ok(Decision::apply(self.store.tx(), vec![job], None))
            })
            .await?;
        tracing::info!(
            unmatched = waiting.len(),
            outcome = outcome.status(),
            "completions digest"
        );
        Ok(Some(outcome))
    }
}
