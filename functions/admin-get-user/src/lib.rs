//! `GET /admin/users/{id}`: profile, subscriptions with state and access,
//! effective roles and permissions, points, the last 20 events and unsent emails.

use gatehouse::admin::authorize;
use gatehouse::admin::listing::user_id_from_path;
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub fn no_such_user(raw: &str) -> ApiResponse {
    ApiResponse::problem(
        404,
        "user-not-found",
        "User not found",
        format!("no user with id `{raw}`"),
    )
}

pub struct AdminGetUser {
    services: Services,
}

impl AdminGetUser {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let raw = request
            .path_params
            .get("id")
            .map(String::as_str)
            .unwrap_or_default();
        let Some(user) = user_id_from_path(raw) else {
            return no_such_user(raw);
        };
        match self.services.admin_user(&user).await {
            Ok(Some(view)) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "get-user", user_id = %user, "admin read");
                ApiResponse::json(200, &view)
            }
            Ok(None) => no_such_user(raw),
            Err(e) => reject::unavailable_after(
                &request,
                "reading a user failed",
                &e,
                "could not read the user right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminGetUser {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminGetUser::handle(self, request))
    }
}
