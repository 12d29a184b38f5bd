//! Member sessions: EdDSA (Ed25519) JWTs, and the JWKS that lets any app
//! verify them without calling Gatehouse.
//!
//! Keys are configured as `kid:seed` pairs (`seed` is 32 random bytes,
//! base64url), comma-separated, oldest first. Every listed key verifies and is
//! published; the last one signs, unless `SESSION_SIGNING_KID` names another.
//! So a rotation can publish a key before it signs anything (see the runbook).
//!
//! The functions that only verify or publish (`account-me`, `jwks`) get the
//! public halves instead, `kid:x` (`x` is the JWK's 32-byte public key), from
//! `SESSION_PUBLIC_KEYS`: no private key sits where it is not needed.

use std::collections::BTreeSet;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::Secret;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): what comes before the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    #[error("no session signing key is configured")]
    Empty,
    #[error("session key {position} is not `kid:seed`")]
    Shape { position: usize },
    #[error("session key `{kid}`: the seed must be 32 bytes of base64url")]
    Seed { kid: String },
    #[error("session key id `{0}` is listed twice")]
    DuplicateKid(String),
    #[error("session key `{kid}` was rejected by the signer: {reason}")]
    Rejected { kid: String, reason: String },
    #[error("SESSION_SIGNING_KID `{0}` is not in the key list")]
    UnknownSigningKid(String),
    #[error("session public key `{kid}`: it must be 32 bytes of base64url")]
    PublicKey { kid: String },
    #[error("the signing key `{0}` is not in SESSION_PUBLIC_KEYS with its public key: nothing could verify what it signs")]
    Unpublished(String),
    #[error("SESSION_PUBLIC_KEYS does not list exactly the keys' public halves, in order: derive it again from the deployed key list (a key removed from one must leave the other)")]
    PublishedDiffers,
    #[error("session key id `{0}`: use letters, digits, `.`, `_` and `-`")]
    Kid(String),
}

/// A session could not be signed (a key problem, never the member's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing the session failed: {0}")]
pub struct SigningError(String);

/// Why a presented session is not accepted. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token names no key this service publishes")]
    UnknownKey,
    #[error("the session token's signature or claims do not verify")]
    Invalid,
    #[error("the session has expired")]
    Expired,
}

/// The claims of a Gatehouse session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    /// The stable user id.
    pub sub: String,
    pub email: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub partner: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Who a new session is for; the issuer adds the rest.
#[derive(Debug, Clone)]
pub struct SessionSubject {
    pub user_id: String,
    pub email: String,
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
    pub partner: Option<String>,
}

/// A signed session, ready to hand to the member.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub token: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub kid: String,
}

struct SessionKey {
    kid: String,
    /// None where only the public half is configured.
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    public: Jwk,
    /// The public key, base64url (the JWK's `x`).
    x: String,
}

