//! Member sign-in: password login with failure limits, session issuing, and
//! the member's own view. Roles are always computed from stored state, never
//! read back from a token.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{ServiceError, Services};
use crate::config::Secret;
use crate::domain::{entitlements, has_access, Email, Entitlements, UserId};
use crate::session::{IssuedSession, SessionKeys, SessionSubject};
use crate::signature::sha256_hex;
use crate::store::{CommitError, LedgerEntry, MemberRecord};

/// An argon2id hash (same parameters as `hash_password`) of a random password
/// nobody knows. A login for an unknown address verifies against it, so it
/// costs the same time as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$QUxMLXplcm8tc2FsdC0xMjM$8x0E38pL7Hj2q6aXm4Hq2b7jgq0G1CPeFqJ1tJ2q3nA";

const LOGIN_ADDRESS_SCOPE: &str = "login-address";
const LOGIN_IP_SCOPE: &str = "login-ip";
/// A user id no user can have: ids are `usr_` plus hex.
const NO_SUCH_USER: &str = "none";

/// The permission that makes a member premium.
pub const PREMIUM_PERMISSION: &str = "read:premium-content";

#[derive(Debug)]
pub enum LoginOutcome {
    SignedIn(Box<MemberSession>),
    /// Unknown address, no password set yet, or a wrong password: one answer
    /// for all three, so a login never tells whether an address has an account.
    InvalidCredentials,
    RateLimited {
        retry_after_secs: i64,
    },
}

/// A session together with what it was issued from.
#[derive(Debug)]
pub struct MemberSession {
    pub session: IssuedSession,
    pub member: MemberRecord,
    pub entitlements: Entitlements,
}

/// Verifies a password against a PHC string; a malformed hash never matches.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl MemberSession {
    /// The JSON a client receives with a new session (OAuth-style field names).
    pub fn to_json(&self) -> Value {
        json!({
            "token_type": "Bearer",
            "access_token": self.session.token,
            "expires_at": self.session.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "expires_in": self.session.lifetime().num_seconds(),
            "user_id": self.member.user_id.as_str(),
            "email": self.member.email,
            "roles": self.entitlements.roles,
            "permissions": self.entitlements.permissions,
        })
    }
}

/// Ledger entries per page of a member view.
pub const LEDGER_PAGE: usize = 20;

/// One page of a member's points ledger (newest first): the entries after the
/// one `after` names (its `entry`), and the cursor of the next page. Entries
/// added since the first page go at the front, so pages never repeat one.
pub fn ledger_page<'a>(
    ledger: &'a [LedgerEntry],
    after: Option<&str>,
) -> Result<(&'a [LedgerEntry], Option<String>), String> {
    let start = match after {
        None => 0,
        Some(cursor) => {
            ledger
                .iter()
                .position(|e| e.entry == cursor)
                .ok_or_else(|| format!("ledger_after: no ledger entry {cursor}"))?
                + 1
        }
    };
    let page = &ledger[start..(start + LEDGER_PAGE).min(ledger.len())];
    let next = (start + page.len() < ledger.len())
        .then(|| page.last().map(|e| e.entry.clone()))
        .flatten();
    Ok((page, next))
}

/// A member's own view: profile, subscriptions with access, entitlements
/// computed at `now`, premium flag, the points balance and one page of the
/// ledger (`ledger_after` from the last page's `next`).
pub fn member_json(
    member: &MemberRecord,
    entitlements: &Entitlements,
    plans: &crate::domain::PlanCatalog,
    now: DateTime<Utc>,
    ledger_after: Option<&str>,
) -> Result<Value, String> {
    let (page, next) = ledger_page(&member.ledger, ledger_after)?;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    let subscriptions: Vec<Value> = member
        .subscriptions
        .iter()
        .map(|sub| {
            json!({
                // What `/account/subscriptions/{id}/cancel` and `/resume` take.
                "id": super::self_service::subscription_id(sub),
                "provider": sub.provider.as_str(),
                "plan": sub.plan_id,
                "plan_name": plans.get(&sub.plan_id).map(|p| p.name.as_str()),
                "renews": !super::self_service::is_pass(sub, plans)
                    && matches!(sub.view.state, crate::domain::SubscriptionState::Active | crate::domain::SubscriptionState::PastDue),
                "state": sub.view.state.as_str(),
                "access": has_access(sub.view.state, sub.view.access_until, now),
                "period_end": time(sub.view.period_end),
                "access_until": time(sub.view.access_until),
            })
        })
        .collect();
    let entries: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({
                "entry": e.entry,
                "points": e.points,
                "course_id": e.course_id,
                "course_name": e.course_name,
                "reason": e.reason,
                "event": e.event,
                "completed_at": time(e.completed_at),
                "awarded_at": time(Some(e.awarded_at)),
            })
        })
        .collect();
    Ok(json!({
        "profile": {
            "user_id": member.user_id.as_str(),
            "email": member.email,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "is_active": member.is_active,
            "auth_provider": member.auth_provider,
            "partner": member.partner(),
            "created_at": time(member.created_at),
            "activated_at": time(member.activated_at),
        },
        "subscriptions": subscriptions,
        "kajabi_tags": member.present_tags(),
        "roles": entitlements.roles,
        "permissions": entitlements.permissions,
        "premium": entitlements.permissions.contains(PREMIUM_PERMISSION),
        "points": member.points,
        "points_ledger": {"entries": entries, "next": next},
    }))
}

