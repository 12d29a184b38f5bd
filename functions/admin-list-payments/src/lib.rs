//! `GET /admin/payments?provider=&status=&user=&from=&to=&limit=&cursor=`, newest
//! first: every payment (checkouts Gatehouse started and those the providers
//! reported), amounts as decimal money in their currency. Backed by the
//! payments listing (or the member's), never a Scan.

use gatehouse::admin::listing::PaymentQuery;
use gatehouse::admin::{authorize, bad_listing};
use gatehouse::http::{parse_query, reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct AdminListPayments {
    services: Services,
}

impl AdminListPayments {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let principal = match authorize(&self.services.settings.admin_principals, &request) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let query = match PaymentQuery::parse(parse_query(&request.raw_query)) {
            Ok(q) => q,
            Err(e) => return bad_listing(e),
        };
        match self.services.admin_list_payments(&query).await {
            Ok(page) => {
                tracing::info!(request_id = %request.request_id, principal = %principal, action = "list-payments", count = page.items.len(), "admin read");
                ApiResponse::json(200, &page.to_json())
            }
            Err(e) => reject::unavailable_after(
                &request,
                "listing payments failed",
                &e,
                "could not list payments right now; try again",
            ),
        }
    }
}

impl HttpFunction for AdminListPayments {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListPayments::handle(self, request))
    }
}
