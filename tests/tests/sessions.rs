//! Member sessions end to end: setup and login issue EdDSA sessions, the JWKS
//! verifies them (here and in PyJWT), /account/me computes entitlements now.

use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use gatehouse::config::Secret;
use gatehouse::session::{SessionKeys, SessionSubject};
use gatehouse_e2e::{
    lifecycle, purchase, Auth, Options, TestClock, TestStack, SESSION_AUDIENCE, SESSION_ISSUER,
    SESSION_KEYS,
};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// The keys the stack uses, to verify what it issues.
fn stack_keys() -> SessionKeys {
    SessionKeys::parse(
        &Secret::new(SESSION_KEYS),
        SESSION_ISSUER,
        SESSION_AUDIENCE,
        chrono::Duration::hours(1),
    )
    .unwrap()
}

/// A member who bought the NSSA plan (premium) and set a password.
async fn member(t: &TestStack, name: &str) -> (String, Value) {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let emails = t.wait_emails(&email, 1).await;
    let (token, _) = emails[0].setup_link().unwrap();
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (email, body)
}

async fn login(t: &TestStack, email: &str, password: &str) -> reqwest::Response {
    t.http
        .post(t.url("/account/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn me_with(t: &TestStack, header: (&str, String)) -> (u16, Value) {
    let response = t
        .http
        .get(t.url("/account/me"))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn setup_password_signs_the_member_in() {
    let t = TestStack::start().await;
    let (email, token) = t.bought("setup").await;
    let response = t
        .http
        .post(t.url("/account/setup-password"))
        .json(&json!({"email": email, "token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let session = &body["session"];
    assert_eq!(session["token_type"], "Bearer");
    let jwt = session["access_token"].as_str().unwrap();
    assert!(cookie.starts_with(&format!("gatehouse_session={jwt};")));
    for flag in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let claims = stack_keys().verify(jwt, Utc::now()).unwrap();
    assert_eq!(claims.sub, body["user_id"].as_str().unwrap());
    assert_eq!(claims.email, email);
    assert_eq!(claims.iss, SESSION_ISSUER);
    assert_eq!(claims.aud, SESSION_AUDIENCE);
    assert_eq!(claims.partner.as_deref(), Some("NSSA"));
    assert_eq!(claims.roles, ["free-user", "premium-member"]);
    assert!(claims
        .permissions
        .contains(&"read:premium-content".to_string()));
    assert_eq!(claims.exp - claims.iat, 3600);
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some("test-new"),
        "the newest key signs"
    );
}

#[tokio::test]
async fn login_issues_a_session_and_me_reads_it_by_bearer_or_cookie() {
    let t = TestStack::start().await;
    let (email, _) = member(&t, "login").await;
    let response = login(&t, &email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], email.as_str());
    assert_eq!(body["expires_in"], 3600);
    let jwt = body["access_token"].as_str().unwrap().to_string();

    let (status, by_bearer) = me_with(&t, bearer(&jwt)).await;
    assert_eq!(status, 200, "{by_bearer}");
    let cookie_pair = cookie.split(';').next().unwrap().to_string();
    let (status, by_cookie) = me_with(&t, ("cookie", cookie_pair)).await;
    assert_eq!(status, 200);
    assert_eq!(by_bearer, by_cookie);
    let me = by_bearer;
    assert_eq!(me["profile"]["email"], email.as_str());
    assert_eq!(me["profile"]["is_active"], true);
    assert_eq!(me["profile"]["partner"], "NSSA");
    assert_eq!(me["premium"], true);
    assert_eq!(me["points"], 0);
    assert_eq!(me["roles"], json!(["free-user", "premium-member"]));
    let sub = &me["subscriptions"][0];
    assert_eq!(sub["plan"], "nssa_annual");
    assert_eq!(sub["state"], "active");
    assert_eq!(sub["access"], true);
    assert!(sub["access_until"].is_string(), "{sub}");
}

#[tokio::test]
async fn me_computes_entitlements_now_not_from_the_token() {
    let t = TestStack::start().await;
    let (email, setup) = member(&t, "now").await;
    let jwt = setup["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The token says premium; then the subscription expires.
    let (_, r) = t
        .post_kajabi(
            &lifecycle("expired", &t.id("now-expired"), &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (status, me) = me_with(&t, bearer(&jwt)).await;
    assert_eq!(status, 200);
    assert_eq!(me["premium"], false, "{me}");
    assert_eq!(me["roles"], json!(["free-user"]));
    assert_eq!(me["permissions"], json!(["read:basic-content"]));
    assert_eq!(me["subscriptions"][0]["state"], "expired");
    assert_eq!(me["subscriptions"][0]["access"], false);
    // A new login carries the new roles.
    let body: Value = login(&t, &email, PASSWORD).await.json().await.unwrap();
    assert_eq!(body["roles"], json!(["free-user"]));
}

#[tokio::test]
async fn expired_tampered_foreign_and_missing_sessions_get_401() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        clock: Some(clock.clock()),
        ..Default::default()
    })
    .await;
    let (_, setup) = member(&t, "reject").await;
    let jwt = setup["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(me_with(&t, bearer(&jwt)).await.0, 200);

    // Tampered: the payload changed, the signature did not.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
    claims["roles"] = json!(["admin"]);
    let forged_payload = base64_url_encode(claims.to_string().as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let (status, body) = me_with(&t, bearer(&tampered)).await;
    assert_eq!(status, 401, "{body}");

    // Signed with a key of the right kid that is not ours.
    let impostor = SessionKeys::parse(
        &Secret::new("test-new:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        SESSION_ISSUER,
        SESSION_AUDIENCE,
        chrono::Duration::hours(1),
    )
    .unwrap();
    let forged = impostor
        .issue(
            &SessionSubject {
                user_id: claims["sub"].as_str().unwrap().into(),
                email: claims["email"].as_str().unwrap().into(),
                roles: ["admin".to_string()].into(),
                permissions: Default::default(),
                partner: None,
            },
            Utc::now(),
        )
        .unwrap();
    assert_eq!(me_with(&t, bearer(&forged.token)).await.0, 401);
    assert_eq!(me_with(&t, bearer("garbage")).await.0, 401);
    let (status, body) = me_with(&t, ("x-nothing", String::new())).await;
    assert_eq!(status, 401);
    assert!(
        body["detail"].as_str().unwrap().contains("no session"),
        "{body}"
    );

    // Expired: one hour later the same token is refused.
    clock.advance(chrono::Duration::minutes(61));
    let response = t
        .http
        .get(t.url("/account/me"))
        .header("authorization", format!("Bearer {jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401_in_about_the_same_time() {
    let t = TestStack::start().await;
    let (email, _) = member(&t, "same").await;
    let mut wrong_times = Vec::new();
    let mut unknown_times = Vec::new();
    let mut answers = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        let response = login(&t, &email, "wrong password here").await;
        wrong_times.push(started.elapsed());
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
        let started = Instant::now();
        let response = login(&t, &t.email(&format!("nobody{i}")), "wrong password here").await;
        unknown_times.push(started.elapsed());
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 401);
    wrong_times.sort();
    unknown_times.sort();
    let (wrong, unknown) = (wrong_times[1], unknown_times[1]);
    // Skipping the hash for unknown addresses would make them several times faster.
    assert!(
        unknown * 3 >= wrong,
        "unknown address answered in {unknown:?}, wrong password in {wrong:?}"
    );
}

/// No account enumeration: an account that has no password yet answers exactly
/// as an unknown address does (status, body and headers), and the shared
/// answer carries the hint for a member who has not set one.
#[tokio::test]
async fn an_account_without_a_password_answers_like_an_unknown_address() {
    let t = TestStack::start().await;
    let email = t.email("inactive");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("inactive"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_string()))
            .collect();
        headers.sort();
        (status, headers, response.text().await.unwrap())
    };
    let no_password = answer(login(&t, &email, PASSWORD).await).await;
    let unknown = answer(login(&t, &t.email("nobody"), PASSWORD).await).await;
    assert_eq!(no_password, unknown);
    assert_eq!(no_password.0, 401);
    let body: Value = serde_json::from_str(&no_password.2).unwrap();
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/invalid-credentials"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("setup link"),
        "{body}"
    );
}

#[tokio::test]
async fn repeated_failures_are_limited_per_address_and_per_ip() {
    let t = TestStack::start_with(Options {
        login_limits: (3, 5),
        ..Default::default()
    })
    .await;
    let (email, _) = member(&t, "limited").await;
    for _ in 0..3 {
        assert_eq!(login(&t, &email, "wrong password here").await.status(), 401);
    }
    // Now even the right password waits.
    let response = login(&t, &email, PASSWORD).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/too-many-attempts"
    );

    // Per IP: two more failures on other addresses reach the IP's limit of 5.
    for i in 0..2 {
        let status = login(&t, &t.email(&format!("spray{i}")), "wrong password here")
            .await
            .status();
        assert_eq!(status, 401);
    }
    let status = login(&t, &t.email("spray-next"), "wrong password here")
        .await
        .status();
    assert_eq!(status, 429, "the source IP is limited across addresses");
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_limit() {
    let t = TestStack::start_with(Options {
        login_limits: (3, 100),
        ..Default::default()
    })
    .await;
    let (email, _) = member(&t, "parallel").await;
    let attempts = (0..10).map(|_| login(&t, &email, "wrong password here"));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        3,
        "exactly the limit got a guess: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7);
}

#[tokio::test]
async fn a_success_gives_its_attempt_back() {
    let t = TestStack::start_with(Options {
        login_limits: (2, 100),
        ..Default::default()
    })
    .await;
    let (email, _) = member(&t, "gives-back").await;
    for _ in 0..5 {
        assert_eq!(login(&t, &email, PASSWORD).await.status(), 200);
    }
    assert_eq!(login(&t, &email, "wrong password here").await.status(), 401);
    assert_eq!(login(&t, &email, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn login_rejects_bad_input_specifically() {
    let t = TestStack::start().await;
    let (status, body) = t
        .post_json(
            "/account/login",
            &json!({"email": "not-an-email", "password": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "https://gatehouse.dev/problems/invalid-email");
    let (status, _) = t
        .post_json("/account/login", &json!({"email": "a@b.example"}))
        .await;
    assert_eq!(status, 400, "missing password");
    let response = t
        .http
        .post(t.url("/account/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn jwks_publishes_both_keys_and_old_sessions_stay_valid() {
    let t = TestStack::start().await;
    let (_, setup) = member(&t, "rotate").await;
    let response = t
        .http
        .get(t.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwks: Value = response.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["test-new", "test-old"]);
    assert!(jwks["keys"][0].get("d").is_none(), "never the private part");

    // A session signed before the rotation, with the old key alone, still works.
    let old_only = SessionKeys::parse(
        &Secret::new(SESSION_KEYS.split(',').next().unwrap()),
        SESSION_ISSUER,
        SESSION_AUDIENCE,
        chrono::Duration::hours(1),
    )
    .unwrap();
    let claims = stack_keys()
        .verify(
            setup["session"]["access_token"].as_str().unwrap(),
            Utc::now(),
        )
        .unwrap();
    let old = old_only
        .issue(
            &SessionSubject {
                user_id: claims.sub,
                email: claims.email,
                roles: Default::default(),
                permissions: Default::default(),
                partner: None,
            },
            Utc::now(),
        )
        .unwrap();
    assert_eq!(old.kid, "test-old");
    assert_eq!(me_with(&t, bearer(&old.token)).await.0, 200);
}

#[tokio::test]
async fn pyjwt_verifies_a_session_using_only_the_jwks() {
    let t = TestStack::start().await;
    let (email, setup) = member(&t, "pyjwt").await;
    let jwt = setup["session"]["access_token"].as_str().unwrap();
    let jwks_url = t.url("/.well-known/jwks.json");
    let run = move |token: &str| {
        let python = gatehouse_local::env::workspace_root().join(".venv/local/bin/python");
        let script = gatehouse_local::env::workspace_root().join("tests/jwt/verify_session.py");
        Command::new(python)
            .arg(script)
            .arg(&jwks_url)
            .arg(token)
            .arg(SESSION_AUDIENCE)
            .arg(SESSION_ISSUER)
            .output()
            .expect("the project venv's python with PyJWT (make test installs it)")
    };
    let jwt_owned = jwt.to_string();
    let first = run.clone();
    let output = tokio::task::spawn_blocking(move || first(&jwt_owned))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "PyJWT refused the session: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["roles"], json!(["free-user", "premium-member"]));
    assert_eq!(claims["kid"], "test-new");

    // The same library refuses a token whose payload was changed.
    let parts: Vec<&str> = jwt.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url_encode(b"{\"sub\":\"x\"}"),
        parts[2]
    );
    let output = tokio::task::spawn_blocking(move || run(&tampered))
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "PyJWT must refuse a tampered token"
    );
}

#[tokio::test]
async fn setup_page_is_served_with_a_strict_policy() {
    let t = TestStack::start().await;
    let response = t.http.get(t.url("/account/setup")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Set your password"));
    assert!(html.contains("data-app-url=\"http://app.test/dashboard\""));
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn me_shows_the_points_balance_and_its_ledger() {
    let t = TestStack::start().await;
    let (email, setup) = member(&t, "points").await;
    let jwt = setup["session"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let completion = json!({"event_type": "form.submitted", "event_id": t.id("done"),
        "data": {"form": {"id": "form_1"}, "submission": {"id": "s1",
            "fields": {"email": email, "course_name": "AI Foundations for Educators"}}}});
    let (_, r) = t
        .post_kajabi(&completion.to_string(), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (status, me) = me_with(&t, bearer(&jwt)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["points"], 20);
    let ledger = &me["points_ledger"];
    assert_eq!(
        ledger["entries"][0]["course_id"],
        "ai_foundations_for_educators"
    );
    assert_eq!(ledger["entries"][0]["points"], 20);
    assert_eq!(ledger["next"], Value::Null, "one page");
    let (status, bad) = t
        .http
        .get(t.url("/account/me?ledger_after=course%23nope"))
        .header("authorization", format!("Bearer {jwt}"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400, "{:?}", bad.text().await);
}
