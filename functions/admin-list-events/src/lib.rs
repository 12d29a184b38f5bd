//! `GET /admin/events?provider=&type=&status=&user=&from=&to=&limit=&cursor=`, newest
//! first. Backed by the events index (or the user's events index), never a Scan.

use gatehouse::admin::listing::EventQuery;
use gatehouse::admin::{authorize, bad_listing};
use gatehouse::http::{parse_query, reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminListEvents {
    services: Services,
}

impl AdminListEvents {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let query = match EventQuery::parse(parse_query(&request.raw_query)) {
            Ok(q) => q,
            Err(e) => return bad_listing(e),
        };
        match self.services.admin_list_events(&query).await {
            Ok(page) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "list-events", count = page.items.len(), "admin read");
                ApiResponse::json(200, &page.to_json())
            }
            Err(e) => reject::unavailable_after(
                &request,
                "listing events failed",
                &e,
                "could not list events right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminListEvents {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListEvents::handle(self, request))
    }
}