impl Services {
    /// The session keys, or a clear error when this function was deployed without them.
    pub fn session_keys(&self) -> Result<&SessionKeys, ServiceError> {
        self.sessions.as_deref().ok_or_else(|| {
            ServiceError::Internal(
                "neither SESSION_SIGNING_KEYS nor SESSION_PUBLIC_KEYS is configured".into(),
            )
        })
    }

    /// Effective roles and permissions of `member` at `now`.
    pub fn entitlements_of(&self, member: &MemberRecord, now: DateTime<Utc>) -> Entitlements {
        entitlements(
            &self.settings.plans,
            &member.holdings(&self.settings.plans),
            &member.granted_roles,
            &member.revocations,
            now,
        )
    }

    /// Signs a session carrying the member's current entitlements.
    pub fn issue_session(&self, member: MemberRecord) -> Result<MemberSession, ServiceError> {
        let now = self.now();
        let entitlements = self.entitlements_of(&member, now);
        let subject = SessionSubject {
            user_id: member.user_id.as_str().to_string(),
            email: member.email.clone(),
            roles: entitlements.roles.clone(),
            permissions: entitlements.permissions.clone(),
            partner: member.partner().map(str::to_string),
        };
        let session = self
            .session_keys()?
            .issue(&subject, now)
            .map_err(|e| ServiceError::Internal(format!("session signing failed: {e}")))?;
        Ok(MemberSession {
            session,
            member,
            entitlements,
        })
    }

    /// Loads the member and signs a session for them.
    pub async fn session_for(&self, user: &UserId) -> Result<Option<MemberSession>, ServiceError> {
        match self.store.load_member(user).await? {
            Some(member) => Ok(Some(self.issue_session(member)?)),
            None => Ok(None),
        }
    }

