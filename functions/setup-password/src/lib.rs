//! `POST /account/setup-password` `{email, token, password}`: sets the password
//! (argon2id) and activates the account. A wrong, used or expired token gets one
//! generic 400 so the answer reveals nothing about the account. Success signs
//! the member in: the session comes back as JSON and as a cookie.

use gatehouse::domain::{Email, Password, UserId};
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::account::SetupOutcome;
use gatehouse::service::Services;
use gatehouse::session::session_cookie;
use serde::Deserialize;
use serde_json::json;

pub const INVALID_LINK: &str =
    "This setup link is invalid, already used or expired. Request a new link.";

#[derive(Deserialize)]
struct SetupRequest {
    email: String,
    token: String,
    password: String,
}

pub struct SetupPassword {
    services: Services,
}

impl SetupPassword {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let body: SetupRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(body) => body,
            Err(rejection) => return rejection,
        };
        let password = match Password::parse(body.password) {
            Ok(p) => p,
            Err(e) => {
                return ApiResponse::problem(
                    400,
                    "invalid-password",
                    "Password not accepted",
                    e.to_string(),
                )
            }
        };
        let invalid_link = || {
            ApiResponse::problem(
                400,
                "invalid-setup-link",
                "Invalid setup link",
                INVALID_LINK,
            )
        };
        let Ok(email) = Email::parse(&body.email) else {
            return invalid_link();
        };
        match self
            .services
            .setup_password(&email, body.token.trim(), password)
            .await
        {
            Ok(SetupOutcome::Activated { user_id }) => {
                self.signed_in(&request, &user_id, &email).await
            }
            Ok(SetupOutcome::InvalidToken) => invalid_link(),
            Err(e) => reject::unavailable_after(
                &request,
                "password setup failed",
                &e,
                "could not set the password right now; try again",
            ),
        }
    }
}

impl SetupPassword {
    /// The activated member's session, as JSON and as a cookie. The password is
    /// already set when this runs, so a failure to sign here still answers 200
    /// (without a session) and the member can log in.
    async fn signed_in(
        &self,
        request: &ApiRequest,
        user_id: &UserId,
        email: &Email,
    ) -> ApiResponse {
        let mut body =
            json!({"status": "activated", "user_id": user_id.as_str(), "email": email.as_str()});
        match self.services.session_for(user_id).await {
            Ok(Some(signed_in)) => {
                body["session"] = signed_in.to_json();
                ApiResponse::json(200, &body)
                    .with_header("cache-control", "no-store")
                    .with_cookie(session_cookie(
                        &signed_in.session.token,
                        signed_in.session.lifetime(),
                    ))
            }
            other => {
                let error = match other {
                    Err(e) => e.to_string(),
                    _ => "the activated user was not found".to_string(),
                };
                tracing::error!(request_id = %request.request_id, user_id = %user_id, error = %error, "activated, but no session could be issued");
                body["session"] = serde_json::Value::Null;
                ApiResponse::json(200, &body).with_header("cache-control", "no-store")
            }
        }
    }
}

impl HttpFunction for SetupPassword {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(SetupPassword::handle(self, request))
    }
}
