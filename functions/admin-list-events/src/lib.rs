//! `GET /admin/events?provider=&type=&status=&user=&from=&to=&limit=&cursor=`, newest
//! first. Backed by the events index (or the user's events index), never a Scan.

use gatehouse::admin::answer_listing;
use gatehouse::admin::listing::EventQuery;
use gatehouse::http::{ApiRequest, ApiResponse};
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
        let services = &self.services;
        answer_listing(
            services,
            &request,
            "events",
            EventQuery::parse,
            |query| async move { services.admin_list_events(&query).await },
        )
        .await
    }
}

impl HttpFunction for AdminListEvents {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListEvents::handle(self, request))
    }
}
