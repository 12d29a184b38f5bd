//! `GET /account/me`: the signed-in member's profile, subscriptions, effective
//! roles and permissions (computed now from stored state, not read from the
//! token), premium flag and points. Takes `Authorization: Bearer` or the
//! session cookie.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::member_http::{signed_in, unauthorized};
use gatehouse::service::session::member_json;
use gatehouse::service::Services;

pub struct AccountMe {
    services: Services,
}

impl AccountMe {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let user = match signed_in(&self.services, &request) {
            Ok(signed_in) => signed_in.user_id,
            Err(answer) => return answer,
        };
        let now = self.services.now();
        match self.services.store.load_member(&user).await {
            Ok(Some(member)) if member.is_active => {
                let entitlements = self.services.entitlements_of(&member, now);
                let after = request.query("ledger_after");
                match member_json(
                    &member,
                    &entitlements,
                    &self.services.settings.plans,
                    now,
                    after.as_deref(),
                ) {
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
