//! Sample events in `events/`: re-signing for `make invoke`, since signatures
//! and tokens must match the local secrets.

use serde_json::Value;

/// The local secrets a sample is re-signed with.
pub struct SigningSecrets<'a> {
    pub kajabi: &'a str,
    pub kajabi_url_token: Option<&'a str>,
    pub stripe: Option<&'a str>,
    pub paystack: Option<&'a str>,
    /// Unix seconds for Stripe's `t=` (its tolerance makes stale files fail).
    pub now: i64,
}

/// Re-signs an API Gateway v2 sample: a present `x-kajabi-signature` or
/// `stripe-signature` header is recomputed over the body, and a `token` query
/// parameter gets the first Kajabi URL token.
pub fn resign(mut event: Value, secrets: &SigningSecrets<'_>) -> Value {
    let body = event["body"].as_str().unwrap_or_default().to_string();
    if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
        if headers.contains_key("x-kajabi-signature") {
            let sig =
                gatehouse::signature::hmac_sha256_hex(secrets.kajabi.as_bytes(), body.as_bytes());
            headers.insert("x-kajabi-signature".into(), Value::String(sig));
        }
        if let (true, Some(secret)) = (
            headers.contains_key("x-paystack-signature"),
            secrets.paystack,
        ) {
            let sig = gatehouse::signature::hmac_sha512_hex(secret.as_bytes(), body.as_bytes());
            headers.insert("x-paystack-signature".into(), Value::String(sig));
        }
        if let (true, Some(secret)) = (headers.contains_key("stripe-signature"), secrets.stripe) {
            let signed = format!("{}.{body}", secrets.now);
            let sig = gatehouse::signature::hmac_sha256_hex(secret.as_bytes(), signed.as_bytes());
            headers.insert(
                "stripe-signature".into(),
                Value::String(format!("t={},v1={sig}", secrets.now)),
            );
        }
    }
    let url_token = secrets.kajabi_url_token;
    let has_token = event
        .get("rawQueryString")
        .and_then(Value::as_str)
        .is_some_and(|q| q.contains("token="));
    if let (true, Some(token)) = (has_token, url_token) {
        event["rawQueryString"] = Value::String(format!("token={token}"));
        event["queryStringParameters"] = serde_json::json!({ "token": token });
    }
    event
}