/// Signs and verifies sessions with the configured keys.
pub struct SessionKeys {
    /// Oldest first.
    keys: Vec<SessionKey>,
    /// Index of the key that signs new sessions.
    signing: usize,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SessionKeys")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl SessionKeys {
    /// Parses `kid:seed,kid:seed` (oldest first): keys that sign and verify.
    pub fn parse(
        raw: &Secret,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, SessionKeyError> {
        let keys = key_list(raw.expose(), |kid, seed| {
            let seed = decode_32(seed).ok_or_else(|| SessionKeyError::Seed {
                kid: kid.to_string(),
            })?;
            SessionKey::from_seed(kid, &seed)
        })?;
        Ok(Self::new(keys, issuer, audience, ttl))
    }

    /// Parses the published halves, `kid:x,kid:x` (oldest first): keys that
    /// verify and are published, and sign nothing.
    pub fn parse_public(
        raw: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, SessionKeyError> {
        let keys = key_list(raw, |kid, x| {
            let bytes = decode_32(x).ok_or_else(|| SessionKeyError::PublicKey {
                kid: kid.to_string(),
            })?;
            SessionKey::from_public(kid, &bytes)
        })?;
        Ok(Self::new(keys, issuer, audience, ttl))
    }

    fn new(
        keys: Vec<SessionKey>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            signing: keys.len() - 1,
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            ttl,
        }
    }

    /// The public halves as `SESSION_PUBLIC_KEYS` takes them, oldest first.
    pub fn public_list(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.x))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Fails unless `published` lists exactly these keys' public halves, in
    /// order: a signer whose sessions nothing could verify, or whose removed
    /// (say, leaked) key is still published and accepted, refuses to start.
    pub fn check_published(&self, published: &SessionKeys) -> Result<(), SessionKeyError> {
        let key = self.current();
        if !published
            .keys
            .iter()
            .any(|p| p.kid == key.kid && p.x == key.x)
        {
            return Err(SessionKeyError::Unpublished(key.kid.clone()));
        }
        if published.public_list() != self.public_list() {
            return Err(SessionKeyError::PublishedDiffers);
        }
        Ok(())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs with `kid` instead of the newest key (a rotation's publish-first phase).
    pub fn signing_with(mut self, kid: &str) -> Result<Self, SessionKeyError> {
        self.signing = self
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| SessionKeyError::UnknownSigningKid(kid.to_string()))?;
        Ok(self)
    }

    fn current(&self) -> &SessionKey {
        // `signing` is always a valid index: set from a non-empty list or a found kid.
        &self.keys[self.signing]
    }

    /// Signs a session for `subject` with the newest key.
    pub fn issue(
        &self,
        subject: &SessionSubject,
        now: DateTime<Utc>,
    ) -> Result<IssuedSession, SigningError> {
        let key = self.current();
        let signing = key
            .signing
            .as_ref()
            .ok_or_else(|| SigningError("only public session keys are configured here".into()))?;
        let expires_at = now + self.ttl;
        let claims = SessionClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id.clone(),
            email: subject.email.clone(),
            roles: subject.roles.iter().cloned().collect(),
            permissions: subject.permissions.iter().cloned().collect(),
            partner: subject.partner.clone(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, signing)
            .map_err(|e| SigningError(e.to_string()))?;
        Ok(IssuedSession {
            token,
            issued_at: now,
            expires_at,
            kid: key.kid.clone(),
        })
    }

    /// Verifies signature, key id, issuer, audience and expiry (against `now`,
    /// the service clock, so tests can move time).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<SessionClaims, SessionError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| SessionError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(SessionError::Invalid);
        }
        let kid = header.kid.ok_or(SessionError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(SessionError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked below against the service clock.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<SessionClaims>(token, &key.verifying, &validation)
            .map_err(|_| SessionError::Invalid)?;
        if data.claims.exp <= now.timestamp() {
            return Err(SessionError::Expired);
        }
        Ok(data.claims)
    }

    /// The public keys as a JWK Set (RFC 7517), newest first.
    pub fn jwks(&self) -> Value {
        let keys: Vec<&Jwk> = self.keys.iter().rev().map(|k| &k.public).collect();
        json!({ "keys": keys })
    }
}

impl IssuedSession {
    /// Seconds the session lives, as `expires_in` and the cookie's Max-Age say.
    pub fn lifetime(&self) -> Duration {
        self.expires_at - self.issued_at
    }
}

/// `kid:value,kid:value`, each value read by `key`; kids unique, at least one.
fn key_list(
    raw: &str,
    key: impl Fn(&str, &str) -> Result<SessionKey, SessionKeyError>,
) -> Result<Vec<SessionKey>, SessionKeyError> {
    let mut keys: Vec<SessionKey> = Vec::new();
    for (position, entry) in raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let (kid, value) = entry
            .split_once(':')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or(SessionKeyError::Shape {
                position: position + 1,
            })?;
        if !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(SessionKeyError::Kid(kid.to_string()));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(SessionKeyError::DuplicateKid(kid.to_string()));
        }
        keys.push(key(kid, value)?);
    }
    if keys.is_empty() {
        return Err(SessionKeyError::Empty);
    }
    Ok(keys)
}

fn decode_32(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .filter(|b| b.len() == 32)
}

