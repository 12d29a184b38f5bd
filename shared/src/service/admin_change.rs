//! Admin changes: every mutating admin action carries an `Idempotency-Key`
//! and commits its effects in one transaction with an audit record (an event
//! with provider `admin`, keyed by the caller and the key). A replayed request
//! loses that transaction on the record's condition and gets the first
//! answer back, having changed nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{ServiceError, Services};
use crate::admin::AdminPrincipal;
use crate::domain::{Email, EventKey, JobId, Provider, UserId};
use crate::http::{ApiRequest, ApiResponse};
use crate::signature::sha256_hex;
use crate::store::{CommitError, EmailJob, EventRecord, EventStatus, Tx};

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// One admin change being made.
#[derive(Debug, Clone)]
pub struct AdminChange {
    pub principal: AdminPrincipal,
    /// e.g. `roles`, `resend-setup-email`.
    pub action: &'static str,
    pub idempotency_key: String,
    pub target_user: Option<UserId>,
    pub request: Value,
}

/// Longest reason an admin change keeps.
pub const MAX_REASON_CHARS: usize = 500;

/// An admin change's `reason`, trimmed: required, for the audit trail.
pub fn required_reason(raw: Option<String>) -> Result<String, String> {
    let reason = raw.map(|r| r.trim().to_string()).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "`reason` is required (up to {MAX_REASON_CHARS} characters): it goes to the audit trail"
        ));
    }
    Ok(reason)
}

/// The `Idempotency-Key` header, or the 400 to answer.
pub fn idempotency_key(request: &ApiRequest) -> Result<String, ApiResponse> {
    let key = request
        .header("idempotency-key")
        .map(str::trim)
        .unwrap_or("");
    let valid = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if valid {
        Ok(key.to_string())
    } else {
        Err(ApiResponse::problem(
            400,
            "idempotency-key-required",
            "Idempotency-Key required",
            format!("mutating admin actions need an Idempotency-Key header of 1 to {MAX_IDEMPOTENCY_KEY} characters (letters, digits, - _ . :)"),
        ))
    }
}

/// What a change answers: the first time, and on every replay of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeAnswer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl ChangeAnswer {
    pub fn into_response(self) -> ApiResponse {
        let response = ApiResponse::json(self.status, &self.body);
        if self.replayed {
            response.with_header("idempotent-replayed", "true")
        } else {
            response
        }
    }
}

impl AdminChange {
    /// The audit record's key: the action and a hash of the allowlist entry
    /// (user or role, not the session) and the key.
    pub fn event_key(&self) -> EventKey {
        let digest =
            sha256_hex(format!("{}\n{}", self.principal.scope, self.idempotency_key).as_bytes());
        EventKey::new(
            Provider::Admin,
            format!("{}:{}", self.action, &digest[..40]),
        )
    }

    fn record(
        &self,
        status: u16,
        body: &Value,
        job_ids: Vec<JobId>,
        now: DateTime<Utc>,
    ) -> EventRecord {
        let payload = json!({
            "principal": self.principal.arn,
            "allowed_as": self.principal.allowed_as,
            "action": self.action,
            "idempotency_key": self.idempotency_key,
            "user_id": self.target_user.as_ref().map(|u| u.as_str()),
            "request": self.request,
            "response": {"status": status, "body": body},
        })
        .to_string()
        .into_bytes();
        EventRecord {
            key: self.event_key(),
            event_type: format!("admin.{}", self.action),
            status: EventStatus::Processed,
            reason: None,
            user_id: self.target_user.clone(),
            body_hash: sha256_hex(&payload),
            payload,
            received_at: now,
            job_ids,
            duplicate_body_hashes: Vec::new(),
            waiting_on: None,
        }
    }
}

/// The stored answer in an audit record's payload, if it was for the same
/// request; the same key on another request is a 422 that changes nothing.
fn stored_answer(record: &EventRecord, change: &AdminChange) -> Option<ChangeAnswer> {
    let payload: Value = serde_json::from_slice(&record.payload).ok()?;
    // A replay names its event in `request`; the others name their user too.
    let same_request = payload["request"] == change.request
        && change
            .target_user
            .as_ref()
            .is_none_or(|u| payload["user_id"].as_str() == Some(u.as_str()));
    if !same_request {
        return Some(ChangeAnswer {
            status: 422,
            body: problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was already used for a different request; use a new key",
            ),
            replayed: false,
        });
    }
    Some(ChangeAnswer {
        status: payload["response"]["status"].as_u64()? as u16,
        body: payload["response"]["body"].clone(),
        replayed: true,
    })
}

