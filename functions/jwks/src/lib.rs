//! `GET /.well-known/jwks.json`: the public keys (with `kid`s) that verify
//! Gatehouse sessions, newest first. During a rotation two are listed.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;

pub struct Jwks {
    services: Services,
}

impl Jwks {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        match self.services.session_keys() {
            // Apps may cache briefly, and refetch when a token names a kid they lack.
            Ok(keys) => ApiResponse::json(200, &keys.jwks())
                .with_header("cache-control", "public, max-age=300"),
            Err(e) => reject::unavailable_after(
                &request,
                "no session keys",
                &e,
                "session keys are not configured",
            ),
        }
    }
}

impl HttpFunction for Jwks {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(Jwks::handle(self, request))
    }
}
