//! `POST /account/checkout`: `{plan, provider}` from a signed-in member
//! (bearer token or the session cookie), or `{email, plan, provider}` from a
//! visitor. Writes a `pending` payment under a random reference and answers
//! `{url, reference}`: the provider's hosted checkout.
//!
//! A session sent as the cookie must come with a JSON body and, where the
//! browser names one, the service's own `Origin` (`member_http`): a
//! cross-site form can do neither.

use gatehouse::domain::Email;
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::checkout::{Buyer, CheckoutError};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

const MAX_BODY_BYTES: usize = 4 * 1024;

#[derive(Deserialize)]
struct Body {
    plan: String,
    provider: String,
    #[serde(default)]
    email: Option<String>,
}

pub struct AccountCheckout {
    services: Services,
}

impl AccountCheckout {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        if request.body.len() > MAX_BODY_BYTES {
            return reject::too_large(request.body.len());
        }
        if !request.has_json_content_type() {
            return reject::unsupported_media_type(request.header("content-type"));
        }
        let body: Body = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(e) => return reject::invalid_json(&e),
        };
        let buyer = match gatehouse::member_http::session(&self.services, &request) {
            Err(answer) => return answer,
            Ok(Some(member)) => Buyer::Member(member.user_id),
            Ok(None) => match body.email.as_deref().map(Email::parse) {
                Some(Ok(email)) => Buyer::Visitor(email),
                Some(Err(e)) => {
                    return ApiResponse::problem(
                        400,
                        "invalid-email",
                        "Invalid email",
                        e.to_string(),
                    )
                }
                None => {
                    return ApiResponse::problem(
                        400,
                        "email-required",
                        "Email required",
                        "without a session, send the email to buy for",
                    )
                }
            },
        };
        match self
            .services
            .start_checkout(&buyer, &body.plan, &body.provider)
            .await
        {
            Ok(started) => ApiResponse::json(
                201,
                &json!({"url": started.url, "reference": started.reference.as_str()}),
            )
            .with_header("cache-control", "no-store"),
            Err(e) => self.refused(&request, e),
        }
    }

    fn refused(&self, request: &ApiRequest, error: CheckoutError) -> ApiResponse {
        use gatehouse::domain::ChoiceError;
        let detail = error.to_string();
        match error {
            CheckoutError::Disabled => {
                ApiResponse::problem(403, "payments-disabled", "Payments are disabled", detail)
            }
            CheckoutError::Choice(ChoiceError::UnknownPlan(_)) => {
                ApiResponse::problem(400, "unknown-plan", "Unknown plan", detail)
            }
            CheckoutError::Choice(ChoiceError::UnknownProvider(_)) => {
                ApiResponse::problem(400, "unknown-provider", "Unknown provider", detail)
            }
            CheckoutError::Choice(ChoiceError::NoPrice { .. })
            | CheckoutError::NotConfigured(_) => ApiResponse::problem(
                409,
                "not-sold-there",
                "Not sold through this provider",
                detail,
            ),
            CheckoutError::NoAccount => reject::unauthorized(detail),
            CheckoutError::RateLimited => {
                ApiResponse::problem(429, "rate-limited", "Too many checkouts", detail)
                    .with_header("retry-after", "60")
            }
            CheckoutError::Provider {
                provider,
                reference,
                ..
            } => {
                tracing::warn!(request_id = %request.request_id, provider, "checkout provider failed");
                let mut problem =
                    ApiResponse::problem(502, "provider-failed", "Payment provider failed", detail);
                // The failed payment's reference, for support: the provider's answer is kept on it.
                let mut body = problem.body_json();
                body["reference"] = json!(reference.as_str());
                problem.body = body.to_string();
                problem
            }
            CheckoutError::Store(_) | CheckoutError::Commit(_) => reject::unavailable_after(
                request,
                "checkout write failed",
                &error,
                "could not start the checkout right now; try again",
            ),
        }
    }
}

impl HttpFunction for AccountCheckout {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountCheckout::handle(self, request))
    }
}
