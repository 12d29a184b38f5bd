//! The admin API's shared pieces: caller authorization from the IAM identity
//! API Gateway attaches, and list parameters.

pub mod auth;
pub mod import;
pub mod listing;

pub use auth::{AdminAuthError, AdminPrincipal, AdminPrincipals, PrincipalListError};

use crate::http::{ApiRequest, ApiResponse};

/// The allowed caller, or the 403 to answer.
pub fn authorize(
    principals: &AdminPrincipals,
    request: &ApiRequest,
) -> Result<AdminPrincipal, ApiResponse> {
    principals.authorize(request.iam.as_ref()).map_err(|e| {
        tracing::warn!(request_id = %request.request_id, reason = %e, "admin call refused");
        ApiResponse::problem(403, "forbidden", "Forbidden", e.to_string())
    })
}

/// One admin listing, `GET /admin/<what>`: the allowed caller (else 403),
/// the parameters `parse` reads (else 400), and the page `list` reads (503
/// when storage does not answer). Reads are logged with the caller, never
/// the rows.
pub async fn answer_listing<Q, Fut>(
    services: &crate::service::Services,
    request: &ApiRequest,
    what: &'static str,
    parse: impl FnOnce(Vec<(String, String)>) -> Result<Q, listing::ListingError>,
    list: impl FnOnce(Q) -> Fut,
) -> ApiResponse
where
    Fut: std::future::Future<
        Output = Result<crate::service::admin::ListPage, crate::service::ServiceError>,
    >,
{
    let principal = match authorize(&services.settings.admin_principals, request) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let query = match parse(crate::http::parse_query(&request.raw_query)) {
        Ok(q) => q,
        Err(e) => return bad_listing(e),
    };
    match list(query).await {
        Ok(page) => {
            tracing::info!(request_id = %request.request_id, principal = %principal, action = format!("list-{what}"), count = page.items.len(), "admin read");
            ApiResponse::json(200, &page.to_json())
        }
        Err(e) => crate::http::reject::unavailable_after(
            request,
            &format!("listing {what} failed"),
            &e,
            &format!("could not list {what} right now; try again"),
        ),
    }
}

/// A list parameter problem as a 400.
pub fn bad_listing(e: listing::ListingError) -> ApiResponse {
    ApiResponse::problem(400, "invalid-parameter", "Invalid parameter", e.to_string())
}

/// The `{key}` path parameter as an event key, or the 400 that says what it must be.
pub fn event_key_from_path(request: &ApiRequest) -> Result<crate::domain::EventKey, ApiResponse> {
    event_key_from_param(request, "key")
}

/// The event key in the path parameter `name` (a completion's `{id}` is its event's `ref`).
pub fn event_key_from_param(
    request: &ApiRequest,
    name: &str,
) -> Result<crate::domain::EventKey, ApiResponse> {
    let raw = request
        .path_params
        .get(name)
        .map(String::as_str)
        .unwrap_or_default();
    listing::decode_event_key(raw).ok_or_else(|| {
        ApiResponse::problem(
            400,
            "invalid-event-key",
            "Invalid event key",
            "the key must be base64url (no padding) of `<provider>:<event id>`, as in the `ref` of /admin/events rows",
        )
    })
}
