//! `GET /admin/completions?status=unmatched|dismissed&limit=&cursor=`, newest
//! first: course completions no member's email matched, each with its email,
//! course and form. Backed by the user-events index, never a Scan.

use gatehouse::admin::answer_listing;
use gatehouse::admin::listing::CompletionQuery;
use gatehouse::http::{ApiRequest, ApiResponse};
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
        let services = &self.services;
        answer_listing(
            services,
            &request,
            "completions",
            CompletionQuery::parse,
            |query| async move { services.admin_list_completions(&query).await },
        )
        .await
    }
}

impl HttpFunction for AdminListCompletions {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListCompletions::handle(self, request))
    }
}
