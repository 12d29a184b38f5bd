//! `GET /admin/completions?status=unmatched|dismissed&limit=&cursor=`, newest
//! first: course completions no member's email matched, each with its email,
//! course and form. Backed by the user-events index, never a Scan.

use gatehouse::admin::listing::CompletionQuery;
use gatehouse::admin::{authorize, bad_listing};
use gatehouse::http::{parse_query, reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminListCompletions {
    services: Services,
}

impl AdminListCompletions {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let query = match CompletionQuery::parse(parse_query(&request.raw_query)) {
            Ok(q) => q,
            Err(e) => return bad_listing(e),
        };
        match self.services.admin_list_completions(&query).await {
            Ok(page) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "list-completions", count = page.items.len(), "admin read");
                ApiResponse::json(200, &page.to_json())
            }
            Err(e) => reject::unavailable_after(
                &request,
                "listing completions failed",
                &e,
                "could not list completions right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminListCompletions {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListCompletions::handle(self, request))
    }
}
