//! HTTP glue shared by every function: the request and response types the
//! handlers use, API Gateway (HTTP API, payload v2) conversion, and
//! `application/problem+json` errors (RFC 9457).
//!
//! Gatehouse converts API Gateway events itself instead of using lambda_http:
//! lambda_http panics on a malformed base64 body, and handlers need the exact
//! raw bytes for signature checks.

use std::collections::BTreeMap;

use base64::Engine;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Largest body a webhook accepts (413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// API Gateway's HTTP API quota for the request line and header values
/// combined. API Gateway enforces it in front of every function; the local
/// server enforces it too, so `make dev` refuses what production refuses.
pub const MAX_REQUEST_HEAD_BYTES: usize = 10 * 1024;

/// What the quota counts: the request line (`METHOD target HTTP/1.1`) and the
/// header values.
pub fn request_head_bytes(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(String, String)],
) -> usize {
    let query = if raw_query.is_empty() {
        0
    } else {
        raw_query.len() + 1
    };
    method.len()
        + 1
        + path.len()
        + query
        + " HTTP/1.1".len()
        + headers.iter().map(|(_, value)| value.len()).sum::<usize>()
}

/// The IAM caller API Gateway puts in `requestContext.authorizer.iam`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IamIdentity {
    pub access_key: Option<String>,
    pub account_id: Option<String>,
    pub caller_id: Option<String>,
    pub principal_org_id: Option<String>,
    pub user_arn: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub raw_query: String,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub request_id: String,
    pub source_ip: Option<String>,
    pub path_params: BTreeMap<String, String>,
    pub iam: Option<IamIdentity>,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a query parameter, percent-decoded.
    pub fn query_values(&self, name: &str) -> Vec<String> {
        parse_query(&self.raw_query)
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// A cookie's value from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    }

    /// The token of an `Authorization: Bearer …` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn query(&self, name: &str) -> Option<String> {
        self.query_values(name).into_iter().next()
    }

    /// JSON in any of its media types (`application/json`, `application/vnd.api+json`, ...),
    /// with any parameters such as `; charset=utf-8`.
    pub fn has_json_content_type(&self) -> bool {
        let Some(raw) = self.header("content-type") else {
            return false;
        };
        let media = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
    }
}

pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub cookies: Vec<String>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            cookies: vec![],
        }
    }

    /// An RFC 9457 problem: `slug` names the problem type, `detail` says exactly what failed.
    pub fn problem(status: u16, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        let body = json!({
            "type": format!("https://gatehouse.dev/problems/{slug}"),
            "title": title,
            "status": status,
            "detail": detail.into(),
        });
        Self {
            status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: body.to_string(),
            cookies: vec![],
        }
    }

    /// An HTML page under `csp`, never framed, cached or sniffed.
    pub fn html(status: u16, body: String, csp: &str) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "text/html; charset=utf-8".into()),
                ("content-security-policy".into(), csp.to_string()),
                ("referrer-policy".into(), "no-referrer".into()),
                ("x-content-type-options".into(), "nosniff".into()),
                ("x-frame-options".into(), "DENY".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body,
            cookies: vec![],
        }
    }

    /// 303 to `location`, uncached, with no referrer sent on.
    pub fn see_other(location: String) -> Self {
        Self {
            status: 303,
            headers: vec![
                ("location".into(), location),
                ("cache-control".into(), "no-store".into()),
                ("referrer-policy".into(), "no-referrer".into()),
            ],
            body: String::new(),
            cookies: vec![],
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    pub fn body_json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The common 4xx responses, with the order of checks every webhook uses.
pub mod reject {
    use super::*;

    pub fn too_large(len: usize) -> ApiResponse {
        ApiResponse::problem(
            413,
            "payload-too-large",
            "Payload too large",
            format!("body is {len} bytes; the limit is {MAX_BODY_BYTES} bytes"),
        )
    }

    pub fn unsupported_media_type(got: Option<&str>) -> ApiResponse {
        ApiResponse::problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            format!(
                "content-type must be JSON (application/json or application/*+json); got {}",
                got.unwrap_or("none")
            ),
        )
    }

    pub fn invalid_json(err: &serde_json::Error) -> ApiResponse {
        ApiResponse::problem(
            400,
            "invalid-json",
            "Invalid JSON",
            format!("body is not valid JSON: {err}"),
        )
    }

    pub fn head_too_large(bytes: usize) -> ApiResponse {
        ApiResponse::problem(
            431,
            "request-header-fields-too-large",
            "Request header fields too large",
            format!(
                "the request line and headers are {bytes} bytes; the limit is {MAX_REQUEST_HEAD_BYTES} bytes"
            ),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiResponse {
        ApiResponse::problem(401, "unauthorized", "Authentication failed", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> ApiResponse {
        ApiResponse::problem(
            503,
            "temporarily-unavailable",
            "Temporarily unavailable",
            detail,
        )
        .with_header("retry-after", "5")
    }

    /// The one answer to a transient failure behind a request (storage,
    /// queue, contention, an unreachable dependency): logged with the request
    /// id and `what` failed, never the input, and answered 503 with `detail`,
    /// so the caller retries.
    pub fn unavailable_after(
        request: &ApiRequest,
        what: &str,
        error: &dyn std::fmt::Display,
        detail: &str,
    ) -> ApiResponse {
        tracing::error!(request_id = %request.request_id, error = %error, "{what}");
        unavailable(detail)
    }

    pub fn not_found(path: &str) -> ApiResponse {
        ApiResponse::problem(
            404,
            "not-found",
            "Not found",
            format!("no route for {path}"),
        )
    }
}

// ---- API Gateway HTTP API, payload format 2.0 ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiGatewayV2Request {
    pub raw_path: String,
    pub raw_query_string: String,
    pub headers: BTreeMap<String, String>,
    pub cookies: Vec<String>,
    pub path_parameters: BTreeMap<String, String>,
    pub body: Option<String>,
    pub is_base64_encoded: bool,
    pub request_context: RequestContext,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestContext {
    pub request_id: String,
    pub http: HttpContext,
    pub authorizer: Option<Authorizer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpContext {
    pub method: String,
    pub path: String,
    pub source_ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Authorizer {
    pub iam: Option<IamIdentity>,
}

impl ApiGatewayV2Request {
    /// Converts to the handler's request. A body flagged base64 that does not
    /// decode is answered 400 here, never a panic.
    pub fn into_api_request(self) -> Result<ApiRequest, ApiResponse> {
        let body = match (self.body, self.is_base64_encoded) {
            (None, _) => Vec::new(),
            (Some(text), false) => text.into_bytes(),
            (Some(text), true) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| {
                    ApiResponse::problem(
                        400,
                        "invalid-base64",
                        "Invalid body encoding",
                        format!("body is flagged isBase64Encoded but is not valid base64: {e}"),
                    )
                })?,
        };
        let mut headers: Vec<(String, String)> = self
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        if !self.cookies.is_empty() {
            headers.push(("cookie".into(), self.cookies.join("; ")));
        }
        let path = if self.raw_path.is_empty() {
            self.request_context.http.path
        } else {
            self.raw_path
        };
        Ok(ApiRequest {
            method: self.request_context.http.method.to_ascii_uppercase(),
            path,
            raw_query: self.raw_query_string,
            headers,
            body,
            request_id: self.request_context.request_id,
            source_ip: self.request_context.http.source_ip,
            path_params: self.path_parameters,
            iam: self.request_context.authorizer.and_then(|a| a.iam),
        })
    }
}

/// The API Gateway v2 response shape.
pub fn to_api_gateway_v2(response: ApiResponse) -> Value {
    let headers: serde_json::Map<String, Value> = response
        .headers
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "statusCode": response.status,
        "headers": headers,
        "cookies": response.cookies,
        "body": response.body,
        "isBase64Encoded": false,
    })
}

/// Largest body an account endpoint accepts.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Size, content type and JSON framing checks for a JSON API body, in that order.
pub fn json_body<T: serde::de::DeserializeOwned>(
    request: &ApiRequest,
    max: usize,
) -> Result<T, ApiResponse> {
    if request.body.len() > max {
        return Err(ApiResponse::problem(
            413,
            "payload-too-large",
            "Payload too large",
            format!(
                "body is {} bytes; the limit is {max} bytes",
                request.body.len()
            ),
        ));
    }
    if !request.has_json_content_type() {
        return Err(reject::unsupported_media_type(
            request.header("content-type"),
        ));
    }
    serde_json::from_slice(&request.body).map_err(|e| {
        if e.is_data() {
            ApiResponse::problem(
                400,
                "invalid-request",
                "Invalid request",
                format!("request body does not have the expected fields: {e}"),
            )
        } else {
            reject::invalid_json(&e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str, b64: bool) -> Value {
        json!({
            "version": "2.0",
            "rawPath": "/webhooks/kajabi",
            "rawQueryString": "token=a%2Bb&x=1&token=second",
            "headers": {"Content-Type": "application/vnd.api+json; charset=utf-8"},
            "requestContext": {"requestId": "r-1", "http": {"method": "post", "path": "/webhooks/kajabi", "sourceIp": "203.0.113.9"}},
            "body": body,
            "isBase64Encoded": b64
        })
    }

    #[test]
    fn converts_plain_and_base64_bodies() {
        let plain: ApiGatewayV2Request = serde_json::from_value(event("{\"a\":1}", false)).unwrap();
        let req = plain.into_api_request().unwrap();
        assert_eq!(req.body, b"{\"a\":1}");
        assert_eq!(req.method, "POST");
        assert_eq!(req.query("token").as_deref(), Some("a+b"));
        assert_eq!(req.query_values("token").len(), 2);
        assert!(req.has_json_content_type());
        assert_eq!(req.header("CONTENT-TYPE"), req.header("content-type"));

        let b64: ApiGatewayV2Request = serde_json::from_value(event("eyJhIjoxfQ==", true)).unwrap();
        assert_eq!(b64.into_api_request().unwrap().body, b"{\"a\":1}");
    }

    #[test]
    fn malformed_base64_is_a_400_not_a_panic() {
        let bad: ApiGatewayV2Request =
            serde_json::from_value(event("%%%not base64%%%", true)).unwrap();
        let resp = bad.into_api_request().unwrap_err();
        assert_eq!(resp.status, 400);
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
        assert!(resp.body_json()["detail"]
            .as_str()
            .unwrap()
            .contains("base64"));
    }

    #[test]
    fn the_head_quota_counts_the_request_line_and_header_values() {
        let headers = vec![("x-pad".to_string(), "p".repeat(100))];
        // "POST /webhooks/kajabi?token=t HTTP/1.1" and the value.
        assert_eq!(
            request_head_bytes("POST", "/webhooks/kajabi", "token=t", &headers),
            "POST /webhooks/kajabi?token=t HTTP/1.1".len() + 100
        );
        assert_eq!(
            request_head_bytes("GET", "/a", "", &[]),
            "GET /a HTTP/1.1".len()
        );
        let resp = reject::head_too_large(MAX_REQUEST_HEAD_BYTES + 1);
        assert_eq!(resp.status, 431);
        assert_eq!(
            resp.body_json()["detail"],
            format!(
                "the request line and headers are {} bytes; the limit is 10240 bytes",
                MAX_REQUEST_HEAD_BYTES + 1
            )
        );
    }

    #[test]
    fn content_type_rules() {
        let mut req = ApiRequest::default();
        assert!(!req.has_json_content_type());
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=UTF-8", true),
            ("application/vnd.api+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            req.headers = vec![("content-type".into(), ct.into())];
            assert_eq!(req.has_json_content_type(), ok, "{ct}");
        }
    }

    #[test]
    fn reads_cookies_and_bearer_tokens() {
        let req = ApiRequest {
            headers: vec![
                (
                    "cookie".into(),
                    "a=1; gatehouse_session=tok.en.x ; b=2".into(),
                ),
                ("authorization".into(), "Bearer abc.def".into()),
            ],
            ..Default::default()
        };
        assert_eq!(req.cookie("gatehouse_session"), Some("tok.en.x"));
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("missing"), None);
        assert_eq!(req.bearer_token(), Some("abc.def"));
        for bad in ["Basic abc", "Bearer", "Bearer   ", "token"] {
            let req = ApiRequest {
                headers: vec![("authorization".into(), bad.into())],
                ..Default::default()
            };
            assert_eq!(req.bearer_token(), None, "{bad}");
        }
    }

    #[test]
    fn response_shape() {
        let v = to_api_gateway_v2(ApiResponse::json(200, &json!({"status": "processed"})));
        assert_eq!(v["statusCode"], 200);
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(v["isBase64Encoded"], false);
    }
}
