//! Password-setup tokens. The raw token is never stored anywhere: it is derived
//! from the email job's id with a server key when the email is rendered, and
//! only its SHA-256 is kept in the table.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::JobId;
use crate::domain::Secret;
use crate::signature::{hmac_sha256, sha256_hex};

/// 32 bytes, base64url without padding (43 characters).
pub fn derive(key: &Secret, job: &JobId) -> String {
    let bytes = hmac_sha256(
        key.expose().as_bytes(),
        format!("setup-token:{job}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the table stores: the hex SHA-256 of the token text.
pub fn hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_stable_per_job_and_key() {
        let key = Secret::new("k".repeat(32));
        let job = JobId::from_stored("job_1");
        let token = derive(&key, &job);
        assert_eq!(token.len(), 43);
        assert_eq!(token, derive(&key, &job));
        assert_ne!(token, derive(&key, &JobId::from_stored("job_2")));
        assert_ne!(token, derive(&Secret::new("x".repeat(32)), &job));
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_eq!(hash(&token).len(), 64);
        assert_ne!(hash(&token), token);
    }
}
