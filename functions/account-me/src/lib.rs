//! `GET /account/me`: the signed-in member's profile, subscriptions, effective
//! roles and permissions (computed now from stored state, not read from the
//! token), premium flag and points. Takes `Authorization: Bearer` or the
//! session cookie.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::session::member_json;
use gatehouse::service::Services;
use gatehouse::session::SESSION_COOKIE;

fn unauthorized(detail: &str) -> ApiResponse {
    reject::unauthorized(detail).with_header(
        "www-authenticate",
        "Bearer realm=\"gatehouse\", error=\"invalid_token\"",
    )
}

pub struct AccountMe {
    services: Services,
}

impl AccountMe {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let Some(token) = request
            .bearer_token()
            .or_else(|| request.cookie(SESSION_COOKIE))
        else {
            return reject::unauthorized(
                "no session: send Authorization: Bearer <token> or the session cookie",
            )
            .with_header("www-authenticate", "Bearer realm=\"gatehouse\"");
        };
        let keys = match self.services.session_keys() {
            Ok(keys) => keys,
            Err(e) => {
                return reject::unavailable_after(
                    &request,
                    "sessions unavailable",
                    &e,
                    "sessions are not available right now",
                )
            }
        };
        let now = self.services.now();
        let claims = match keys.verify(token, now) {
            Ok(claims) => claims,
            Err(e) => {
                tracing::info!(request_id = %request.request_id, outcome = "rejected", reason = %e, "session refused");
                return unauthorized(&e.to_string());
            }
        };
        let user = gatehouse::domain::UserId::from_stored(claims.sub);
        match self.services.store.load_member(&user).await {
            Ok(Some(member)) if member.is_active => {
                let entitlements = self.services.entitlements_of(&member, now);
                let after = request.query("ledger_after");
                match member_json(&member, &entitlements, now, after.as_deref()) {
                    Ok(view) => {
                        ApiResponse::json(200, &view).with_header("cache-control", "no-store")
                    }
                    Err(detail) => ApiResponse::problem(400, "bad-cursor", "Bad cursor", detail),
                }
            }
            Ok(_) => unauthorized("the session's account no longer exists or is not active"),
            Err(e) => reject::unavailable_after(
                &request,
                "member load failed",
                &e,
                "could not load the account right now; try again",
            ),
        }
    }
}

impl HttpFunction for AccountMe {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountMe::handle(self, request))
    }
}
