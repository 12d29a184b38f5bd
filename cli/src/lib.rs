//! `gatehouse-admin`: signs admin API calls with SigV4 (service `execute-api`)
//! from the standard AWS credential chain, or from the local stack's dev
//! credentials with `--local`, and prints tables or JSON.

pub mod commands;
pub mod table;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("request failed: {0}")]
    Http(String),
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Config(String),
}

/// Signs a request; returns the headers to add (Authorization, X-Amz-Date,
/// X-Amz-Security-Token for temporary credentials).
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, CliError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| CliError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A signed client for one Gatehouse API.
pub struct AdminClient {
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    region: String,
}

/// What the API answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl AdminClient {
    pub fn new(base_url: &str, credentials: Credentials, region: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials,
            region: region.to_string(),
        }
    }

    /// Sends one signed request. Mutating calls carry an `Idempotency-Key`.
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let raw = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key".into(), key.to_string()));
        }
        let signed = sign_request(
            method,
            &url,
            &headers,
            &raw,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        )?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut request = self.http.request(method, &url).body(raw);
        for (k, v) in headers.iter().chain(signed.iter()) {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Http(e.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }
}

/// A fresh idempotency key for one mutating command.
pub fn new_idempotency_key() -> String {
    format!("cli-{}", hex::encode(rand::random::<[u8; 16]>()))
}
