//! Serves every HTTP function on its template route, as API Gateway would.
//! Any other path gets 404. Routes with IAM auth get the SigV4 check first:
//! a request that fails it is answered 403 and never reaches the function.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::HttpFunction;

use crate::sigv4::{AdminCredentials, SignedRequest};
use crate::template::Route;

/// API Gateway's own payload limit; the functions apply their smaller ones.
const GATEWAY_BODY_LIMIT: usize = 10 * 1024 * 1024;

#[derive(Clone)]
pub struct RouteTable {
    routes: Arc<Vec<(Route, Arc<dyn HttpFunction>)>>,
    /// Verifies SigV4 on IAM-authorized routes; without it they all answer 403.
    admin: Option<Arc<AdminCredentials>>,
}

type Matched<'a> = (
    &'a Route,
    &'a Arc<dyn HttpFunction>,
    BTreeMap<String, String>,
);

impl RouteTable {
    pub fn new(routes: Vec<(Route, Arc<dyn HttpFunction>)>) -> Self {
        Self {
            routes: Arc::new(routes),
            admin: None,
        }
    }

    pub fn with_admin_credentials(mut self, admin: Option<AdminCredentials>) -> Self {
        self.admin = admin.map(Arc::new);
        self
    }

    /// Literal routes win over templated ones, as in API Gateway.
    fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let mut templated = None;
        for (route, function) in self.routes.iter() {
            if let Some(params) = route.matches(method, path) {
                if params.is_empty() {
                    return Some((route, function, params));
                }
                templated.get_or_insert((route, function, params));
            }
        }
        templated
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(r, _)| r)
    }
}

fn into_http(response: ApiResponse) -> Response<Body> {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(n, v);
        }
    }
    for cookie in response.cookies {
        if let Ok(v) = HeaderValue::try_from(cookie) {
            out.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    out
}

async fn dispatch(
    State(table): State<RouteTable>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_ascii_uppercase();
    let path = parts.uri.path().to_string();
    let Some((route, function, path_params)) = table.find(&method, &path) else {
        return into_http(reject::not_found(&path));
    };
    let body = match to_bytes(body, GATEWAY_BODY_LIMIT).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return into_http(reject::too_large(GATEWAY_BODY_LIMIT + 1)),
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let raw_query = parts.uri.query().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = headers;
    // Counted on the raw values: one that is not UTF-8 (and so never reaches
    // the handler) still counts.
    let head = gatehouse::http::request_head_bytes(&method, &path, &raw_query, &[])
        + parts.headers.values().map(|v| v.len()).sum::<usize>();
    if head > gatehouse::http::MAX_REQUEST_HEAD_BYTES {
        return into_http(reject::head_too_large(head));
    }
    let iam = if route.iam_auth {
        let Some(admin) = table.admin.as_deref() else {
            return forbidden("admin routes are not configured on this local stack");
        };
        let signed = SignedRequest {
            method: &method,
            raw_path: &path,
            raw_query: &raw_query,
            headers: &headers,
            body: &body,
        };
        match admin.verify(&signed, chrono::Utc::now()) {
            Ok(identity) => Some(identity),
            Err(e) => {
                tracing::warn!(path = %path, reason = %e, "SigV4 refused");
                return forbidden(&e.to_string());
            }
        }
    } else {
        None
    };
    let request = ApiRequest {
        method,
        path,
        raw_query,
        headers,
        body,
        request_id: format!("local-{}", hex::encode(rand::random::<[u8; 8]>())),
        source_ip: Some(peer.ip().to_string()),
        path_params,
        iam,
    };
    into_http(function.handle(request).await)
}

/// API Gateway answers a failed IAM check with 403 and a message; so does the local stack.
fn forbidden(detail: &str) -> Response<Body> {
    into_http(ApiResponse::problem(
        403,
        "forbidden",
        "Forbidden",
        format!("request signature rejected: {detail}"),
    ))
}

pub fn router(table: RouteTable) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(table)
}