impl Services {
    /// The first answer to this change's key, if it was already made.
    pub async fn earlier_answer(
        &self,
        change: &AdminChange,
    ) -> Result<Option<ChangeAnswer>, ServiceError> {
        Ok(self
            .store
            .get_event(&change.event_key())
            .await?
            .as_ref()
            .and_then(|record| stored_answer(record, change)))
    }

    /// Commits `effects` with the audit record, then enqueues `jobs`. A lost
    /// race with the same key answers what the winner answered.
    /// `Ok(None)`: state moved under the change (another condition failed); retry.
    pub async fn commit_admin_change(
        &self,
        change: &AdminChange,
        effects: impl FnOnce(&mut Tx) -> Result<(), crate::store::StoreError>,
        jobs: &[EmailJob],
        status: u16,
        body: Value,
    ) -> Result<Option<ChangeAnswer>, ServiceError> {
        let now = self.now();
        let job_ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut tx = self.store.tx();
        tx.put_event(&change.record(status, &body, job_ids.clone(), now))?;
        effects(&mut tx)?;
        for job in jobs {
            tx.put_job(job)?;
        }
        match self.store.commit(tx).await {
            Ok(()) => {
                self.outbox.enqueue(&job_ids).await?;
                tracing::info!(
                    principal = %change.principal,
                    action = change.action,
                    user_id = ?change.target_user.as_ref().map(|u| u.as_str()),
                    outcome = "changed",
                    "admin change"
                );
                Ok(Some(ChangeAnswer {
                    status,
                    body,
                    replayed: false,
                }))
            }
            Err(CommitError::ConditionFailed { index: 0, .. }) => {
                Ok(self.earlier_answer(change).await?)
            }
            Err(CommitError::ConditionFailed { .. }) | Err(CommitError::Conflict) => Ok(None),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }

    /// `POST /admin/users/{id}/resend-setup-email`: a new link (older ones stop
    /// working). 404 for an unknown user, 409 for one already activated.
    pub async fn admin_resend_setup_email(
        &self,
        change: &AdminChange,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let Some(user) = change.target_user.as_ref() else {
            return Err(ServiceError::Internal("resend needs a user".into()));
        };
        let Some(member) = self.store.load_member(user).await? else {
            return Ok(not_found(user));
        };
        if member.is_active {
            return Ok(ChangeAnswer {
                status: 409,
                body: problem(
                    409,
                    "already-activated",
                    "Already activated",
                    "this account already has a password; a setup link would do nothing",
                ),
                replayed: false,
            });
        }
        let email = Email::parse(&member.email)
            .map_err(|e| ServiceError::Internal(format!("stored email is invalid: {e}")))?;
        let data = BTreeMap::from([("email".to_string(), email.to_string())]);
        let (job, hash, expires) = self.welcome_job(&email, data, self.now())?;
        let body = json!({"status": "sent", "user_id": user.as_str(), "job_id": job.id.as_str()});
        let answer = self
            .commit_admin_change(
                change,
                |tx| tx.put_setup_token(user, &hash, expires, &job.id),
                std::slice::from_ref(&job),
                202,
                body,
            )
            .await?;
        answer.ok_or(ServiceError::Contention)
    }
}

/// A manual role change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Grant(String),
    Revoke(String),
}

impl RoleChange {
    pub fn role(&self) -> &str {
        match self {
            RoleChange::Grant(r) | RoleChange::Revoke(r) => r,
        }
    }
    fn verb(&self) -> &'static str {
        match self {
            RoleChange::Grant(_) => "grant",
            RoleChange::Revoke(_) => "revoke",
        }
    }
}

