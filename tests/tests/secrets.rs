//! Secrets from Secrets Manager, as each function reads them at cold start.

use gatehouse::config::SECRET_SETTINGS;
use gatehouse::secrets::{fetch, secret_id_var};
use gatehouse_e2e::{endpoint, random_suffix, TestStack};

/// Each function holds exactly the secrets its template environment names.
#[tokio::test]
async fn each_function_holds_only_its_own_secrets() {
    let t = TestStack::start().await;
    let held = |binary: &str| -> Vec<&'static str> {
        let settings = t.stack.services_for(binary).unwrap().settings.clone();
        let values = settings.secret_values();
        SECRET_SETTINGS
            .into_iter()
            .filter(|name| values.iter().any(|(held, _)| held == name))
            .collect()
    };
    assert_eq!(
        held("kajabi-webhook"),
        [
            "KAJABI_WEBHOOK_SECRET",
            "KAJABI_URL_TOKENS",
            "TOKEN_SIGNING_KEY"
        ]
    );
    // The default test stack configures no Stripe API key: read, and empty.
    assert_eq!(
        held("stripe-webhook"),
        ["STRIPE_WEBHOOK_SECRETS", "TOKEN_SIGNING_KEY"]
    );
    // Only the two functions that sign hold the session seeds; the one that
    // verifies and the JWKS hold the public halves, which are not secret.
    assert_eq!(held("account-login"), ["SESSION_SIGNING_KEYS"]);
    assert_eq!(held("setup-password"), ["SESSION_SIGNING_KEYS"]);
    assert!(held("account-me").is_empty());
    assert!(held("jwks").is_empty());
    let jwks = t.stack.services_for("jwks").unwrap();
    assert!(jwks.settings.session_public_keys.is_some());
    assert_eq!(
        jwks.session_keys().unwrap().jwks(),
        t.stack.services.session_keys().unwrap().jwks(),
        "the JWKS publishes every key the signers hold"
    );
    assert_eq!(held("email-sender"), ["TOKEN_SIGNING_KEY"]);
    assert!(held("admin-list-users").is_empty());
    assert!(held("outbox-sweeper").is_empty());
    // The harness itself has them all, for the tests' own signing.
    assert!(t.stack.services.settings.secret_values().len() >= 5);
}

/// `make dev` on a moto that kept the last run's secrets writes the new
/// values over them, and the functions read the new ones.
#[tokio::test]
async fn seeding_again_replaces_the_values() {
    let clients = gatehouse::aws::AwsClients::for_endpoint(&endpoint(), "us-east-1").await;
    let prefix = format!("gh-seed-{}", random_suffix());
    let mut settings = TestStack::start()
        .await
        .stack
        .services
        .settings
        .as_ref()
        .clone();
    let first = gatehouse_local::secrets::seed(&clients.secrets, &prefix, &settings)
        .await
        .unwrap();
    settings.stripe_webhook_secrets = vec![gatehouse::config::Secret::new("whsec_rotated")];
    let second = gatehouse_local::secrets::seed(&clients.secrets, &prefix, &settings)
        .await
        .unwrap();
    let name = "STRIPE_WEBHOOK_SECRETS";
    assert_eq!(first[name].arn, second[name].arn, "the same secret");
    assert_ne!(first[name].version, second[name].version);
    let env = [(secret_id_var(name), second[name].arn.clone())];
    let read = fetch(&clients.secrets, &|var| {
        env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    })
    .await
    .unwrap();
    assert_eq!(read[name], "whsec_rotated");
}
