//! The password-setup page in Debian's headless Chromium, driven by
//! playwright-core (`tests/browser/setup_journey.mjs`) against the local stack.
//! `make test` installs Chromium and the npm package. Screenshots of each state
//! land in `target/browser/`.

use std::path::PathBuf;
use std::process::Command;

use gatehouse::config::Secret;
use gatehouse::session::SessionKeys;
use gatehouse_e2e::{
    purchase, Auth, Options, TestClock, TestStack, SESSION_AUDIENCE, SESSION_ISSUER, SESSION_KEYS,
};
use serde_json::Value;

fn root() -> PathBuf {
    gatehouse_local::env::workspace_root()
}

/// Runs one scenario of the browser script and returns what it saw.
async fn drive(scenario: &str, link: String, app_url: String) -> Value {
    let scenario = scenario.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(root().join("tests/browser"))
            .arg("setup_journey.mjs")
            .arg(&scenario)
            .arg(&link)
            .arg(&app_url)
            .arg(root().join("target/browser"))
            .output()
    })
    .await
    .unwrap()
    .expect("node runs (make test installs Node packages and Chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser scenario failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("the script prints one JSON object")
}

async fn bought(t: &TestStack, name: &str) -> (String, String) {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let sent = t.wait_emails(&email, 1).await;
    let link = sent[0]
        .setup_url()
        .expect("the welcome email carries a setup link");
    (email, link)
}

#[tokio::test]
async fn a_member_sets_a_password_in_the_browser_and_lands_signed_in() {
    let clock = TestClock::new();
    let t = TestStack::start_with(Options {
        urls_from_listener: true,
        clock: Some(clock.clock()),
        ..Default::default()
    })
    .await;
    let app_url = t.url("/account/me");

    // The journey: open the emailed link, trip over a mismatched confirmation,
    // then set the password and land on APP_URL with a session cookie.
    let (email, link) = bought(&t, "browser").await;
    assert!(link.starts_with(&t.url("/account/setup#token=")), "{link}");
    let seen = drive("journey", link, app_url.clone()).await;
    assert_eq!(seen["email_shown"], email.as_str());
    assert_eq!(
        seen["fragment_cleared"], true,
        "the token leaves the address bar"
    );
    assert_eq!(seen["mismatch_error"], "The passwords do not match.");
    // Landed on APP_URL, with the session in the fragment for apps on other origins.
    let landed = seen["landed_on"].as_str().unwrap();
    let fragment = landed
        .strip_prefix(&format!("{app_url}#access_token="))
        .unwrap_or_else(|| panic!("landed on {landed}"));
    let token = fragment.split('&').next().unwrap();
    let claims = SessionKeys::parse(
        &Secret::new(SESSION_KEYS),
        SESSION_ISSUER,
        SESSION_AUDIENCE,
        chrono::Duration::hours(1),
    )
    .unwrap()
    .verify(token, clock.clock()())
    .unwrap();
    assert_eq!(claims.email, email);
    assert_eq!(seen["cookie"]["httpOnly"], true);
    assert_eq!(seen["cookie"]["secure"], true);
    assert_eq!(seen["cookie"]["sameSite"], "Lax");
    assert_eq!(seen["cookie_visible_to_script"], false);
    assert_eq!(seen["me"]["status"], 200, "{seen}");
    assert_eq!(seen["me"]["body"]["profile"]["email"], email.as_str());
    assert_eq!(seen["me"]["body"]["premium"], true);
    assert_eq!(seen["csp_violations"], serde_json::json!([]));
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    assert_eq!(
        gatehouse::store::attr::get_bool(user, "is_active"),
        Some(true)
    );

    // An expired link: the page says so and sends a new one on request.
    let (other, link) = bought(&t, "browser-expired").await;
    clock.advance(chrono::Duration::hours(25));
    let seen = drive("expired", link, app_url).await;
    assert!(
        seen["link_problem"].as_str().unwrap().contains("expired"),
        "{seen}"
    );
    assert!(seen["resend_status"]
        .as_str()
        .unwrap()
        .contains("a new link is on its way"));
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&other).unwrap();
    assert_eq!(
        gatehouse::store::attr::get_bool(user, "is_active"),
        Some(false),
        "an expired link sets nothing"
    );
    let sent = t.wait_emails(&other, 2).await;
    assert_ne!(sent[0].setup_link(), sent[1].setup_link(), "a fresh link");
    for shot in [
        "journey-1-form",
        "journey-2-mismatch",
        "journey-3-signed-in",
        "expired-2-link-problem",
        "expired-3-resent",
    ] {
        let path = root().join(format!("target/browser/{shot}.png"));
        assert!(path.exists(), "missing screenshot {}", path.display());
    }
}
