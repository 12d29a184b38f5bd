//! Admin auth: the local stack verifies SigV4 (as API Gateway's IAM auth
//! does) before any function runs, and each function checks the principal
//! against ADMIN_PRINCIPALS. Signatures come from botocore (independent) and
//! from the CLI's own signer.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse_e2e::{
    purchase, Auth, Options, TestStack, ADMIN_ACCESS_KEY, ADMIN_PRINCIPAL, ADMIN_SECRET_KEY,
};
use gatehouse_local::server::{router, RouteTable};
use gatehouse_local::sigv4::AdminCredentials;
use gatehouse_local::template::Route;
use serde_json::Value;

type Headers = Vec<(String, String)>;

fn botocore_headers(method: &str, url: &str, body: &str, secret: &str) -> Vec<(String, String)> {
    let root = gatehouse_local::env::workspace_root();
    let output = Command::new(root.join(".venv/local/bin/python"))
        .arg(root.join("tests/sigv4/sign.py"))
        .args([method, url, body, ADMIN_ACCESS_KEY, secret, "us-east-1"])
        .output()
        .expect("the project venv's python with botocore (make test installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let headers: serde_json::Map<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    headers
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_string()))
        .collect()
}

fn own_headers(method: &str, url: &str, body: &[u8], at: SystemTime) -> Vec<(String, String)> {
    gatehouse_admin::sign_request(
        method,
        url,
        &[],
        body,
        &Credentials::new(ADMIN_ACCESS_KEY, ADMIN_SECRET_KEY, None, None, "test"),
        "us-east-1",
        at,
    )
    .unwrap()
}

async fn send(
    t: &TestStack,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> (u16, Value) {
    let mut request = t.http.request(method.parse().unwrap(), t.url(path));
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn botocore_and_own_signatures_are_accepted() {
    let t = TestStack::start().await;
    t.post_kajabi(
        &purchase(&t.id("a"), &t.email("signed"), "off_456"),
        Auth::Signature,
    )
    .await;
    let path = "/admin/users?limit=5&email_prefix=signed.";
    let url = t.url(path);
    let headers = blocking(move || botocore_headers("GET", &url, "", ADMIN_SECRET_KEY)).await;
    let (status, body) = send(&t, "GET", path, &headers).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);

    let headers = own_headers("GET", &t.url(path), b"", SystemTime::now());
    let (status, body) = send(&t, "GET", path, &headers).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_signatures_get_403_naming_the_check() {
    let t = TestStack::start().await;
    let path = "/admin/users?limit=1";
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("unsigned", vec![], "missing Authorization"),
        (
            "wrong secret",
            {
                let url = t.url(path);
                blocking(move || botocore_headers("GET", &url, "", "not-the-secret")).await
            },
            "signature does not match",
        ),
        (
            "unknown key",
            gatehouse_admin::sign_request(
                "GET",
                &t.url(path),
                &[],
                b"",
                &Credentials::new("AKIDSOMEONEELSE00001", ADMIN_SECRET_KEY, None, None, "x"),
                "us-east-1",
                SystemTime::now(),
            )
            .unwrap(),
            "unknown access key",
        ),
        (
            "six minutes old",
            own_headers(
                "GET",
                &t.url(path),
                b"",
                SystemTime::now() - Duration::from_secs(360),
            ),
            "more than 5 minutes",
        ),
        (
            "six minutes ahead",
            own_headers(
                "GET",
                &t.url(path),
                b"",
                SystemTime::now() + Duration::from_secs(360),
            ),
            "more than 5 minutes",
        ),
    ];
    for (what, headers, needle) in cases {
        let (status, body) = send(&t, "GET", path, &headers).await;
        assert_eq!(status, 403, "{what}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("request signature rejected"),
            "{what}: {detail}"
        );
        assert!(detail.contains(needle), "{what}: {detail}");
    }
}

#[tokio::test]
async fn a_signature_covers_path_and_query() {
    let t = TestStack::start().await;
    let signed = own_headers("GET", &t.url("/admin/users/usr_a"), b"", SystemTime::now());
    let (status, body) = send(&t, "GET", "/admin/users/usr_b", &signed).await;
    assert_eq!(status, 403, "tampered path: {body}");
    let signed = own_headers(
        "GET",
        &t.url("/admin/users?limit=1"),
        b"",
        SystemTime::now(),
    );
    let (status, _) = send(&t, "GET", "/admin/users?limit=2", &signed).await;
    assert_eq!(status, 403, "tampered query");
    let (status, _) = send(&t, "GET", "/admin/users?limit=1", &signed).await;
    assert_eq!(status, 200, "the untampered request passes");
}

#[tokio::test]
async fn a_principal_outside_the_allowlist_gets_403_from_the_function() {
    let t = TestStack::start_with(Options {
        admin_principals: Some("arn:aws:iam::000000000000:user/someone-else".into()),
        ..Default::default()
    })
    .await;
    let (status, body) = t.admin("GET", "/admin/users", None).await;
    assert_eq!(status, 403);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(ADMIN_PRINCIPAL) && detail.contains("not an allowed admin"),
        "{detail}"
    );
}

struct Counting(Arc<AtomicUsize>);

impl HttpFunction for Counting {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let arn = request.iam.and_then(|i| i.user_arn).unwrap_or_default();
        Box::pin(async move { ApiResponse::json(200, &serde_json::json!({"caller": arn})) })
    }
}

#[tokio::test]
async fn an_unsigned_or_forged_request_never_reaches_a_function() {
    let calls = Arc::new(AtomicUsize::new(0));
    let table = RouteTable::new(vec![(
        Route {
            method: "POST".into(),
            path: "/admin/things/{id}".into(),
            iam_auth: true,
        },
        Arc::new(Counting(Arc::clone(&calls))) as Arc<dyn HttpFunction>,
    )])
    .with_admin_credentials(Some(AdminCredentials {
        access_key_id: ADMIN_ACCESS_KEY.into(),
        secret_access_key: gatehouse::config::Secret::new(ADMIN_SECRET_KEY),
        principal_arn: ADMIN_PRINCIPAL.into(),
        region: "us-east-1".into(),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(table).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::new();
    let url = format!("{base}/admin/things/1");
    let body = br#"{"grant":"admin"}"#;
    let post = |headers: Vec<(String, String)>, body: &'static [u8]| {
        let mut request = http.post(&url).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send()
    };
    // Unsigned, then a body changed after signing, then a method changed after signing.
    assert_eq!(post(vec![], body).await.unwrap().status(), 403);
    let signed = own_headers("POST", &url, body, SystemTime::now());
    let tampered = post(signed.clone(), br#"{"grant":"owner"}"#).await.unwrap();
    assert_eq!(tampered.status(), 403);
    let mut request = http.put(&url).body(&body[..]);
    for (k, v) in &signed {
        request = request.header(k, v);
    }
    assert_eq!(request.send().await.unwrap().status(), 404, "no PUT route");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no function ran");

    // botocore's signature on the same request passes, with the IAM identity filled.
    let url_for_boto = url.clone();
    let headers = blocking(move || {
        botocore_headers(
            "POST",
            &url_for_boto,
            r#"{"grant":"admin"}"#,
            ADMIN_SECRET_KEY,
        )
    })
    .await;
    let response = post(headers, body).await.unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["caller"], ADMIN_PRINCIPAL);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