    /// Email and password sign-in.
    ///
    /// Each attempt first claims a slot in the per-address and per-IP counters
    /// with one conditional transaction, so parallel guesses cannot outrun the
    /// limit; a success gives its slot back, so only failures stay counted.
    /// Every attempt then reads the email mapping and a member partition (a
    /// partition that cannot exist when the address is unknown) and verifies a
    /// hash (a dummy one when there is none): the same work on every path.
    /// Round trips: 3 on failure, 4 on success.
    pub async fn login(
        &self,
        email: &Email,
        password: Secret,
        source_ip: Option<&str>,
    ) -> Result<LoginOutcome, ServiceError> {
        let now = self.now();
        let window = self.settings.login_window.as_secs().max(1) as i64;
        let slot = now.timestamp().div_euclid(window);
        let retry_after_secs = (slot + 1) * window - now.timestamp();
        // Counters are keyed by hashes: the table holds no addresses or IPs in clear.
        let address_bucket = format!("{}#{slot}", sha256_hex(email.as_str().as_bytes()));
        let ip_bucket = format!(
            "{}#{slot}",
            sha256_hex(source_ip.unwrap_or("unknown").as_bytes())
        );
        let expires = now + Duration::seconds(window * 2);
        let mut claim = self.store.tx();
        claim.count_within(
            LOGIN_ADDRESS_SCOPE,
            &address_bucket,
            self.settings.login_failures_per_address,
            expires,
        )?;
        claim.count_within(
            LOGIN_IP_SCOPE,
            &ip_bucket,
            self.settings.login_failures_per_ip,
            expires,
        )?;
        match self.store.commit(claim).await {
            Ok(()) => {}
            Err(CommitError::ConditionFailed { .. }) => {
                tracing::warn!(outcome = "rate_limited", "login refused");
                return Ok(LoginOutcome::RateLimited { retry_after_secs });
            }
            Err(CommitError::Conflict) => return Err(ServiceError::Contention),
            Err(CommitError::Store(e)) => return Err(e.into()),
        }

        let record = self.store.get_email(email).await?;
        let user = record
            .map(|r| r.user_id)
            .unwrap_or_else(|| UserId::from_stored(NO_SUCH_USER));
        let member = self.store.load_member(&user).await?;
        let hash = member
            .as_ref()
            .and_then(|m| m.password_hash.as_ref())
            .map(|h| h.expose().to_string())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        // argon2id is CPU-heavy; keep it off the async workers.
        let matches =
            tokio::task::spawn_blocking(move || password_matches(&hash, password.expose()))
                .await
                .map_err(|e| ServiceError::Internal(format!("verification task failed: {e}")))?;

        match member {
            // An account that has not set its password has no hash: `matches` is false.
            Some(member) if matches && member.is_active => {
                let mut release = self.store.tx();
                release.uncount(LOGIN_ADDRESS_SCOPE, &address_bucket)?;
                release.uncount(LOGIN_IP_SCOPE, &ip_bucket)?;
                if let Err(e) = self.store.commit(release).await {
                    // Only a counter: the member is signed in either way.
                    tracing::warn!(error = %e, "could not release a login attempt");
                }
                tracing::info!(user_id = %member.user_id, outcome = "signed_in", "login");
                Ok(LoginOutcome::SignedIn(Box::new(
                    self.issue_session(member)?,
                )))
            }
            _ => {
                tracing::info!(outcome = "invalid_credentials", "login refused");
                Ok(LoginOutcome::InvalidCredentials)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Password;
    use crate::service::account::hash_password;

    fn entries(n: usize) -> Vec<LedgerEntry> {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        (0..n)
            .rev()
            .map(|i| LedgerEntry {
                entry: format!("course#c{i:03}"),
                points: 20,
                course_id: Some(format!("c{i:03}")),
                course_name: None,
                reason: None,
                event: None,
                completed_at: None,
                awarded_at: start + Duration::minutes(i as i64),
            })
            .collect()
    }

    #[test]
    fn the_ledger_pages_newest_first_without_repeats_or_gaps() {
        let ledger = entries(45);
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let (page, next) = ledger_page(&ledger, after.as_deref()).unwrap();
            assert!(page.len() <= LEDGER_PAGE);
            seen.extend(page.iter().map(|e| e.entry.clone()));
            pages += 1;
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(
            seen,
            ledger.iter().map(|e| e.entry.clone()).collect::<Vec<_>>()
        );
        assert_eq!(seen[0], "course#c044", "newest first");
        // A newer award since the first page does not shift the next one.
        let (first, next) = ledger_page(&ledger, None).unwrap();
        let mut grown = entries(46);
        grown.truncate(46);
        let (second, _) = ledger_page(&grown, next.as_deref()).unwrap();
        assert_eq!(second[0].entry, ledger[first.len()].entry);
        assert!(ledger_page(&ledger, Some("course#nope")).is_err());
        assert_eq!(ledger_page(&[], None).unwrap(), (&[][..], None));
    }

    #[test]
    fn dummy_hash_costs_what_a_real_hash_costs() {
        let real =
            hash_password(&Password::parse("correct horse battery".into()).unwrap()).unwrap();
        let params = |phc: &str| {
            let parsed = PasswordHash::new(phc).unwrap();
            (
                parsed.algorithm.to_string(),
                parsed.version,
                parsed.params.to_string(),
            )
        };
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(!password_matches(DUMMY_HASH, "correct horse battery"));
    }

    #[test]
    fn verifies_only_the_right_password() {
        let real =
            hash_password(&Password::parse("correct horse battery".into()).unwrap()).unwrap();
        assert!(password_matches(&real, "correct horse battery"));
        assert!(!password_matches(&real, "correct horse batterY"));
        assert!(!password_matches("not a phc string", "anything"));
    }
}
