//! HTTP glue for the member's own routes: who the session names. A route
//! takes `Authorization: Bearer <token>` or the session cookie. A change sent
//! with the cookie must come with the service's own `Origin` where the
//! browser names one: the cookie is `SameSite=Lax`, and this refuses the
//! rest of what a cross-site page could send.

use crate::domain::UserId;
use crate::http::{reject, ApiRequest, ApiResponse};
use crate::service::self_service::SelfServiceError;
use crate::service::Services;
use crate::session::SESSION_COOKIE;

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: UserId,
    /// The session came as the cookie (a browser), not as a bearer token.
    pub by_cookie: bool,
}

/// The scheme, host and port of `url`, as a browser writes `Origin`.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// 401 with the bearer challenge for a token that does not verify.
pub fn unauthorized(detail: &str) -> ApiResponse {
    reject::unauthorized(detail).with_header(
        "www-authenticate",
        "Bearer realm=\"gatehouse\", error=\"invalid_token\"",
    )
}

/// The session's member, if the request carries a session at all: `Ok(None)`
/// without one, `Err(answer)` for a session that does not verify or a
/// cross-site change.
pub fn session(services: &Services, request: &ApiRequest) -> Result<Option<SignedIn>, ApiResponse> {
    let bearer = request.bearer_token();
    let Some(token) = bearer.or_else(|| request.cookie(SESSION_COOKIE)) else {
        return Ok(None);
    };
    let by_cookie = bearer.is_none();
    if by_cookie && request.method != "GET" {
        let ours = origin_of(&services.settings.frontend_url);
        if request.header("origin").is_some_and(|o| o != ours) {
            return Err(ApiResponse::problem(
                403,
                "cross-site",
                "Cross-site request refused",
                "a change made with the session cookie must come from this site",
            ));
        }
    }
    let keys = services.session_keys().map_err(|e| {
        reject::unavailable_after(
            request,
            "sessions unavailable",
            &e,
            "sessions are not available right now",
        )
    })?;
    match keys.verify(token, services.now()) {
        Ok(claims) => Ok(Some(SignedIn {
            user_id: UserId::from_stored(claims.sub),
            by_cookie,
        })),
        Err(e) => {
            tracing::info!(request_id = %request.request_id, outcome = "rejected", reason = %e, "session refused");
            Err(unauthorized(&e.to_string()))
        }
    }
}

/// The session's member, required: 401 without one.
pub fn signed_in(services: &Services, request: &ApiRequest) -> Result<SignedIn, ApiResponse> {
    session(services, request)?.ok_or_else(|| {
        reject::unauthorized("no session: send Authorization: Bearer <token> or the session cookie")
            .with_header("www-authenticate", "Bearer realm=\"gatehouse\"")
    })
}

/// The answer for a change the provider could not or would not make.
pub fn refused(request: &ApiRequest, error: SelfServiceError) -> ApiResponse {
    let detail = error.to_string();
    match error {
        SelfServiceError::NoAccount => unauthorized(&detail),
        SelfServiceError::NotFound(_) => {
            ApiResponse::problem(404, "no-such-subscription", "No such subscription", detail)
        }
        SelfServiceError::Unsupported(_) | SelfServiceError::NotConfigured(_) => {
            ApiResponse::problem(409, "not-possible-here", "Not possible here", detail)
        }
        SelfServiceError::Provider { provider, .. } => {
            tracing::warn!(request_id = %request.request_id, provider, "provider refused a member's change");
            ApiResponse::problem(502, "provider-failed", "Payment provider failed", detail)
        }
        SelfServiceError::ProviderBusy { .. } | SelfServiceError::Store(_) => {
            reject::unavailable_after(
                request,
                "member change failed",
                &error,
                "could not make the change right now; try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://gh.example/base"), "https://gh.example");
        assert_eq!(origin_of("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
    }
}
