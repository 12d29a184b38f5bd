//! `GET /admin/users?subscription_status=&plan=&role=&auth_provider=&is_active=&email_prefix=&limit=&cursor=`
//! Backed by the users index (by email), never a Scan. 400 names the bad parameter.

use gatehouse::admin::listing::UserQuery;
use gatehouse::admin::{authorize, bad_listing};
use gatehouse::http::{parse_query, reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminListUsers {
    services: Services,
}

impl AdminListUsers {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let query = match UserQuery::parse(
            parse_query(&request.raw_query),
            &self.services.settings.plans,
        ) {
            Ok(q) => q,
            Err(e) => return bad_listing(e),
        };
        match self.services.admin_list_users(&query).await {
            Ok(page) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "list-users", count = page.items.len(), "admin read");
                ApiResponse::json(200, &page.to_json())
            }
            Err(e) => reject::unavailable_after(
                &request,
                "listing users failed",
                &e,
                "could not list users right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminListUsers {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListUsers::handle(self, request))
    }
}
