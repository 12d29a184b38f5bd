//! The admin API's shared pieces: caller authorization from the IAM identity
//! API Gateway attaches.

pub mod auth;

pub use auth::{AdminAuthError, AdminPrincipal, AdminPrincipals, PrincipalListError};
