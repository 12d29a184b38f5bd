//! One HTTP client stack for provider APIs: reqwest with rustls, a timeout per
//! attempt, and bounded retries with backoff on 429 and 5xx that honour
//! `Retry-After`. Base URLs are configurable so tests point them at a local server.

use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;
use crate::domain::SubscriptionState;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{provider} answered 404 for {path}")]
    NotFound {
        provider: &'static str,
        path: String,
    },
    #[error("{provider} answered {status} for {path}{}", detail_suffix(.detail))]
    Status {
        provider: &'static str,
        path: String,
        status: u16,
        /// What the provider's error body says (a JSON:API `errors[0]`
        /// detail or title), cut short; empty when it says nothing.
        detail: String,
    },
    #[error("{provider} could not be reached: {detail}")]
    Unreachable {
        provider: &'static str,
        detail: String,
    },
    #[error("{provider} answered with a body that is not JSON")]
    Body { provider: &'static str },
    #[error("{provider} listed more {what} than Gatehouse reads ({limit}); nothing was changed")]
    TooMany {
        provider: &'static str,
        what: &'static str,
        limit: usize,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// The error a provider's body names: JSON:API `errors[0].detail` or
/// `.title`, else `error_description`, `message` or `error`; 200 characters.
fn error_detail(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let first = &json["errors"][0];
    let detail = [
        &first["detail"],
        &first["title"],
        &json["error_description"],
        &json["error"]["message"],
        &json["message"],
        &json["error"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.trim().is_empty()))
    .map(|s| s.chars().take(200).collect::<String>())
    .unwrap_or_default();
    // Providers echo parameters in their messages (an address Gatehouse sent).
    crate::domain::redact_emails(&detail)
}

impl ApiError {
    /// The provider's HTTP status, when it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// Worth answering 5xx for, so the provider's own retry comes back later.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            ApiError::Unreachable { .. } => true,
            ApiError::NotFound { .. } | ApiError::Body { .. } | ApiError::TooMany { .. } => false,
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
        self.send(path, || self.http.get(&url).bearer_auth(self.key.expose()))
            .await
    }

    /// GET with another bearer token (an OAuth access token).
    pub async fn get_json_as(&self, path: &str, token: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || self.http.get(&url).bearer_auth(token))
            .await
    }

    /// POST JSON with an OAuth access token; JSON back.
    pub async fn post_json_as(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || self.http.post(&url).bearer_auth(token).json(body))
            .await
    }

    /// DELETE with an OAuth access token.
    pub async fn delete_as(&self, path: &str, token: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || self.http.delete(&url).bearer_auth(token))
            .await
    }

    /// POST a form with the secret key and an `Idempotency-Key` (Stripe):
    /// a retry with the same key is answered with the first attempt's result.
    pub async fn post_form_idempotent(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || {
            self.http
                .post(&url)
                .bearer_auth(self.key.expose())
                .header("idempotency-key", idempotency_key)
                .form(form)
        })
        .await
    }

    /// POST JSON with the secret key (Paystack).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || {
            self.http
                .post(&url)
                .bearer_auth(self.key.expose())
                .json(body)
        })
        .await
    }

    /// POST a form; JSON back (OAuth token requests).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base_url, path);
        self.send(path, || self.http.post(&url).form(form)).await
    }

    /// The same client, trying each call once: for a call that is not safe
    /// to repeat (a create whose first attempt may have landed).
    pub fn single_attempt(&self) -> Self {
        Self {
            max_attempts: 1,
            ..self.clone()
        }
    }

    /// The secret this client was built with (Kajabi's client secret).
    pub fn secret(&self) -> &Secret {
        &self.key
    }

    /// Sends with retries: 429 and 5xx back off (honouring `Retry-After` up to
    /// `max_wait`), 404 is its own error, other non-2xx fail at once.
    async fn send(
        &self,
        path: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let result = self.attempt_all(path, build).await;
        // A 404 is an answer (the object is not there), not an API error.
        if matches!(&result, Err(e) if !matches!(e, ApiError::NotFound { .. })) {
            crate::metrics::count(self.provider, "provider_api_errors");
        }
        result
    }

    async fn attempt_all(
        &self,
        path: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.max_attempts;
            let response = match build().send().await {
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
                    detail: String::new(),
                });
            }
            if status == 404 {
                return Err(ApiError::NotFound {
                    provider: self.provider,
                    path: path.to_string(),
                });
            }
            if !(200..300).contains(&status) {
                // Only the start of an error body is read: it is named, not kept.
                let mut body = Vec::new();
                let mut response = response;
                while let Ok(Some(chunk)) = response.chunk().await {
                    body.extend_from_slice(&chunk);
                    if body.len() > 16 * 1024 {
                        break;
                    }
                }
                return Err(ApiError::Status {
                    provider: self.provider,
                    path: path.to_string(),
                    status,
                    detail: error_detail(&body),
                });
            }
            // A 204 (a delete) has no body; any other success must be JSON.
            if status == 204 {
                return Ok(Value::Null);
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

/// A Checkout Session Stripe created: where to send the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCheckout {
    pub session_id: String,
    pub url: String,
}

