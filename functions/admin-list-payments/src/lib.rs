//! `GET /admin/payments?provider=&status=&user=&from=&to=&limit=&cursor=`, newest
//! first: every payment (checkouts Gatehouse started and those the providers
//! reported), amounts as decimal money in their currency. Backed by the
//! payments listing (or the member's), never a Scan.

use gatehouse::admin::answer_listing;
use gatehouse::admin::listing::PaymentQuery;
use gatehouse::http::{ApiRequest, ApiResponse};
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
        let services = &self.services;
        answer_listing(
            services,
            &request,
            "payments",
            PaymentQuery::parse,
            |query| async move { services.admin_list_payments(&query).await },
        )
        .await
    }
}

impl HttpFunction for AdminListPayments {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListPayments::handle(self, request))
    }
}
