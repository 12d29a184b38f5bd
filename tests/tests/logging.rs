//! Secrets, tokens, passwords, raw bodies and member emails never reach logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use gatehouse_e2e::{purchase, Auth, TestStack, KAJABI_SECRET, TOKEN_KEY, URL_TOKENS};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_outcomes_but_no_secrets_or_pii() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .init();

    let t = TestStack::start().await;
    let email = t.email("private.person");
    let body = purchase(&t.id("evt"), &email, "off_456");
    let signature =
        gatehouse::signature::hmac_sha256_hex(KAJABI_SECRET.as_bytes(), body.as_bytes());
    t.post_kajabi(&body, Auth::Signature).await;
    t.post_kajabi(&body, Auth::Token(URL_TOKENS[0])).await;
    t.post_kajabi(&body, Auth::Token("wrong-token-value")).await;
    let (token, _) = t.wait_emails(&email, 1).await[0].setup_link().unwrap();
    let password = "my very secret password";
    t.post_json(
        "/account/setup-password",
        &json!({"email": email, "token": token, "password": password}),
    )
    .await;
    t.post_json("/account/resend-setup-email", &json!({"email": email}))
        .await;
    // Sessions: a login, a wrong password, and /account/me with the token.
    let (_, signed_in) = t
        .post_json(
            "/account/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    let session = signed_in["access_token"].as_str().unwrap().to_string();
    let wrong_password = "not my password at all";
    t.post_json(
        "/account/login",
        &json!({"email": email, "password": wrong_password}),
    )
    .await;
    let me = t
        .http
        .get(t.url("/account/me"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let tampered = format!("{session}x");
    t.http
        .get(t.url("/account/me"))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook processed"),
        "outcomes are logged: {logs}"
    );
    assert!(logs.contains("event_key"), "log lines carry the event key");
    assert!(
        logs.contains("signed_in"),
        "login outcomes are logged: {logs}"
    );
    for secret in [
        KAJABI_SECRET,
        URL_TOKENS[0],
        "wrong-token-value",
        TOKEN_KEY,
        &signature,
        &token,
        password,
        wrong_password,
        &session,
        // The signature part alone must not show either.
        session.rsplit('.').next().unwrap(),
        gatehouse_e2e::SESSION_KEYS,
        &email,
        "private.person",
        "Lovelace",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret:?}");
    }
}