impl StripeApi {
    /// `POST /v1/checkout/sessions` with `form`, under `idempotency_key`.
    pub async fn create_checkout_session(
        &self,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<CreatedCheckout, ApiError> {
        let path = "/v1/checkout/sessions";
        let body = self
            .client
            .post_form_idempotent(path, form, idempotency_key)
            .await?;
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_string);
        match (text("id"), text("url")) {
            (Some(session_id), Some(url)) => Ok(CreatedCheckout { session_id, url }),
            _ => Err(ApiError::Body { provider: "stripe" }),
        }
    }

    /// `GET /v1/checkout/sessions/{id}`: the session object as Stripe has it now.
    pub async fn checkout_session(&self, session_id: &str) -> Result<Value, ApiError> {
        self.client
            .get_json(&format!(
                "/v1/checkout/sessions/{}",
                path_segment(session_id)
            ))
            .await
    }
}

/// A transaction Paystack initialized: where to send the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializedTransaction {
    pub authorization_url: String,
    pub access_code: Option<String>,
}

impl PaystackApi {
    /// `POST /transaction/initialize`. Tried once: Paystack has no
    /// idempotency key, and a retry of one that landed is a duplicate reference.
    pub async fn initialize_transaction(
        &self,
        body: &Value,
    ) -> Result<InitializedTransaction, ApiError> {
        let answer = self
            .client
            .single_attempt()
            .post_json("/transaction/initialize", body)
            .await?;
        let data = answer.get("data").cloned().unwrap_or(Value::Null);
        match data.get("authorization_url").and_then(Value::as_str) {
            Some(url) => Ok(InitializedTransaction {
                authorization_url: url.to_string(),
                access_code: data
                    .get("access_code")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            None => Err(ApiError::Body {
                provider: "paystack",
            }),
        }
    }

    /// `GET /transaction/verify/:reference`: the transaction (`data`) as
    /// Paystack has it now; `None` when Paystack knows no such reference.
    pub async fn transaction(&self, reference: &str) -> Result<Option<Value>, ApiError> {
        match self
            .client
            .get_json(&format!("/transaction/verify/{}", path_segment(reference)))
            .await
        {
            Ok(body) if body.get("status").and_then(Value::as_bool) == Some(true) => {
                Ok(body.get("data").cloned())
            }
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(None),
            // Paystack answers an unknown reference with a 400 as well as a 404.
            Err(ApiError::Status { status: 400, .. }) => Ok(None),
            Err(e) => Err(e),
        }
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
            detail: String::new(),
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

/// What a provider says about one subscription now, in Gatehouse's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSubscription {
    /// The provider's own word for it (`active`, `non-renewing`, `deactivated`…).
    pub status: String,
    pub state: SubscriptionState,
    pub period_end: Option<chrono::DateTime<chrono::Utc>>,
    /// Product ids it covers (Stripe prices/products, Paystack plan code, Kajabi offers).
    pub products: Vec<String>,
}

fn path_segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl StripeApi {
    /// `GET /v1/customers/{id}`: the customer's email, `None` when it has
    /// none or the customer was deleted (`{"deleted": true}`).
    pub async fn customer_email(&self, id: &str) -> Result<Option<String>, ApiError> {
        let path = format!("/v1/customers/{}", path_segment(id));
        let customer = self.client.get_json(&path).await?;
        if customer.get("deleted").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        Ok(customer
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// `GET /v1/subscriptions/{id}` as the subscription object Stripe returns,
    /// the same shape a `customer.subscription.*` event carries.
    pub async fn subscription_object(&self, id: &str) -> Result<Value, ApiError> {
        let path = format!("/v1/subscriptions/{}", path_segment(id));
        self.client.get_json(&path).await
    }

    /// `GET /v1/subscriptions/{id}`, read with the same parser as webhook payloads.
    pub async fn subscription(&self, id: &str) -> Result<ProviderSubscription, ApiError> {
        let path = format!("/v1/subscriptions/{}", path_segment(id));
        let object = self.client.get_json(&path).await?;
        Self::read_subscription(object)
    }

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`: the member
    /// turns renewal off (or back on); Stripe's `customer.subscription.updated`
    /// then changes the stored state. Idempotent under `idempotency_key`.
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> Result<ProviderSubscription, ApiError> {
        let path = format!("/v1/subscriptions/{}", path_segment(id));
        let form = [("cancel_at_period_end".to_string(), cancel.to_string())];
        let object = self
            .client
            .post_form_idempotent(&path, &form, idempotency_key)
            .await?;
        Self::read_subscription(object)
    }

    /// `POST /v1/billing_portal/sessions`: a short-lived Billing Portal URL
    /// for the customer, returning to `return_url`.
    pub async fn billing_portal(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, ApiError> {
        let form = [
            ("customer".to_string(), customer.to_string()),
            ("return_url".to_string(), return_url.to_string()),
        ];
        let session = self
            .client
            .post_form_idempotent("/v1/billing_portal/sessions", &form, idempotency_key)
            .await?;
        session
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(ApiError::Body { provider: "stripe" })
    }

    fn read_subscription(object: Value) -> Result<ProviderSubscription, ApiError> {
        let wrapped = serde_json::json!({
            "id": "verify", "type": "customer.subscription.updated", "created": 0,
            "data": {"object": object}
        });
        match crate::providers::stripe::StripeEvent::from_json(&wrapped).action {
            crate::providers::stripe::StripeAction::Subscription {
                status,
                cancel_at_period_end,
                period_end,
                products,
                ..
            } => Ok(ProviderSubscription {
                state: crate::providers::stripe::map_status(&status, cancel_at_period_end)
                    .unwrap_or(SubscriptionState::Suspended),
                status: if cancel_at_period_end {
                    format!("{status} (cancel at period end)")
                } else {
                    status
                },
                period_end,
                products,
            }),
            _ => Err(ApiError::Body { provider: "stripe" }),
        }
    }
}

impl PaystackApi {
    /// The subscription's `email_token` (`GET /subscription/{code}`): what
    /// disable and enable need. Paystack's `subscription.create` payload
    /// does not carry it, so it is read when needed rather than kept.
    pub async fn subscription_token(&self, code: &str) -> Result<Option<String>, ApiError> {
        let path = format!("/subscription/{}", path_segment(code));
        let body = self.client.get_json(&path).await?;
        Ok(body["data"]["email_token"].as_str().map(str::to_string))
    }

    /// `POST /subscription/disable` (or `enable`) with the code and email token.
    pub async fn set_subscription_enabled(
        &self,
        code: &str,
        token: &str,
        enabled: bool,
    ) -> Result<(), ApiError> {
        let path = if enabled {
            "/subscription/enable"
        } else {
            "/subscription/disable"
        };
        let body = self
            .client
            .post_json(path, &serde_json::json!({"code": code, "token": token}))
            .await?;
        match body.get("status").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(ApiError::Status {
                provider: "paystack",
                path: path.to_string(),
                status: 200,
                detail: error_detail(body.to_string().as_bytes()),
            }),
        }
    }

    /// `GET /subscription/{code}/manage/link`: where the member updates their card.
    pub async fn manage_link(&self, code: &str) -> Result<String, ApiError> {
        let path = format!("/subscription/{}/manage/link", path_segment(code));
        let body = self.client.get_json(&path).await?;
        body["data"]["link"]
            .as_str()
            .map(str::to_string)
            .ok_or(ApiError::Body {
                provider: "paystack",
            })
    }

    /// `GET /subscription/{code}`.
    pub async fn subscription(&self, code: &str) -> Result<ProviderSubscription, ApiError> {
        let path = format!("/subscription/{}", path_segment(code));
        let body = self.client.get_json(&path).await?;
        let data = &body["data"];
        let status = data["status"]
            .as_str()
            .ok_or(ApiError::Body {
                provider: "paystack",
            })?
            .to_string();
        let state = match status.as_str() {
            "active" => SubscriptionState::Active,
            "non-renewing" => SubscriptionState::Canceled,
            "attention" => SubscriptionState::PastDue,
            _ => SubscriptionState::Expired,
        };
        Ok(ProviderSubscription {
            state,
            period_end: data["next_payment_date"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            products: data["plan"]["plan_code"]
                .as_str()
                .map(|c| vec![c.to_string()])
                .unwrap_or_default(),
            status,
        })
    }
}

/// A Kajabi hook (`GET /v1/hooks`): Kajabi posts `event` to `target_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KajabiHook {
    pub id: String,
    pub event: String,
    pub target_url: String,
}

impl KajabiHook {
    fn from_json(item: &Value) -> Option<Self> {
        let id = match &item["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(Self {
            id,
            event: item["attributes"]["event"].as_str()?.to_string(),
            target_url: item["attributes"]["target_url"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
    }
}

/// Kajabi's v1 API with OAuth client credentials. The access token is cached
/// for the life of the Lambda container, until shortly before it expires.
#[derive(Clone, Debug)]
pub struct KajabiApi {
    client: ApiClient,
    client_id: String,
    token: std::sync::Arc<tokio::sync::Mutex<Option<(Secret, std::time::Instant)>>>,
}

/// A token is renewed this long before Kajabi says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl KajabiApi {
    pub fn new(client: ApiClient, client_id: String) -> Self {
        Self {
            client,
            client_id,
            token: Default::default(),
        }
    }

    async fn access_token(&self) -> Result<Secret, ApiError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if std::time::Instant::now() + TOKEN_MARGIN < *until {
                return Ok(token.clone());
            }
        }
        let body = self
            .client
            .post_form(
                "/v1/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &self.client_id),
                    ("client_secret", self.client.secret().expose()),
                ],
            )
            .await?;
        let token = body["access_token"]
            .as_str()
            .ok_or(ApiError::Body { provider: "kajabi" })?;
        // Clamped: a wild `expires_in` must neither overflow nor pin a token for days.
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600).min(86_400));
        let token = Secret::new(token);
        *cached = Some((token.clone(), std::time::Instant::now() + lifetime));
        Ok(token)
    }

    /// Calls with the cached token; a token revoked early is forgotten and
    /// the call made once more with a fresh one.
    async fn authed<'a, F, Fut>(&'a self, call: F) -> Result<Value, ApiError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ApiError>> + 'a,
    {
        let token = self.access_token().await?;
        match call(token).await {
            Err(ApiError::Status { status: 401, .. }) => {
                *self.token.lock().await = None;
                let token = self.access_token().await?;
                call(token).await
            }
            other => other,
        }
    }

    /// Every hook of the site (`GET /v1/hooks`, 100 a page). Pages are read
    /// until `meta.total_pages`, or, without it, until an empty page; a site
    /// with more than `MAX_HOOK_PAGES` pages is an error, never a silently
    /// short list (which `ensure` would act on).
    pub async fn list_hooks(&self) -> Result<Vec<KajabiHook>, ApiError> {
        const MAX_HOOK_PAGES: u64 = 50;
        let mut hooks = Vec::new();
        for page in 1..=MAX_HOOK_PAGES {
            let path = format!("/v1/hooks?page%5Bnumber%5D={page}&page%5Bsize%5D=100");
            let body = self
                .authed(|token| {
                    let path = path.clone();
                    async move { self.client.get_json_as(&path, token.expose()).await }
                })
                .await?;
            let items = body["data"].as_array().cloned().unwrap_or_default();
            hooks.extend(items.iter().filter_map(KajabiHook::from_json));
            let last = match body["meta"]["total_pages"].as_u64() {
                Some(total) => page >= total,
                None => items.is_empty(),
            };
            if last || items.is_empty() {
                return Ok(hooks);
            }
        }
        Err(ApiError::TooMany {
            provider: "kajabi",
            what: "hooks",
            limit: (MAX_HOOK_PAGES * 100) as usize,
        })
    }

    /// `POST /v1/hooks`: Kajabi posts `event` to `target_url` from now on.
    pub async fn create_hook(&self, event: &str, target_url: &str) -> Result<KajabiHook, ApiError> {
        let body = serde_json::json!({"data": {"type": "hooks",
            "attributes": {"event": event, "target_url": target_url}}});
        let created = self
            .authed(|token| {
                let body = body.clone();
                async move {
                    // Once: a retry after a lost answer could make a second hook.
                    self.client
                        .single_attempt()
                        .post_json_as("/v1/hooks", token.expose(), &body)
                        .await
                }
            })
            .await?;
        KajabiHook::from_json(&created["data"]).ok_or(ApiError::Body { provider: "kajabi" })
    }

    /// `DELETE /v1/hooks/{id}`.
    pub async fn delete_hook(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/v1/hooks/{}", path_segment(id));
        self.authed(|token| {
            let path = path.clone();
            async move { self.client.delete_as(&path, token.expose()).await }
        })
        .await?;
        Ok(())
    }

    /// The customer's purchases of `offers`: active unless deactivated.
    pub async fn membership(
        &self,
        customer_id: &str,
        offers: &[&str],
    ) -> Result<ProviderSubscription, ApiError> {
        let path = format!(
            "/v1/purchases?filter%5Bcustomer_id%5D={}",
            path_segment(customer_id)
        );
        let token = self.access_token().await?;
        let body = match self.client.get_json_as(&path, token.expose()).await {
            // A token revoked early: forget it and ask once more with a fresh one.
            Err(ApiError::Status { status: 401, .. }) => {
                *self.token.lock().await = None;
                let token = self.access_token().await?;
                self.client.get_json_as(&path, token.expose()).await?
            }
            other => other?,
        };
        let purchases: Vec<&Value> = body["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|p| {
                        p["relationships"]["offer"]["data"]["id"]
                            .as_str()
                            .is_some_and(|o| offers.contains(&o))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let active = purchases
            .iter()
            .any(|p| p["attributes"]["deactivated_at"].is_null());
        let (status, state) = match (purchases.is_empty(), active) {
            (true, _) => ("no purchase", SubscriptionState::Expired),
            (false, true) => ("active", SubscriptionState::Active),
            (false, false) => ("deactivated", SubscriptionState::Expired),
        };
        Ok(ProviderSubscription {
            status: status.into(),
            state,
            period_end: None,
            products: purchases
                .iter()
                .filter_map(|p| p["relationships"]["offer"]["data"]["id"].as_str())
                .map(str::to_string)
                .collect(),
        })
    }
}