impl SessionKey {
    fn from_seed(kid: &str, seed: &[u8]) -> Result<Self, SessionKeyError> {
        let rejected = |reason: String| SessionKeyError::Rejected {
            kid: kid.to_string(),
            reason,
        };
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(seed);
        let signing = EncodingKey::from_ed_der(&pkcs8);
        let public = Jwk::from_encoding_key(&signing, Algorithm::EdDSA)
            .map_err(|e| rejected(e.to_string()))?;
        let x = match &public.algorithm {
            AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
            _ => return Err(rejected("not an Ed25519 key".into())),
        };
        let mut key = Self::published(kid, x)?;
        // A signature made and checked at load time proves the pair is usable.
        let probe = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &json!({"probe": true}),
            &signing,
        )
        .map_err(|e| rejected(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(&probe, &key.verifying, &validation)
            .map_err(|e| rejected(e.to_string()))?;
        key.signing = Some(signing);
        Ok(key)
    }

    fn from_public(kid: &str, public_key: &[u8]) -> Result<Self, SessionKeyError> {
        Self::published(kid, URL_SAFE_NO_PAD.encode(public_key))
    }

    /// The verifying half, and the JWK that publishes it.
    fn published(kid: &str, x: String) -> Result<Self, SessionKeyError> {
        let rejected = |reason: String| SessionKeyError::Rejected {
            kid: kid.to_string(),
            reason,
        };
        let public: Jwk = serde_json::from_value(json!({
            "kty": "OKP", "crv": "Ed25519", "x": x,
            "kid": kid, "use": "sig", "alg": "EdDSA",
        }))
        .map_err(|e| rejected(e.to_string()))?;
        let verifying = DecodingKey::from_jwk(&public).map_err(|e| rejected(e.to_string()))?;
        Ok(Self {
            kid: kid.to_string(),
            signing: None,
            verifying,
            public,
            x,
        })
    }
}

/// The `Set-Cookie` value for a session: host-only, HTTPS-only, invisible to scripts.
pub fn session_cookie(token: &str, max_age: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
        max_age.num_seconds().max(0)
    )
}

