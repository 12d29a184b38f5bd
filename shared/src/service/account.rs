//! Password setup and resending the setup link.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::Duration;

use super::{ServiceError, Services};
use crate::domain::{Email, JobId, Password, UserId};
use crate::setup_token;
use crate::signature::{secrets_equal, sha256_hex};
use crate::store::CommitError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    Activated {
        user_id: UserId,
    },
    /// Wrong, used or expired token, or no such account: one answer for all.
    InvalidToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResendOutcome {
    Sent,
    /// Unknown or already-active address: nothing to send.
    NothingToSend,
    RateLimited,
}

/// argon2id with the crate's defaults (OWASP's m=19 MiB, t=2, p=1).
pub fn hash_password(password: &Password) -> Result<String, ServiceError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))
}

impl Services {
    pub async fn setup_password(
        &self,
        email: &Email,
        token: &str,
        password: Password,
    ) -> Result<SetupOutcome, ServiceError> {
        let now = self.now();
        let Some(record) = self.store.get_email(email).await? else {
            return Ok(SetupOutcome::InvalidToken);
        };
        let Some(stored) = self.store.get_setup_token(&record.user_id).await? else {
            return Ok(SetupOutcome::InvalidToken);
        };
        let given_hash = setup_token::hash(token);
        // Both sides are hex hashes; compare in constant time anyway.
        if !secrets_equal(given_hash.as_bytes(), stored.token_hash.as_bytes())
            || stored.expires_at <= now
        {
            return Ok(SetupOutcome::InvalidToken);
        }
        // argon2id is CPU-heavy; keep it off the async workers.
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ServiceError::Internal(format!("hashing task failed: {e}")))??;
        let mut tx = self.store.tx();
        tx.activate_user(
            &record.user_id,
            email,
            &stored.token_hash,
            &password_hash,
            now,
        )?;
        match self.store.commit(tx).await {
            Ok(()) => {
                tracing::info!(user_id = %record.user_id, outcome = "activated", "password set");
                Ok(SetupOutcome::Activated {
                    user_id: record.user_id,
                })
            }
            // The token was consumed or replaced between the read and the write.
            Err(CommitError::ConditionFailed { .. }) => Ok(SetupOutcome::InvalidToken),
            Err(CommitError::Conflict) => Err(ServiceError::Contention),
            Err(CommitError::Store(e)) => Err(e.into()),
        }
    }

    /// Issues a new setup link (older ones stop working). The same reads, one
    /// transaction (the rate-limit counters, and for a waiting account its
    /// token and job) and one queue message happen whether or not the address
    /// exists, so the caller cannot tell the difference.
    pub async fn resend_setup_email(&self, email: &Email) -> Result<ResendOutcome, ServiceError> {
        let now = self.now();
        let record = self.store.get_email(email).await?;
        let mut tx = self.store.tx();
        let address_bucket = format!(
            "{}#{}",
            sha256_hex(email.as_str().as_bytes()),
            now.format("%Y%m%d%H")
        );
        tx.count_within(
            "resend-address",
            &address_bucket,
            self.settings.resend_per_address_per_hour,
            now + Duration::hours(2),
        )?;
        tx.count_within(
            "resend-global",
            &now.format("%Y%m%d%H%M").to_string(),
            self.settings.resend_global_per_minute,
            now + Duration::minutes(10),
        )?;
        let mut job_id = None;
        // An account a visitor's checkout made gets its link once a payment
        // is applied, not on request: otherwise anyone could sign up free.
        if let Some(record) = record
            .as_ref()
            .filter(|r| !r.is_active && !r.awaiting_payment)
        {
            let data = [("email".to_string(), email.to_string())]
                .into_iter()
                .collect();
            let (job, hash, expires) = self.welcome_job(email, data, now)?;
            tx.put_setup_token(&record.user_id, &hash, expires, &job.id)?;
            tx.put_job(&job)?;
            job_id = Some(job.id);
        }
        match self.store.commit(tx).await {
            Ok(()) => {}
            Err(CommitError::ConditionFailed { .. }) => {
                tracing::warn!(outcome = "rate_limited", "setup email resend refused");
                return Ok(ResendOutcome::RateLimited);
            }
            Err(CommitError::Conflict) => return Err(ServiceError::Contention),
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
        // The same queue message either way, so the answer's timing does not
        // tell whether the address has an account waiting: for none, an id no
        // job has, which the sender drops.
        let sent = job_id.is_some();
        let message = job_id.unwrap_or_else(|| JobId::generate(now.timestamp_millis()));
        self.outbox.enqueue(&[message]).await?;
        Ok(if sent {
            ResendOutcome::Sent
        } else {
            ResendOutcome::NothingToSend
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse battery", &parsed)
            .is_err());
    }
}
