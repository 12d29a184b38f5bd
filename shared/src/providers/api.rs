//! One HTTP client stack for provider APIs: reqwest with rustls, a timeout per
//! attempt, and bounded retries with backoff on 429 and 5xx that honour
//! `Retry-After`. Base URLs are configurable so tests point them at a local server.

use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{provider} answered 404 for {path}")]
    NotFound {
        provider: &'static str,
        path: String,
    },
    #[error("{provider} answered {status} for {path}")]
    Status {
        provider: &'static str,
        path: String,
        status: u16,
    },
    #[error("{provider} could not be reached: {detail}")]
    Unreachable {
        provider: &'static str,
        detail: String,
    },
    #[error("{provider} answered with a body that is not JSON")]
    Body { provider: &'static str },
}

impl ApiError {
    /// Worth answering 5xx for, so the provider's own retry comes back later.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            ApiError::Unreachable { .. } => true,
            ApiError::NotFound { .. } | ApiError::Body { .. } => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiClient {
    provider: &'static str,
    http: reqwest::Client,
    base_url: String,
    key: Secret,
    max_attempts: u32,
    /// Longest `Retry-After` honoured; the whole call must fit well inside API Gateway's 30 s.
    max_wait: Duration,
}

impl ApiClient {
    pub fn new(
        provider: &'static str,
        base_url: &str,
        key: Secret,
        timeout: Duration,
        max_attempts: u32,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ApiError::Unreachable {
                provider,
                detail: e.to_string(),
            })?;
        Ok(Self {
            provider,
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            max_attempts: max_attempts.max(1),
            max_wait: Duration::from_secs(5),
        })
    }

    fn backoff(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        let asked = retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        asked
            .unwrap_or_else(|| Duration::from_millis(200 * (1u64 << attempt.min(4))))
            .min(self.max_wait)
    }

    /// GET with the secret key as a bearer token; JSON back.
    pub async fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.max_attempts;
            let result = self
                .http
                .get(&url)
                .bearer_auth(self.key.expose())
                .send()
                .await;
            let response = match result {
                Ok(r) => r,
                Err(e) if !last => {
                    tracing::warn!(provider = self.provider, attempt, error = %e, "provider call failed; retrying");
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                    continue;
                }
                Err(e) => {
                    return Err(ApiError::Unreachable {
                        provider: self.provider,
                        detail: e.to_string(),
                    })
                }
            };
            let status = response.status().as_u16();
            if status == 429 || status >= 500 {
                if !last {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    tracing::warn!(
                        provider = self.provider,
                        attempt,
                        status,
                        "provider busy; retrying"
                    );
                    tokio::time::sleep(self.backoff(attempt, retry_after.as_deref())).await;
                    continue;
                }
                return Err(ApiError::Status {
                    provider: self.provider,
                    path: path.to_string(),
                    status,
                });
            }
            if status == 404 {
                return Err(ApiError::NotFound {
                    provider: self.provider,
                    path: path.to_string(),
                });
            }
            if !(200..300).contains(&status) {
                return Err(ApiError::Status {
                    provider: self.provider,
                    path: path.to_string(),
                    status,
                });
            }
            return response.json().await.map_err(|_| ApiError::Body {
                provider: self.provider,
            });
        }
    }
}

/// Stripe's API: only what Gatehouse reads.
#[derive(Clone, Debug)]
pub struct StripeApi {
    client: ApiClient,
}

impl StripeApi {
    pub fn new(client: ApiClient) -> Self {
        Self { client }
    }

    /// Price and product ids of a Checkout Session's line items
    /// (`GET /v1/checkout/sessions/{id}/line_items`).
    pub async fn checkout_line_item_products(
        &self,
        session_id: &str,
    ) -> Result<Vec<String>, ApiError> {
        let encoded: String =
            percent_encoding::utf8_percent_encode(session_id, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let list = self
            .client
            .get_json(&format!("/v1/checkout/sessions/{encoded}/line_items"))
            .await?;
        let mut ids = Vec::new();
        if let Some(Value::Array(items)) = list.get("data") {
            for item in items {
                if let Some(price) = item.get("price") {
                    ids.extend(price.get("id").and_then(Value::as_str).map(str::to_string));
                    match price.get("product") {
                        Some(Value::String(p)) => ids.push(p.clone()),
                        Some(Value::Object(o)) => {
                            ids.extend(o.get("id").and_then(Value::as_str).map(str::to_string))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(ids)
    }
}

/// What Paystack's `GET /transaction/verify/:reference` says of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCharge {
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// Paystack's API: only what Gatehouse reads.
#[derive(Clone, Debug)]
pub struct PaystackApi {
    client: ApiClient,
}

impl PaystackApi {
    pub fn new(client: ApiClient) -> Self {
        Self { client }
    }

    pub async fn verify_transaction(&self, reference: &str) -> Result<VerifiedCharge, ApiError> {
        let encoded: String =
            percent_encoding::utf8_percent_encode(reference, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let body = self
            .client
            .get_json(&format!("/transaction/verify/{encoded}"))
            .await?;
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        Ok(VerifiedCharge {
            status: data
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            amount: data.get("amount").and_then(Value::as_i64),
            currency: data
                .get("currency")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honours_retry_after_within_a_cap() {
        let client = ApiClient::new(
            "stripe",
            "http://127.0.0.1:9/",
            Secret::new("sk"),
            Duration::from_secs(1),
            3,
        )
        .unwrap();
        assert_eq!(client.backoff(1, Some("2")), Duration::from_secs(2));
        assert_eq!(client.backoff(1, Some("120")), Duration::from_secs(5));
        assert_eq!(client.backoff(1, None), Duration::from_millis(400));
        assert_eq!(client.backoff(2, Some("soon")), Duration::from_millis(800));
    }

    #[test]
    fn transient_errors() {
        let status = |s| ApiError::Status {
            provider: "stripe",
            path: "/".into(),
            status: s,
        };
        assert!(status(429).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(401).is_transient());
        assert!(!ApiError::NotFound {
            provider: "stripe",
            path: "/".into()
        }
        .is_transient());
    }
}
