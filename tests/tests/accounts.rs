//! Password setup and resending the setup link, end to end.

use gatehouse::store::attr::{get_bool, get_s};
use gatehouse_e2e::{Options, TestClock, TestStack};
use serde_json::json;

#[tokio::test]
async fn setup_activates_once_with_argon2id() {
    let t = TestStack::start().await;
    let (email, token) = t.bought("setup").await;
    let (status, body) = t.post_json("/account/setup-password", &json!({"email": email.to_uppercase(), "token": token, "password": "correct horse battery"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "activated");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    assert_eq!(get_bool(user, "is_active"), Some(true));
    assert!(get_s(user, "password_hash")
        .unwrap()
        .starts_with("$argon2id$"));
    // The token works once.
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/invalid-setup-link"
    );
}

#[tokio::test]
async fn wrong_used_and_unknown_get_one_generic_answer() {
    let t = TestStack::start().await;
    let (email, token) = t.bought("generic").await;
    let wrong = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": "A".repeat(43), "password": "correct horse battery"}),
        )
        .await;
    let unknown = t.post_json("/account/setup-password", &json!({"email": t.email("nobody"), "token": token, "password": "correct horse battery"})).await;
    let bad_email = t
        .post_json(
            "/account/setup-password",
            &json!({"email": "nope", "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(wrong.0, 400);
    assert_eq!(wrong, unknown, "same status and body");
    assert_eq!(wrong, bad_email);
}

#[tokio::test]
async fn password_rules_are_specific_400s() {
    let t = TestStack::start().await;
    let (email, token) = t.bought("rules").await;
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "short"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("at least 10"),
        "{body}"
    );
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "x".repeat(129)}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("at most 128"),
        "{body}"
    );
    let (status, body) = t
        .post_json("/account/setup-password", &json!({"email": email}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("missing field"),
        "{body}"
    );
    let r = t
        .http
        .post(t.url("/account/setup-password"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = t
        .http
        .post(t.url("/account/setup-password"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // After all that, the token still works.
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tokens_expire_after_24_hours() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        clock: Some(clock.clock()),
        ..Options::default()
    })
    .await;
    let (email, token) = t.bought("expiry").await;
    clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/invalid-setup-link"
    );
}

#[tokio::test]
async fn resend_invalidates_older_tokens_and_answers_the_same_for_everyone() {
    let t = TestStack::start().await;
    let (email, old_token) = t.bought("resend").await;
    let existing = t
        .post_json("/account/resend-setup-email", &json!({"email": email}))
        .await;
    let unknown = t
        .post_json(
            "/account/resend-setup-email",
            &json!({"email": t.email("stranger")}),
        )
        .await;
    assert_eq!(existing.0, 202);
    assert_eq!(
        existing, unknown,
        "same status and body whether or not the address exists"
    );

    let emails = t.wait_emails(&email, 2).await;
    let (new_token, _) = emails[1].setup_link().unwrap();
    assert_ne!(new_token, old_token);
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": old_token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 400, "the older link no longer works");
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": new_token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(t.emails_to(&t.email("stranger")).await.is_empty());
}

#[tokio::test]
async fn resend_is_limited_to_three_per_address_per_hour() {
    let t = TestStack::start().await;
    let (email, _) = t.bought("limit").await;
    for _ in 0..5 {
        let (status, _) = t
            .post_json("/account/resend-setup-email", &json!({"email": email}))
            .await;
        assert_eq!(status, 202);
    }
    t.wait_emails(&email, 4).await;
    t.drain_queue().await;
    let snap = t.snapshot().await;
    assert_eq!(
        snap.jobs_to(&email).len(),
        4,
        "the purchase welcome plus three resends"
    );
}

#[tokio::test]
async fn resend_has_a_global_limit() {
    let t = TestStack::start_with(Options {
        resend_global_per_minute: 2,
        ..Options::default()
    })
    .await;
    let (a, _) = t.bought("ga").await;
    let (b, _) = t.bought("gb").await;
    let (c, _) = t.bought("gc").await;
    for email in [&a, &b, &c] {
        let (status, _) = t
            .post_json("/account/resend-setup-email", &json!({"email": email}))
            .await;
        assert_eq!(status, 202);
    }
    let snap = t.snapshot().await;
    let resent: usize = [&a, &b, &c].iter().map(|e| snap.jobs_to(e).len() - 1).sum();
    // The minute bucket can roll over mid-test; at most one extra then.
    assert!(
        (2..=3).contains(&resent),
        "global limit of 2 per minute, got {resent}"
    );
}

#[tokio::test]
async fn resend_for_an_active_account_sends_nothing() {
    let t = TestStack::start().await;
    let (email, token) = t.bought("active").await;
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = t
        .post_json("/account/resend-setup-email", &json!({"email": email}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(t.snapshot().await.jobs_to(&email).len(), 1);
}
