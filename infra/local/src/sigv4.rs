//! SigV4 verification for the local stack's IAM-authorized routes, standing in
//! for API Gateway's `AWS_IAM` authorization. A request that fails any check is
//! answered 403 before a function runs; one that passes gets the same
//! `requestContext.authorizer.iam` fields API Gateway would fill.
//!
//! Canonical request as AWS documents it for non-S3 services: the path is
//! URI-encoded again as sent (double encoding), the query is decoded,
//! re-encoded and sorted, headers are lowercased and trimmed, and the payload
//! hash is always recomputed from the received body.

use chrono::{DateTime, NaiveDateTime, Utc};
use gatehouse::http::IamIdentity;
use gatehouse::signature::{hmac_sha256, secrets_equal, sha256_hex};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How far the signing time may be from now.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
pub const SERVICE: &str = "execute-api";

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// The dev credentials (from `infra/local.env`) and the principal they stand for.
#[derive(Clone)]
pub struct AdminCredentials {
    pub access_key_id: String,
    pub secret_access_key: gatehouse::config::Secret,
    pub principal_arn: String,
    pub region: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("principal_arn", &self.principal_arn)
            .field("region", &self.region)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("missing Authorization header: admin routes need a SigV4-signed request")]
    Missing,
    #[error("Authorization is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature")]
    Malformed,
    #[error("unknown access key")]
    UnknownKey,
    #[error("credential scope must be <date>/{0}/execute-api/aws4_request")]
    Scope(String),
    #[error("missing or malformed X-Amz-Date")]
    Date,
    #[error("request time is more than 5 minutes away from the server's")]
    Skewed,
    #[error("host and x-amz-date must be signed")]
    UnsignedHeaders,
    #[error("a signed header is missing from the request")]
    MissingSignedHeader,
    #[error("x-amz-content-sha256 does not match the body")]
    BodyHash,
    #[error("signature does not match")]
    Mismatch,
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let rest = value
        .trim()
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or(SigV4Error::Malformed)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SigV4Error::Malformed)?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed)?;
    let mut scope = credential.split('/');
    let (access_key, date, region, service, terminal) = (
        scope.next().ok_or(SigV4Error::Malformed)?,
        scope.next().ok_or(SigV4Error::Malformed)?,
        scope.next().ok_or(SigV4Error::Malformed)?,
        scope.next().ok_or(SigV4Error::Malformed)?,
        scope.next().ok_or(SigV4Error::Malformed)?,
    );
    if terminal != "aws4_request" || scope.next().is_some() {
        return Err(SigV4Error::Malformed);
    }
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.ok_or(SigV4Error::Malformed)?.split(';').collect(),
        signature: signature.ok_or(SigV4Error::Malformed)?,
    })
}

