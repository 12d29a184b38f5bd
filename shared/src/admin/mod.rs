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