/// A fresh random seed, base64url: what goes after `kid:` in the key list.
pub fn generate_seed() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// `sha256-…` of a script or style body, for a Content-Security-Policy.
pub fn csp_hash(source: &str) -> String {
    use sha2::Digest;
    format!("'sha256-{}'", STANDARD.encode(sha2::Sha256::digest(source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "2026-10:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const NEW: &str = "2026-11:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

    fn keys(list: &str) -> SessionKeys {
        SessionKeys::parse(
            &Secret::new(list),
            "https://gatehouse.test",
            "members",
            Duration::hours(1),
        )
        .unwrap()
    }

    fn subject() -> SessionSubject {
        SessionSubject {
            user_id: "usr_1".into(),
            email: "ada@example.com".into(),
            roles: BTreeSet::from(["free-user".into(), "premium-monthly".into()]),
            permissions: BTreeSet::from(["read:premium-content".into()]),
            partner: Some("NSSA".into()),
        }
    }

    fn public(list: &str) -> SessionKeys {
        SessionKeys::parse_public(
            list,
            "https://gatehouse.test",
            "members",
            Duration::hours(1),
        )
        .unwrap()
    }

    #[test]
    fn the_public_halves_verify_and_publish_what_the_seeds_sign_and_sign_nothing() {
        let signer = keys(&format!("{OLD},{NEW}"));
        let list = signer.public_list();
        assert!(
            list.starts_with("2026-10:") && list.contains(",2026-11:"),
            "{list}"
        );
        assert!(
            !list.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
            "no seed"
        );
        let verifier = public(&list);
        let now = Utc::now();
        let session = signer.issue(&subject(), now).unwrap();
        assert_eq!(verifier.verify(&session.token, now).unwrap().sub, "usr_1");
        assert_eq!(verifier.jwks(), signer.jwks());
        assert!(verifier.issue(&subject(), now).is_err());
        assert_eq!(signer.check_published(&verifier), Ok(()));
    }

    #[test]
    fn a_signer_whose_key_is_not_published_refuses() {
        let signer = keys(&format!("{OLD},{NEW}"));
        let only_old = public(&keys(OLD).public_list());
        assert_eq!(
            signer.check_published(&only_old),
            Err(SessionKeyError::Unpublished("2026-11".into()))
        );
        // The right kid with another key's public half.
        let x_of_old = keys(OLD).public_list().replace("2026-10:", "2026-11:");
        assert_eq!(
            signer.check_published(&public(&x_of_old)),
            Err(SessionKeyError::Unpublished("2026-11".into()))
        );
        // Publish-first: the old key signs while the new one is published too.
        let both = public(&signer.public_list());
        let publishing = keys(&format!("{OLD},{NEW}"))
            .signing_with("2026-10")
            .unwrap();
        assert_eq!(publishing.check_published(&both), Ok(()));
        // A key dropped from the seeds (a leak) but still published: refused,
        // or account-me and every app would keep accepting what it signed.
        assert_eq!(
            keys(NEW).check_published(&both),
            Err(SessionKeyError::PublishedDiffers)
        );
    }

    #[test]
    fn public_key_lists_name_what_is_wrong() {
        let parse =
            |raw: &str| SessionKeys::parse_public(raw, "i", "a", Duration::hours(1)).map(|_| ());
        assert_eq!(parse(""), Err(SessionKeyError::Empty));
        assert_eq!(parse("k1"), Err(SessionKeyError::Shape { position: 1 }));
        assert_eq!(
            parse("k1:c2hvcnQ"),
            Err(SessionKeyError::PublicKey { kid: "k1".into() })
        );
        let x = keys(NEW).public_list().replace("2026-11:", "");
        assert_eq!(
            parse(&format!("k1:{x},k1:{x}")),
            Err(SessionKeyError::DuplicateKid("k1".into()))
        );
    }

    #[test]
    fn issues_and_verifies_with_every_claim() {
        let keys = keys(NEW);
        let now = Utc::now();
        let session = keys.issue(&subject(), now).unwrap();
        assert_eq!(session.kid, "2026-11");
        let claims = keys.verify(&session.token, now).unwrap();
        assert_eq!(claims.sub, "usr_1");
        assert_eq!(claims.email, "ada@example.com");
        assert_eq!(claims.iss, "https://gatehouse.test");
        assert_eq!(claims.aud, "members");
        assert_eq!(claims.roles, vec!["free-user", "premium-monthly"]);
        assert_eq!(claims.permissions, vec!["read:premium-content"]);
        assert_eq!(claims.partner.as_deref(), Some("NSSA"));
        assert_eq!(claims.exp - claims.iat, 3600);
        let header = jsonwebtoken::decode_header(&session.token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_fail() {
        let keys = keys(NEW);
        let now = Utc::now();
        let token = keys.issue(&subject(), now).unwrap().token;
        assert_eq!(
            keys.verify(&token, now + Duration::hours(1)),
            Err(SessionError::Expired)
        );
        // Flip one character of the payload.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let payload = parts[1].clone();
        let flipped = if payload.ends_with('A') { 'B' } else { 'A' };
        parts[1] = format!("{}{}", &payload[..payload.len() - 1], flipped);
        assert_eq!(
            keys.verify(&parts.join("."), now),
            Err(SessionError::Invalid)
        );
        // Signed by a key with the same kid but another seed.
        let impostor = self::keys("2026-11:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
        let forged = impostor.issue(&subject(), now).unwrap().token;
        assert_eq!(keys.verify(&forged, now), Err(SessionError::Invalid));
        assert_eq!(keys.verify("not.a.jwt", now), Err(SessionError::Malformed));
        assert_eq!(keys.verify("", now), Err(SessionError::Malformed));
    }

    #[test]
    fn wrong_audience_or_issuer_fails() {
        let now = Utc::now();
        let other = SessionKeys::parse(
            &Secret::new(NEW),
            "https://evil.test",
            "members",
            Duration::hours(1),
        )
        .unwrap();
        let token = other.issue(&subject(), now).unwrap().token;
        assert_eq!(keys(NEW).verify(&token, now), Err(SessionError::Invalid));
        let other = SessionKeys::parse(
            &Secret::new(NEW),
            "https://gatehouse.test",
            "admins",
            Duration::hours(1),
        )
        .unwrap();
        let token = other.issue(&subject(), now).unwrap().token;
        assert_eq!(keys(NEW).verify(&token, now), Err(SessionError::Invalid));
    }

    #[test]
    fn rotation_signs_with_the_newest_and_accepts_the_older() {
        let now = Utc::now();
        let before = keys(OLD);
        let old_session = before.issue(&subject(), now).unwrap();
        let during = keys(&format!("{OLD},{NEW}"));
        assert_eq!(during.issue(&subject(), now).unwrap().kid, "2026-11");
        assert!(during.verify(&old_session.token, now).is_ok());
        let jwks = during.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["2026-11", "2026-10"]);
        // Once the old key is dropped, its sessions stop verifying.
        let after = keys(NEW);
        assert_eq!(
            after.verify(&old_session.token, now),
            Err(SessionError::UnknownKey)
        );
    }

    #[test]
    fn jwks_holds_only_public_ed25519_parts() {
        let jwks = keys(NEW).jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert!(
            key.get("d").is_none(),
            "private part must never be published"
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }

    #[test]
    fn bad_key_lists_are_refused_with_the_reason() {
        let parse = |raw: &str| {
            SessionKeys::parse(&Secret::new(raw), "i", "a", Duration::hours(1)).unwrap_err()
        };
        assert_eq!(parse(""), SessionKeyError::Empty);
        assert_eq!(parse("nokid"), SessionKeyError::Shape { position: 1 });
        assert_eq!(parse("k:short"), SessionKeyError::Seed { kid: "k".into() });
        assert_eq!(
            parse(&format!("{NEW},{NEW}")),
            SessionKeyError::DuplicateKid("2026-11".into())
        );
    }

    #[test]
    fn other_algorithms_and_missing_kids_are_refused() {
        let keys = keys(NEW);
        let now = Utc::now();
        let token = keys.issue(&subject(), now).unwrap().token;
        let payload = token.split('.').nth(1).unwrap().to_string();
        let header = |json: &str| URL_SAFE_NO_PAD.encode(json);
        // alg "none" with no signature.
        let none = format!("{}.{payload}.", header(r#"{"alg":"none","kid":"2026-11"}"#));
        assert!(keys.verify(&none, now).is_err());
        // HS256 keyed with the public key (the classic confusion attack).
        let x = keys.jwks()["keys"][0]["x"].as_str().unwrap().to_string();
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("2026-11".into());
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
        let confused =
            jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
        assert_eq!(keys.verify(&confused, now), Err(SessionError::Invalid));
        // A correct signature but no kid in the header.
        let signer = SessionKey::from_seed(
            "2026-11",
            &URL_SAFE_NO_PAD
                .decode(NEW.split(':').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            signer.signing.as_ref().unwrap(),
        )
        .unwrap();
        assert_eq!(keys.verify(&no_kid, now), Err(SessionError::UnknownKey));
    }

    #[test]
    fn a_published_key_can_wait_before_it_signs() {
        let both = keys(&format!("{OLD},{NEW}"))
            .signing_with("2026-10")
            .unwrap();
        assert_eq!(both.issue(&subject(), Utc::now()).unwrap().kid, "2026-10");
        assert_eq!(both.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            keys(NEW).signing_with("nope").unwrap_err(),
            SessionKeyError::UnknownSigningKid("nope".into())
        );
    }

    #[test]
    fn cookie_is_secure_httponly_lax() {
        let cookie = session_cookie("abc", Duration::hours(1));
        assert_eq!(
            cookie,
            "gatehouse_session=abc; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn generated_seeds_parse() {
        let list = format!("a:{},b:{}", generate_seed(), generate_seed());
        assert_eq!(keys(&list).jwks()["keys"].as_array().unwrap().len(), 2);
    }
}