fn canonical_query(raw: &str) -> String {
    // '+' means a space, as the functions read queries (`http::parse_query`): a
    // signature must not cover `a%2Bb` and also pass for `a+b`, which they read as `a b`.
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                utf8_percent_encode(&decode(k), STRICT).to_string(),
                utf8_percent_encode(&decode(v), STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a verified request carries.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as received (still percent-encoded).
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// Lowercase names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl AdminCredentials {
    /// Verifies the request's SigV4 signature and returns the IAM identity.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<IamIdentity, SigV4Error> {
        let header = |name: &str| -> Vec<&str> {
            request
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let auth_value = header("authorization");
        let auth = parse_authorization(auth_value.first().ok_or(SigV4Error::Missing)?)?;
        if !secrets_equal(auth.access_key.as_bytes(), self.access_key_id.as_bytes()) {
            return Err(SigV4Error::UnknownKey);
        }
        if auth.region != self.region || auth.service != SERVICE {
            return Err(SigV4Error::Scope(self.region.clone()));
        }
        let amz_date = *header("x-amz-date").first().ok_or(SigV4Error::Date)?;
        let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| SigV4Error::Date)?
            .and_utc();
        if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
            return Err(SigV4Error::Scope(self.region.clone()));
        }
        if (now - signed_at).num_seconds().abs() > MAX_CLOCK_SKEW_SECS {
            return Err(SigV4Error::Skewed);
        }
        if !auth.signed_headers.contains(&"host") || !auth.signed_headers.contains(&"x-amz-date") {
            return Err(SigV4Error::UnsignedHeaders);
        }
        let body_hash = sha256_hex(request.body);
        if let Some(claimed) = header("x-amz-content-sha256").first() {
            if *claimed != "UNSIGNED-PAYLOAD" && !claimed.eq_ignore_ascii_case(&body_hash) {
                return Err(SigV4Error::BodyHash);
            }
        }
        let mut canonical_headers = String::new();
        for name in &auth.signed_headers {
            let values = header(name);
            if values.is_empty() {
                return Err(SigV4Error::MissingSignedHeader);
            }
            canonical_headers.push_str(&format!("{name}:{}\n", canonical_header_value(&values)));
        }
        let canonical_request = [
            request.method.to_ascii_uppercase(),
            utf8_percent_encode(request.raw_path, PATH).to_string(),
            canonical_query(request.raw_query),
            canonical_headers,
            auth.signed_headers.join(";"),
            body_hash,
        ]
        .join("\n");
        let scope = format!("{}/{}/{SERVICE}/aws4_request", auth.date, self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let key = [auth.date, self.region.as_str(), SERVICE, "aws4_request"]
            .iter()
            .fold(
                format!("AWS4{}", self.secret_access_key.expose()).into_bytes(),
                |key, part| hmac_sha256(&key, part.as_bytes()).to_vec(),
            );
        let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        if !secrets_equal(expected.as_bytes(), auth.signature.as_bytes()) {
            return Err(SigV4Error::Mismatch);
        }
        let account = self
            .principal_arn
            .split(':')
            .nth(4)
            .unwrap_or_default()
            .to_string();
        Ok(IamIdentity {
            access_key: Some(self.access_key_id.clone()),
            account_id: Some(account.clone()),
            caller_id: Some(format!("AIDALOCAL{}", account)),
            principal_org_id: None,
            user_arn: Some(self.principal_arn.clone()),
            user_id: Some(format!("AIDALOCAL{}", account)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> AdminCredentials {
        AdminCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: gatehouse::config::Secret::new(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            principal_arn: "arn:aws:iam::123456789012:user/admin".into(),
            region: "us-east-1".into(),
        }
    }

    /// A request signed by hand with the published algorithm, then checked:
    /// the signature must bind method, path, query, headers and body.
    fn sign(
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        at: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
        let date = &amz_date[..8];
        let canonical = [
            method.to_string(),
            path.to_string(),
            canonical_query(query),
            format!("host:example.test\nx-amz-date:{amz_date}\n"),
            "host;x-amz-date".to_string(),
            sha256_hex(body),
        ]
        .join("\n");
        let scope = format!("{date}/us-east-1/execute-api/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(canonical.as_bytes())
        );
        let key = [date, "us-east-1", "execute-api", "aws4_request"]
            .iter()
            .fold(
                b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
                |k, p| hmac_sha256(&k, p.as_bytes()).to_vec(),
            );
        let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
        vec![
            ("host".into(), "example.test".into()),
            ("x-amz-date".into(), amz_date),
            (
                "authorization".into(),
                format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}"),
            ),
        ]
    }

    fn check(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<IamIdentity, SigV4Error> {
        creds().verify(
            &SignedRequest {
                method,
                raw_path: path,
                raw_query: query,
                headers,
                body,
            },
            now,
        )
    }

    #[test]
    fn binds_method_path_query_and_body() {
        let now = Utc::now();
        let headers = sign("POST", "/admin/users/u1/roles", "a=1&b=2", b"{}", now);
        let identity = check(
            "POST",
            "/admin/users/u1/roles",
            "b=2&a=1",
            &headers,
            b"{}",
            now,
        )
        .unwrap();
        assert_eq!(
            identity.user_arn.as_deref(),
            Some("arn:aws:iam::123456789012:user/admin")
        );
        assert_eq!(identity.account_id.as_deref(), Some("123456789012"));
        assert_eq!(
            check(
                "PUT",
                "/admin/users/u1/roles",
                "a=1&b=2",
                &headers,
                b"{}",
                now
            ),
            Err(SigV4Error::Mismatch)
        );
        assert_eq!(
            check(
                "POST",
                "/admin/users/u2/roles",
                "a=1&b=2",
                &headers,
                b"{}",
                now
            ),
            Err(SigV4Error::Mismatch)
        );
        assert_eq!(
            check(
                "POST",
                "/admin/users/u1/roles",
                "a=1&b=3",
                &headers,
                b"{}",
                now
            ),
            Err(SigV4Error::Mismatch)
        );
        assert_eq!(
            check(
                "POST",
                "/admin/users/u1/roles",
                "a=1&b=2",
                &headers,
                b"{ }",
                now
            ),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn a_plus_is_a_space_to_the_signature_as_to_the_functions() {
        let now = Utc::now();
        let plus = sign("GET", "/admin/users", "email_prefix=a%2Bb", b"", now);
        assert!(check("GET", "/admin/users", "email_prefix=a%2Bb", &plus, b"", now).is_ok());
        assert_eq!(
            check("GET", "/admin/users", "email_prefix=a+b", &plus, b"", now),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn refuses_skew_malformed_and_unsigned_hosts() {
        let now = Utc::now();
        let old = sign(
            "GET",
            "/admin/users",
            "",
            b"",
            now - chrono::Duration::seconds(301),
        );
        assert_eq!(
            check("GET", "/admin/users", "", &old, b"", now),
            Err(SigV4Error::Skewed)
        );
        let fine = sign(
            "GET",
            "/admin/users",
            "",
            b"",
            now - chrono::Duration::seconds(299),
        );
        assert!(check("GET", "/admin/users", "", &fine, b"", now).is_ok());
        let mut no_host = fine.clone();
        no_host.retain(|(k, _)| k != "host");
        assert_eq!(
            check("GET", "/admin/users", "", &no_host, b"", now),
            Err(SigV4Error::MissingSignedHeader)
        );
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
        ] {
            let mut headers = fine.clone();
            headers.retain(|(k, _)| k != "authorization");
            headers.push(("authorization".into(), bad.into()));
            assert!(
                check("GET", "/admin/users", "", &headers, b"", now).is_err(),
                "{bad}"
            );
        }
        let mut claimed = fine.clone();
        claimed.push(("x-amz-content-sha256".into(), sha256_hex(b"other")));
        assert_eq!(
            check("GET", "/admin/users", "", &claimed, b"", now),
            Err(SigV4Error::BodyHash)
        );
    }
}
