//! The admin CLI (`gatehouse_admin::run`, what the binary runs) against the
//! local stack: every action, tables by default, JSON with `--json`.

use gatehouse_e2e::{lifecycle, purchase, Auth, TestStack};
use serde_json::{json, Value};

async fn cli(t: &TestStack, args: &str) -> gatehouse_admin::Outcome {
    t.cli(&args.split_whitespace().collect::<Vec<_>>()).await
}

async fn ok(t: &TestStack, args: &str) -> String {
    let out = cli(t, args).await;
    assert_eq!(out.code, 0, "{args}: {}", out.stderr);
    out.stdout
}

#[tokio::test]
async fn every_action_through_the_cli() {
    let t = TestStack::start().await;
    for i in 0..3 {
        let email = t.email(&format!("cli{i}"));
        t.post_kajabi(
            &purchase(&t.id(&format!("cli{i}")), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    }
    // A pending event to replay: a cancel for someone with no Kajabi purchase yet.
    let stranger = t.email("stranger");
    t.post_kajabi(
        &lifecycle("canceled", &t.id("stranger"), &stranger, json!({})),
        Auth::Signature,
    )
    .await;

    // users list: a table, and every page with --all.
    let table = ok(&t, "users list --limit 2 --all").await;
    assert!(table.starts_with("USER ID"), "{table}");
    for i in 0..3 {
        assert!(table.contains(&t.email(&format!("cli{i}"))), "{table}");
    }
    let json_page: Value =
        serde_json::from_str(&ok(&t, "--json users list --limit 2").await).unwrap();
    assert_eq!(json_page["items"].as_array().unwrap().len(), 2);
    assert!(json_page["next_cursor"].is_string());
    let id = json_page["items"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();

    // users show / verify / sync / resend / grant / revoke.
    let shown = ok(&t, &format!("users show {id}")).await;
    assert!(shown.contains("premium   true"), "{shown}");
    assert!(shown.contains("nssa_annual"), "{shown}");
    let verified = ok(&t, &format!("users verify {id}")).await;
    assert!(verified.contains("PROVIDER SAYS"), "{verified}");
    let synced = ok(&t, &format!("users sync {id}")).await;
    assert!(
        synced.contains("false"),
        "nothing to apply without a Kajabi API: {synced}"
    );
    let resent = ok(&t, &format!("users resend-setup-email {id}")).await;
    assert!(resent.starts_with("sent a new setup link"), "{resent}");
    let granted = ok(&t, &format!("users grant {id} admin --reason ops")).await;
    assert!(
        granted.contains("grant admin") && granted.contains("admin,free-user"),
        "{granted}"
    );
    let revoked = ok(
        &t,
        &format!("users revoke {id} premium-member --reason review"),
    )
    .await;
    assert!(revoked.ends_with("roles now admin,free-user"), "{revoked}");

    // events list / show / replay.
    let events = ok(&t, "events list --status pending").await;
    assert!(events.contains("member.subscription.canceled"), "{events}");
    let failed: Value =
        serde_json::from_str(&ok(&t, "--json events list --status pending").await).unwrap();
    let key = failed["items"][0]["key"].as_str().unwrap().to_string();
    let shown = ok(&t, &format!("events show {key}")).await;
    assert!(shown.contains(&stranger), "{shown}");
    let replayed = ok(&t, &format!("events replay {key}")).await;
    assert!(replayed.contains("pending -> pending"), "{replayed}");
    let audit = ok(&t, "events list --provider admin").await;
    for action in [
        "admin.roles",
        "admin.resend-setup-email",
        "admin.sync",
        "admin.replay",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }

    // Errors: a specific message and exit status 1; usage errors exit 2.
    let missing = cli(&t, "users show usr_nobody").await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with("error 404"),
        "{}",
        missing.stderr
    );
    let bad = cli(&t, "users list --limit 0").await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("limit"), "{}", bad.stderr);
    assert_eq!(cli(&t, "users frobnicate").await.code, 2);
}
