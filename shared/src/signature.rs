//! HMAC helpers and constant-time comparisons. Every check runs over the exact
//! received bytes.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    hex::encode(hmac_sha256(key, message))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How long a signature header (or a set of URL tokens) may be, and how many
/// entries it may hold. Above either, the request is refused before any MAC,
/// so a crafted header cannot buy more work than an honest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

/// A hex digest of exactly `N` bytes, or `None` (which then matches nothing).
pub fn decode_hex_digest<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut digest = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut digest).ok()?;
    Some(digest)
}

/// Constant-time check of a hex HMAC-SHA256 signature over `message`.
/// Accepts upper- or lowercase hex; anything that is not 64 hex digits fails.
pub fn verify_hmac_sha256_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let expected = hmac_sha256(key, message);
    given.len() == expected.len() && bool::from(expected.ct_eq(&given))
}

/// Constant-time check of a hex HMAC-SHA512 signature over `message` (Paystack).
pub fn verify_hmac_sha512_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = match Hmac::<Sha512>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    let expected = mac.finalize().into_bytes();
    given.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&given))
}

pub fn hmac_sha512_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = match Hmac::<Sha512>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two secrets of possibly different lengths: both are
/// hashed first so the comparison time does not reveal the length or a prefix.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    let ha = Sha256::digest(a);
    let hb = Sha256::digest(b);
    bool::from(ha.ct_eq(&hb))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2.
    #[test]
    fn rfc4231_vector() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_and_rejects() {
        let sig = hmac_sha256_hex(b"k", b"body");
        assert!(verify_hmac_sha256_hex(b"k", b"body", &sig));
        assert!(verify_hmac_sha256_hex(b"k", b"body", &sig.to_uppercase()));
        assert!(!verify_hmac_sha256_hex(b"k", b"body!", &sig));
        assert!(!verify_hmac_sha256_hex(b"other", b"body", &sig));
        assert!(!verify_hmac_sha256_hex(b"k", b"body", "zz"));
        assert!(!verify_hmac_sha256_hex(b"k", b"body", &sig[..10]));
    }

    // RFC 4231 test case 2, HMAC-SHA-512.
    #[test]
    fn rfc4231_sha512_vector() {
        let expected = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737";
        assert_eq!(
            hmac_sha512_hex(b"Jefe", b"what do ya want for nothing?"),
            expected
        );
        assert!(verify_hmac_sha512_hex(
            b"Jefe",
            b"what do ya want for nothing?",
            expected
        ));
        assert!(!verify_hmac_sha512_hex(
            b"Jefe",
            b"what do ya want for nothing!",
            expected
        ));
    }

    #[test]
    fn hex_digests_decode_only_at_their_length() {
        let sig = hmac_sha256(b"k", b"body");
        assert_eq!(decode_hex_digest::<32>(&hex::encode(sig)), Some(sig));
        assert_eq!(
            decode_hex_digest::<32>(&hex::encode(sig).to_uppercase()),
            Some(sig)
        );
        assert_eq!(decode_hex_digest::<32>(&hex::encode(&sig[..31])), None);
        assert_eq!(decode_hex_digest::<32>("zz"), None);
    }

    #[test]
    fn secrets_equal_handles_lengths() {
        assert!(secrets_equal(b"token", b"token"));
        assert!(!secrets_equal(b"token", b"token2"));
        assert!(!secrets_equal(b"", b"x"));
    }
}
