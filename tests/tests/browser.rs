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
    run_script(
        "setup_journey.mjs",
        vec![
            scenario.to_string(),
            link,
            app_url,
            root().join("target/browser").display().to_string(),
        ],
    )
    .await
}

/// Runs a browser script with `args`: what it printed, as JSON.
async fn run_script(script: &'static str, args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(root().join("tests/browser"))
            .arg(script)
            .args(&args)
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

/// Pay-then-activate in the browser: sign in, the plans page, checkout on the
/// local fake's Stripe page, "Payment successful. Subscription active until …"
/// on the return page, the account page, cancel, and the account page shows
/// "canceled, access until …" once Stripe's webhook has changed the state.
#[tokio::test]
async fn a_member_pays_on_the_plans_page_and_cancels_on_the_account_page() {
    use gatehouse_local::fake_payments::{FakePayments, WebhookTarget};
    let fake = FakePayments::start(
        gatehouse_e2e::STRIPE_API_KEY,
        gatehouse_e2e::PAYSTACK_SECRET,
    )
    .await;
    let t = TestStack::start_with(Options {
        urls_from_listener: true,
        stripe_api: Some(fake.base_url.clone()),
        paystack_api: Some(fake.base_url.clone()),
        ..Default::default()
    })
    .await;
    fake.send_webhooks_to(WebhookTarget {
        base_url: t.stack.base_url(),
        stripe_secret: gatehouse_e2e::STRIPE_SECRETS[0].into(),
        paystack_secret: gatehouse_e2e::PAYSTACK_SECRET.into(),
    });
    fake.send_subscription_updates(true);
    let (email, link) = bought(&t, "browser-buyer").await;
    let token = link
        .split("#token=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_string();
    let password = "correct horse battery staple";
    let (status, body) = t
        .post_json(
            "/account/setup-password",
            &serde_json::json!({"email": email, "token": token, "password": password}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = run_script(
        "checkout_journey.mjs",
        vec![
            t.stack.base_url(),
            email.clone(),
            password.to_string(),
            root().join("target/browser").display().to_string(),
        ],
    )
    .await;
    assert!(seen["checkout_url"]
        .as_str()
        .unwrap()
        .starts_with(&fake.base_url));
    assert!(seen["return_text"]
        .as_str()
        .unwrap()
        .starts_with("Payment successful. Subscription active until "));
    assert!(seen["cancel_message"]
        .as_str()
        .unwrap()
        .starts_with("cancellation requested; access until "));
    assert!(
        seen["after_cancel"]
            .as_str()
            .unwrap()
            .contains("Premium Monthly: canceled, access until "),
        "{seen}"
    );
    assert!(
        seen["payments"].as_str().unwrap().contains("succeeded"),
        "{seen}"
    );
    assert!(
        seen["notices"].as_str().unwrap().contains("canceled"),
        "{seen}"
    );
    assert_eq!(seen["csp_violations"], serde_json::json!([]));
    for shot in [
        "checkout-1-plans",
        "checkout-2-provider",
        "checkout-3-return",
        "checkout-4-account",
        "checkout-5-canceled",
    ] {
        let path = root().join(format!("target/browser/{shot}.png"));
        assert!(path.exists(), "missing screenshot {}", path.display());
    }
}
