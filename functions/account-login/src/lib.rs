//! `POST /account/login` `{email, password}`: returns a session as JSON and as
//! a cookie. An unknown address, an account without a password yet and a
//! wrong password get the same 401 (status, body, headers) in the same time;
//! repeated failures per address or per source IP get 429 with `Retry-After`.

use gatehouse::config::Secret;
use gatehouse::domain::Email;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::session::LoginOutcome;
use gatehouse::service::Services;
use gatehouse::session::session_cookie;
use serde::Deserialize;

/// Longer inputs are refused before any hashing work.
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

pub fn invalid_credentials() -> ApiResponse {
    ApiResponse::problem(
        401,
        "invalid-credentials",
        "Sign-in failed",
        "The email address or password is wrong. If you have not set a password yet, open the setup link from your welcome email, or ask for a new one with POST /account/resend-setup-email.",
    )
}

pub struct AccountLogin {
    services: Services,
}

impl AccountLogin {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let body: LoginRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let Ok(email) = Email::parse(&body.email) else {
            return ApiResponse::problem(
                400,
                "invalid-email",
                "Invalid email",
                "the email field is not an email address",
            );
        };
        if body.password.is_empty() || body.password.len() > MAX_PASSWORD_BYTES {
            return invalid_credentials();
        }
        let outcome = self
            .services
            .login(
                &email,
                Secret::new(body.password),
                request.source_ip.as_deref(),
            )
            .await;
        match outcome {
            Ok(LoginOutcome::SignedIn(signed_in)) => {
                let max_age = signed_in.session.lifetime();
                ApiResponse::json(200, &signed_in.to_json())
                    .with_header("cache-control", "no-store")
                    .with_cookie(session_cookie(&signed_in.session.token, max_age))
            }
            Ok(LoginOutcome::InvalidCredentials) => invalid_credentials(),
            Ok(LoginOutcome::RateLimited { retry_after_secs }) => ApiResponse::problem(
                429,
                "too-many-attempts",
                "Too many failed sign-ins",
                format!("Too many failed sign-ins; try again in {retry_after_secs} seconds."),
            )
            .with_header("retry-after", retry_after_secs.to_string()),
            Err(e) => reject::unavailable_after(
                &request,
                "login failed",
                &e,
                "could not sign in right now; try again",
            ),
        }
    }
}

impl HttpFunction for AccountLogin {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountLogin::handle(self, request))
    }
}
