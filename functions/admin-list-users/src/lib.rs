//! `GET /admin/users?subscription_status=&plan=&role=&auth_provider=&is_active=&email_prefix=&limit=&cursor=`
//! Backed by the users index (by email), never a Scan. 400 names the bad parameter.

use gatehouse::admin::answer_listing;
use gatehouse::admin::listing::UserQuery;
use gatehouse::http::{ApiRequest, ApiResponse};
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
        let services = &self.services;
        answer_listing(
            services,
            &request,
            "users",
            |pairs| UserQuery::parse(pairs, &services.settings.plans),
            |query| async move { services.admin_list_users(&query).await },
        )
        .await
    }
}

impl HttpFunction for AdminListUsers {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminListUsers::handle(self, request))
    }
}
