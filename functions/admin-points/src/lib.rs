//! `POST /admin/users/{id}/points` `{"delta": N, "reason": …}` (with
//! `Idempotency-Key`): adds or deducts points by hand. The balance never goes
//! below 0 (409). Each change has its own ledger entry and is audited with
//! the principal; a retry with the same key changes nothing.

use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{required_reason, user_change};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

/// Largest change one request may make, either way.
pub const MAX_DELTA: i64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsRequest {
    delta: i64,
    reason: Option<String>,
}

fn bad(detail: impl Into<String>) -> ApiResponse {
    ApiResponse::problem(
        400,
        "invalid-points-change",
        "Invalid points change",
        detail,
    )
}

pub struct AdminPoints {
    services: Services,
}

impl AdminPoints {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut audit = match user_change(
            &self.services.settings.admin_principals,
            &request,
            "points",
            json!({}),
        ) {
            Ok(audit) => audit,
            Err(refused) => return refused,
        };
        let body: PointsRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(b) => b,
            Err(rejection) => return rejection,
        };
        if body.delta == 0 || body.delta.abs() > MAX_DELTA {
            return bad(format!(
                "`delta` must be a non-zero whole number from -{MAX_DELTA} to {MAX_DELTA}"
            ));
        }
        let reason = match required_reason(body.reason) {
            Ok(reason) => reason,
            Err(detail) => return bad(detail),
        };
        audit.request = json!({"delta": body.delta, "reason": reason});
        match self
            .services
            .admin_adjust_points(&audit, body.delta, &reason)
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "points change failed",
                &e,
                "could not change points right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminPoints {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminPoints::handle(self, request))
    }
}