impl Services {
    /// `POST /admin/users/{id}/roles`: a grant holds until an admin revokes it;
    /// a revoke of a plan role holds until a provider event changes that plan.
    pub async fn admin_change_roles(
        &self,
        change: &AdminChange,
        role_change: &RoleChange,
        reason: &str,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let Some(user) = change.target_user.as_ref() else {
            return Err(ServiceError::Internal("a role change needs a user".into()));
        };
        for _ in 0..super::webhook::MAX_ATTEMPTS {
            let Some(member) = self.store.load_member(user).await? else {
                return Ok(not_found(user));
            };
            let now = self.now();
            let before = self.entitlements_of(&member, now).roles;
            let mut granted = member.granted_roles.clone();
            let mut revocations = member.revocations.clone();
            let role = role_change.role().to_string();
            granted.retain(|r| *r != role);
            revocations.retain(|r| r.role != role);
            match role_change {
                RoleChange::Grant(_) => granted.push(role.clone()),
                RoleChange::Revoke(_) => revocations.push(crate::domain::Revocation::of(
                    &self.settings.plans,
                    &role,
                    &member.holdings(&self.settings.plans),
                )),
            }
            let mut changed = member.clone();
            changed.granted_roles = granted.clone();
            changed.revocations = revocations.clone();
            let after = self.entitlements_of(&changed, now).roles;
            let body = json!({
                "status": "changed",
                "user_id": user.as_str(),
                "change": role_change.verb(),
                "role": role,
                "reason": reason,
                "roles_before": before,
                "roles_after": after,
            });
            let stamp = crate::store::timestamp(now);
            let read_at = member.updated_at.clone();
            // A revoke is measured against these subscriptions: they must not move meanwhile.
            let watched: Vec<(String, String)> = match role_change {
                RoleChange::Revoke(_) => revocations
                    .iter()
                    .filter(|r| r.role == role)
                    .flat_map(|r| r.seen.clone())
                    .collect(),
                RoleChange::Grant(_) => Vec::new(),
            };
            let answer = self
                .commit_admin_change(
                    change,
                    |tx| {
                        tx.set_manual_roles(
                            user,
                            &granted,
                            &revocations,
                            read_at.as_deref(),
                            &stamp,
                        )?;
                        for (subscription, last_event) in &watched {
                            tx.check_subscription_unchanged(user, subscription, last_event)?;
                        }
                        Ok(())
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
}

impl Services {
    /// `POST /admin/users/{id}/points` `{delta, reason}`: moves the balance by
    /// `delta` with a ledger entry of its own, never below 0 (409). Audited,
    /// and repeated requests with the same key change nothing.
    pub async fn admin_adjust_points(
        &self,
        change: &AdminChange,
        delta: i64,
        reason: &str,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let Some(user) = change.target_user.as_ref() else {
            return Err(ServiceError::Internal(
                "a points change needs a user".into(),
            ));
        };
        for _ in 0..super::webhook::MAX_ATTEMPTS {
            let Some(member) = self.store.load_member(user).await? else {
                return Ok(not_found(user));
            };
            let after = member.points.saturating_add(delta);
            if after < 0 {
                return Ok(ChangeAnswer {
                    status: 409,
                    body: problem(
                        409,
                        "points-below-zero",
                        "Points would go below zero",
                        &format!(
                            "the balance is {}; a change of {delta} would leave {after}",
                            member.points
                        ),
                    ),
                    replayed: false,
                });
            }
            let body = json!({
                "status": "changed",
                "user_id": user.as_str(),
                "delta": delta,
                "reason": reason,
                "points_before": member.points,
                "points_after": after,
            });
            let (audit, now) = (change.event_key(), self.now());
            let answer = self
                .commit_admin_change(
                    change,
                    |tx| tx.adjust_points(user, delta, &audit, reason, now),
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
}

/// A problem document as a JSON value (for stored answers).
pub fn problem(status: u16, slug: &str, title: &str, detail: &str) -> Value {
    json!({
        "type": format!("https://gatehouse.dev/problems/{slug}"),
        "title": title,
        "status": status,
        "detail": detail,
    })
}

pub fn not_found(user: &UserId) -> ChangeAnswer {
    ChangeAnswer {
        status: 404,
        body: problem(
            404,
            "user-not-found",
            "User not found",
            &format!("no user with id `{user}`"),
        ),
        replayed: false,
    }
}

impl ChangeAnswer {
    /// A problem answer keeps problem+json as its media type.
    pub fn into_http(self) -> ApiResponse {
        let is_problem = self.body.get("type").is_some() && self.status >= 400;
        let mut response = self.clone().into_response();
        if is_problem {
            response.headers.retain(|(k, _)| k != "content-type");
            response
                .headers
                .push(("content-type".into(), "application/problem+json".into()));
        }
        response
    }
}

impl Services {
    /// `POST /admin/events/{key}/replay`: runs a `failed` or `pending` event
    /// through its provider's processing again (the event record's own
    /// condition keeps the effects exactly-once), then writes the audit
    /// record. With `attach_to`, a `pending` event's provider customer is
    /// first mapped to that member, and every event waiting on the customer
    /// is applied. Any other status is a 409 and changes nothing.
    pub async fn admin_replay_event(
        &self,
        change: &AdminChange,
        key: &EventKey,
        attach_to: Option<&UserId>,
    ) -> Result<ChangeAnswer, ServiceError> {
        if let Some(user) = attach_to {
            // Mapped in the transaction that audits it, then applied.
            return self
                .attach_waiting(change, key, user, |found| attachable(found, key))
                .await;
        }
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let Some(record) = self.store.get_event(key).await? else {
            return Ok(ChangeAnswer {
                status: 404,
                body: problem(
                    404,
                    "event-not-found",
                    "Event not found",
                    &format!("no event {key}"),
                ),
                replayed: false,
            });
        };
        let conflict = |detail: String| ChangeAnswer {
            status: 409,
            body: problem(409, "not-replayable", "Not replayable", &detail),
            replayed: false,
        };
        if !(record.status == EventStatus::Failed || record.status.is_waiting()) {
            return Ok(conflict(format!(
                "only failed, pending and unmatched events are replayed; {key} is {}",
                record.status.as_str()
            )));
        }
        if serde_json::from_slice::<Value>(&record.payload).is_err() {
            return Ok(conflict(format!(
                "{key} was recorded with a body that is not JSON; a provider must send it again"
            )));
        }
        let Some(outcome) = self.reprocess(&record).await? else {
            return Ok(conflict(
                "admin records are an audit trail, not replayable".into(),
            ));
        };
        let outcome = ReplayResult {
            status: outcome.status().to_string(),
            reason: match outcome {
                crate::service::webhook::WebhookOutcome::Failed { reason, .. } => Some(reason),
                _ => None,
            },
        };
        let mut body = json!({
            "event": key.to_string(),
            "old_status": record.status.as_str(),
            "new_status": outcome.status,
        });
        if let Some(reason) = &outcome.reason {
            body["reason"] = json!(reason);
        }
        let mut audited = change.clone();
        audited.target_user = audited.target_user.or(record.user_id.clone());
        let answer = self
            .commit_admin_change(&audited, |_| Ok(()), &[], 200, body.clone())
            .await?;
        Ok(answer.unwrap_or(ChangeAnswer {
            status: 200,
            body,
            replayed: false,
        }))
    }
}

/// The record a replay may attach to a member: a waiting event, else the
/// refusal.
fn attachable(found: Option<EventRecord>, key: &EventKey) -> Result<EventRecord, ChangeAnswer> {
    let Some(record) = found else {
        return Err(ChangeAnswer {
            status: 404,
            body: problem(
                404,
                "event-not-found",
                "Event not found",
                &format!("no event {key}"),
            ),
            replayed: false,
        });
    };
    if !record.status.is_waiting() {
        return Err(ChangeAnswer {
            status: 409,
            body: problem(
                409,
                "not-replayable",
                "Not replayable",
                &format!(
                    "only a pending or unmatched event is attached to a member; {key} is {}; replay it without user_id",
                    record.status.as_str()
                ),
            ),
            replayed: false,
        });
    }
    Ok(record)
}

/// What a replay did to the event.
struct ReplayResult {
    status: String,
    reason: Option<String>,
}

/// The start every admin change makes: the allowed caller and the
/// `Idempotency-Key`. The caller fills in `request` (and the user) once it
/// has parsed them.
pub fn admin_change(
    principals: &crate::admin::AdminPrincipals,
    request: &ApiRequest,
    action: &'static str,
) -> Result<AdminChange, ApiResponse> {
    Ok(AdminChange {
        principal: crate::admin::authorize(principals, request)?,
        action,
        idempotency_key: idempotency_key(request)?,
        target_user: None,
        request: Value::Null,
    })
}

/// The start every change on one user makes: the allowed caller, the
/// `Idempotency-Key`, and the user id from the path (404 when malformed).
pub fn user_change(
    principals: &crate::admin::AdminPrincipals,
    request: &ApiRequest,
    action: &'static str,
    body: Value,
) -> Result<AdminChange, ApiResponse> {
    let mut change = admin_change(principals, request, action)?;
    let raw = request
        .path_params
        .get("id")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(user) = crate::admin::listing::user_id_from_path(raw) else {
        return Err(not_found(&UserId::from_stored(raw)).into_http());
    };
    change.target_user = Some(user);
    change.request = body;
    Ok(change)
}