/// `sign-event IN OUT` with the secrets from the environment (`infra/local.env`).
pub fn sign_event_file(input: &str, output: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let event: Value = serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let secret = std::env::var("KAJABI_WEBHOOK_SECRET").unwrap_or_default();
    let tokens = std::env::var("KAJABI_URL_TOKENS").unwrap_or_default();
    let stripe = std::env::var("STRIPE_WEBHOOK_SECRETS").unwrap_or_default();
    let paystack = std::env::var("PAYSTACK_SECRET_KEY").ok();
    let secrets = SigningSecrets {
        kajabi: &secret,
        kajabi_url_token: tokens.split(',').map(str::trim).find(|t| !t.is_empty()),
        stripe: stripe.split(',').map(str::trim).find(|t| !t.is_empty()),
        paystack: paystack.as_deref(),
        now: chrono::Utc::now().timestamp(),
    };
    let signed = resign(event, &secrets);
    if let Some(parent) = std::path::Path::new(output).parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let pretty = serde_json::to_string_pretty(&signed).map_err(|e| e.to_string())?;
    std::fs::write(output, pretty).map_err(|e| format!("{output}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{parse, workspace_root};
    use gatehouse::config::Secret;
    use gatehouse::http::ApiGatewayV2Request;
    use gatehouse::providers::kajabi::{authenticate, KajabiAction, KajabiEvent};

    fn files(dir: &str) -> Vec<std::path::PathBuf> {
        let mut out: Vec<_> = std::fs::read_dir(workspace_root().join("events").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_webhook_sample_authenticates_once_resigned_and_parses() {
        let env =
            parse(&std::fs::read_to_string(workspace_root().join("infra/local.env")).unwrap());
        let secret = Secret::new(env["KAJABI_WEBHOOK_SECRET"].clone());
        let tokens: Vec<Secret> = env["KAJABI_URL_TOKENS"]
            .split(',')
            .map(Secret::new)
            .collect();
        let samples = files("kajabi-webhook");
        assert!(samples.len() >= 7);
        for path in samples {
            let raw: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let signed = resign(
                raw,
                &SigningSecrets {
                    kajabi: secret.expose(),
                    kajabi_url_token: Some(tokens[0].expose()),
                    stripe: None,
                    paystack: None,
                    now: 0,
                },
            );
            let request = serde_json::from_value::<ApiGatewayV2Request>(signed)
                .unwrap()
                .into_api_request()
                .unwrap();
            let given = request.query_values("token");
            assert!(
                authenticate(
                    request.header("x-kajabi-signature"),
                    &given,
                    &request.body,
                    Some(&secret),
                    &tokens
                )
                .is_ok(),
                "{} does not authenticate",
                path.display()
            );
            assert!(request.has_json_content_type());
            let event = KajabiEvent::from_json(&serde_json::from_slice(&request.body).unwrap());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                event.action == KajabiAction::Unsupported,
                name.contains("ignored"),
                "{name}"
            );
        }
    }

    #[test]
    fn every_stripe_sample_verifies_once_resigned_and_parses() {
        use gatehouse::providers::stripe::{verify, StripeAction, StripeEvent};
        let env =
            parse(&std::fs::read_to_string(workspace_root().join("infra/local.env")).unwrap());
        let secret = env["STRIPE_WEBHOOK_SECRETS"]
            .split(',')
            .next()
            .unwrap()
            .to_string();
        let now = chrono::Utc::now().timestamp();
        let samples = files("stripe-webhook");
        assert!(samples.len() >= 8);
        for path in samples {
            let raw: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let signed = resign(
                raw,
                &SigningSecrets {
                    kajabi: "",
                    kajabi_url_token: None,
                    stripe: Some(&secret),
                    paystack: None,
                    now,
                },
            );
            let request = serde_json::from_value::<ApiGatewayV2Request>(signed)
                .unwrap()
                .into_api_request()
                .unwrap();
            let verified = verify(
                request.header("stripe-signature"),
                &request.body,
                &[Secret::new(secret.clone())],
                300,
                now,
            );
            assert!(verified.is_ok(), "{}: {verified:?}", path.display());
            let event = StripeEvent::from_json(&serde_json::from_slice(&request.body).unwrap());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                event.action == StripeAction::Unsupported,
                name.contains("ignored"),
                "{name}"
            );
        }
    }

    #[test]
    fn every_paystack_sample_verifies_once_resigned_and_parses() {
        use gatehouse::providers::paystack::{authenticate, PaystackAction, PaystackEvent};
        let env =
            parse(&std::fs::read_to_string(workspace_root().join("infra/local.env")).unwrap());
        let secret = env["PAYSTACK_SECRET_KEY"].clone();
        let samples = files("paystack-webhook");
        assert!(samples.len() >= 8);
        for path in samples {
            let raw: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let signed = resign(
                raw,
                &SigningSecrets {
                    kajabi: "",
                    kajabi_url_token: None,
                    stripe: None,
                    paystack: Some(&secret),
                    now: 0,
                },
            );
            let request = serde_json::from_value::<ApiGatewayV2Request>(signed)
                .unwrap()
                .into_api_request()
                .unwrap();
            let verified = authenticate(
                request.header("x-paystack-signature"),
                &request.body,
                Some(&Secret::new(secret.clone())),
            );
            assert!(verified.is_ok(), "{}: {verified:?}", path.display());
            let event = PaystackEvent::from_json(&serde_json::from_slice(&request.body).unwrap());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                event.action == PaystackAction::Unsupported,
                name.contains("ignored"),
                "{name}"
            );
        }
    }

    #[test]
    fn other_samples_have_their_source_shapes() {
        for dir in ["setup-password", "resend-setup-email"] {
            for path in files(dir) {
                let raw: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let request = serde_json::from_value::<ApiGatewayV2Request>(raw)
                    .unwrap()
                    .into_api_request()
                    .unwrap();
                assert_eq!(request.method, "POST");
                assert!(serde_json::from_slice::<Value>(&request.body).is_ok());
            }
        }
        for path in files("email-sender") {
            let event: email_sender::SqsEvent =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(event.records.len(), 1);
        }
        for path in files("outbox-sweeper")
            .into_iter()
            .chain(files("subscription-sweeper"))
            .chain(files("completions-digest"))
        {
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(event["detail-type"], "Scheduled Event");
        }
    }
}
