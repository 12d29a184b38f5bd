//! `POST /admin/completions/{id}/link` `{"user_id": "usr_…"}` (with
//! `Idempotency-Key`): the completion's email becomes the member's for
//! course completions, and every completion waiting on it is applied, each
//! course's points once. Audited with the principal. `{id}` is the `id` of a
//! `GET /admin/completions` row.

use gatehouse::admin::event_key_from_param;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    user_id: String,
}

pub struct AdminLinkCompletion {
    services: Services,
}

impl AdminLinkCompletion {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "link-completion",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        let completion = match event_key_from_param(&request, "id") {
            Ok(k) => k,
            Err(bad) => return bad,
        };
        let body: LinkRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(b) => b,
            Err(rejection) => return rejection,
        };
        let Some(user) = user_id_from_path(&body.user_id) else {
            return ApiResponse::problem(
                400,
                "invalid-request",
                "Invalid request",
                "`user_id` is not a member id (usr_…)",
            );
        };
        change.target_user = Some(user.clone());
        change.request = json!({"completion": completion.to_string(), "user_id": user.as_str()});
        match self
            .services
            .admin_link_completion(&change, &completion, &user)
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "linking a completion failed",
                &e,
                "could not link the completion right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminLinkCompletion {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminLinkCompletion::handle(self, request))
    }
}
