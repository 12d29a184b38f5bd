//! The admin API's shared pieces: caller authorization from the IAM identity
//! API Gateway attaches, and list parameters.

pub mod auth;
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
