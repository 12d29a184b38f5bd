//! Mutating admin actions: Idempotency-Key, the audit trail, resend and roles.

use gatehouse_e2e::{lifecycle, purchase, Auth, Options, TestStack, ADMIN_PRINCIPAL};
use serde_json::{json, Value};

async fn member(t: &TestStack, name: &str) -> (String, String) {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, users) = t
        .admin("GET", &format!("/admin/users?email_prefix={name}."), None)
        .await;
    let id = users["items"][0]["user_id"].as_str().unwrap().to_string();
    (email, id)
}

async fn roles_of(t: &TestStack, id: &str) -> Vec<String> {
    let (status, user) = t.admin("GET", &format!("/admin/users/{id}"), None).await;
    assert_eq!(status, 200, "{user}");
    serde_json::from_value(user["roles"].clone()).unwrap()
}

async fn audit(t: &TestStack, action: &str) -> Vec<Value> {
    let (_, events) = t
        .admin(
            "GET",
            &format!("/admin/events?provider=admin&type=admin.{action}"),
            None,
        )
        .await;
    events["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn mutating_actions_need_an_idempotency_key() {
    let t = TestStack::start().await;
    let (_, id) = member(&t, "nokey").await;
    let (status, body) = t
        .admin(
            "POST",
            &format!("/admin/users/{id}/resend-setup-email"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Idempotency-Key"));
    let (status, _) = t
        .admin_with_key(
            "POST",
            &format!("/admin/users/{id}/roles"),
            Some(&json!({"grant": "admin", "reason": "x"})),
            Some("has spaces"),
        )
        .await;
    assert_eq!(status, 400, "a malformed key");
    // A key already used for one change cannot be reused for another.
    let roles = format!("/admin/users/{id}/roles");
    let (status, _) = t
        .admin_with_key(
            "POST",
            &roles,
            Some(&json!({"grant": "admin", "reason": "x"})),
            Some("key-1"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = t
        .admin_with_key(
            "POST",
            &roles,
            Some(&json!({"revoke": "admin", "reason": "x"})),
            Some("key-1"),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/idempotency-key-reused"
    );
}

#[tokio::test]
async fn resend_issues_a_new_link_once_per_key_and_is_audited() {
    let t = TestStack::start().await;
    let (email, id) = member(&t, "resend").await;
    let first_link = t.wait_emails(&email, 1).await[0].setup_link().unwrap();
    let path = format!("/admin/users/{id}/resend-setup-email");
    let (status, first) = t
        .admin_with_key("POST", &path, None, Some("resend-1"))
        .await;
    assert_eq!(status, 202, "{first}");
    let sent = t.wait_emails(&email, 2).await;
    assert_ne!(sent[1].setup_link().unwrap(), first_link, "a fresh link");

    // The same key again: the same answer, nothing new.
    let (status, again) = t
        .admin_with_key("POST", &path, None, Some("resend-1"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(again, first);
    let trail = audit(&t, "resend-setup-email").await;
    assert_eq!(trail.len(), 1, "one change, one audit record");
    let reference = trail[0]["ref"].as_str().unwrap();
    let (_, record) = t
        .admin("GET", &format!("/admin/events/{reference}"), None)
        .await;
    assert_eq!(record["payload"]["body"]["principal"], ADMIN_PRINCIPAL);
    assert_eq!(record["user_id"], id.as_str());

    // The older link no longer works; the new one does.
    let (token, _) = first_link;
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 400);
    let (token, _) = sent[1].setup_link().unwrap();
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);

    // Activated now: 409. Unknown: 404.
    let (status, body) = t
        .admin_with_key("POST", &path, None, Some("resend-2"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["type"],
        "https://gatehouse.dev/problems/already-activated"
    );
    let (status, _) = t
        .admin_with_key(
            "POST",
            "/admin/users/usr_none/resend-setup-email",
            None,
            Some("resend-3"),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_grant_survives_webhooks_until_revoked() {
    let t = TestStack::start().await;
    let (email, id) = member(&t, "grant").await;
    let path = format!("/admin/users/{id}/roles");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"grant": "admin", "reason": "runs the community"})),
            Some("grant-admin-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["roles_after"],
        json!(["admin", "free-user", "premium-member"])
    );
    // Webhooks move the subscription; the grant stays.
    for kind in ["canceled", "expired"] {
        let (_, r) = t
            .post_kajabi(
                &lifecycle(kind, &t.id(&format!("grant-{kind}")), &email, json!({})),
                Auth::Signature,
            )
            .await;
        assert_eq!(r["status"], "processed", "{r}");
    }
    assert_eq!(roles_of(&t, &id).await, ["admin", "free-user"]);
    // Until an admin revokes it.
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"revoke": "admin", "reason": "stepped down"})),
            Some("revoke-admin-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles_of(&t, &id).await, ["free-user"]);
    let trail = audit(&t, "roles").await;
    assert_eq!(trail.len(), 2);
}

#[tokio::test]
async fn a_revoke_of_a_plan_role_holds_until_the_plan_changes() {
    let t = TestStack::start().await;
    let (email, id) = member(&t, "revoke").await;
    let path = format!("/admin/users/{id}/roles");
    let change = json!({"revoke": "premium-member", "reason": "chargeback under review"});
    let (status, first) = t
        .admin_with_key("POST", &path, Some(&change), Some("revoke-1"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(roles_of(&t, &id).await, ["free-user"]);
    // A replay of the same signed change does nothing more.
    let (_, again) = t
        .admin_with_key("POST", &path, Some(&change), Some("revoke-1"))
        .await;
    assert_eq!(again, first);
    assert_eq!(audit(&t, "roles").await.len(), 1);
    // An event that does not touch the plan (a duplicate delivery) keeps the revoke.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("revoke"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "duplicate");
    assert_eq!(roles_of(&t, &id).await, ["free-user"]);
    // The next provider event on that plan lifts it.
    let (_, r) = t
        .post_kajabi(
            &lifecycle("renewed", &t.id("revoke-renewed"), &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(roles_of(&t, &id).await, ["free-user", "premium-member"]);

    // Revoked again, then lifted by a repurchase (a new purchase event on that plan).
    let (status, _) = t
        .admin_with_key("POST", &path, Some(&change), Some("revoke-2"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(roles_of(&t, &id).await, ["free-user"]);
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("revoke-again"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(roles_of(&t, &id).await, ["free-user", "premium-member"]);
}

#[tokio::test]
async fn bad_role_changes_are_400s() {
    let t = TestStack::start().await;
    let (_, id) = member(&t, "badroles").await;
    let path = format!("/admin/users/{id}/roles");
    for (i, (body, needle)) in [
        (json!({"grant": "wizard", "reason": "x"}), "wizard"),
        (json!({"grant": "admin"}), "reason"),
        (
            json!({"grant": "admin", "revoke": "admin", "reason": "x"}),
            "exactly one",
        ),
        (
            json!({"revoke": "free-user", "reason": "x"}),
            "cannot be revoked",
        ),
        (
            json!({"grant": "admin", "reason": "x", "extra": 1}),
            "unknown field",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer) = t
            .admin_with_key("POST", &path, Some(&body), Some(&format!("bad-{i}")))
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    let (status, _) = t
        .admin_with_key(
            "POST",
            "/admin/users/usr_nobody/roles",
            Some(&json!({"grant": "admin", "reason": "x"})),
            Some("bad-unknown"),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn replay_reruns_a_failed_event_once_the_cause_is_fixed() {
    let t = TestStack::start().await;
    let email = t.email("replay");
    // A cancel of a plan the member has not bought (yet): recorded as failed.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("replay-life"), &email, "off_lifetime"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let cancel = lifecycle("canceled", &t.id("replay-cancel"), &email, json!({}));
    let (_, r) = t.post_kajabi(&cancel, Auth::Signature).await;
    assert_eq!(r["status"], "failed", "{r}");
    let (_, failed) = t.admin("GET", "/admin/events?status=failed", None).await;
    let reference = failed["items"][0]["ref"].as_str().unwrap().to_string();
    let path = format!("/admin/events/{reference}/replay");

    // Replayed before the fix: still failed, with the reason.
    let (status, body) = t
        .admin_with_key("POST", &path, None, Some("replay-1"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "failed");

    // The member buys; the replay now applies the cancel.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("replay"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let (status, first) = t
        .admin_with_key("POST", &path, None, Some("replay-2"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["old_status"], "failed");
    assert_eq!(first["new_status"], "processed");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let id = gatehouse::store::attr::get_s(user, "user_id").unwrap();
    let annual = snap
        .subscriptions_of(id)
        .into_iter()
        .find(|s| gatehouse::store::attr::get_s(s, "plan_id") == Some("nssa_annual"))
        .expect("the annual plan");
    assert_eq!(
        gatehouse::store::attr::get_s(annual, "state"),
        Some("canceled")
    );

    // The same key answers the same; a new key finds nothing to replay.
    let (_, again) = t
        .admin_with_key("POST", &path, None, Some("replay-2"))
        .await;
    assert_eq!(again, first);
    let (status, body) = t
        .admin_with_key("POST", &path, None, Some("replay-3"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("processed"));
    let (status, _) = t
        .admin_with_key(
            "POST",
            "/admin/events/c3RyaXBlOm5vbmU/replay",
            None,
            Some("replay-4"),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .admin_with_key("POST", "/admin/events/bad/replay", None, Some("replay-5"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(audit(&t, "replay").await.len(), 2, "two replays ran");
}

#[tokio::test]
async fn a_pending_event_is_attached_to_a_member_who_paid_under_another_email() {
    use gatehouse_e2e::{stripe_event, stripe_subscription};
    let t = TestStack::start().await;
    let (_, id) = member(&t, "attach").await;
    let now = chrono::Utc::now().timestamp();
    // The member paid on Stripe under an email Gatehouse has not seen, and
    // that checkout never arrived: the customer's events wait.
    let cus = t.id("cus");
    let created = stripe_event(
        &t.id("att-sub"),
        "customer.subscription.created",
        now,
        stripe_subscription("sub_att", &cus, "active", false, now + 86_400),
    );
    let (_, r) = t.post_stripe(&created).await;
    assert_eq!(r["status"], "pending", "{r}");
    let (_, pending) = t
        .admin("GET", "/admin/events?provider=stripe&status=pending", None)
        .await;
    let reference = pending["items"][0]["ref"].as_str().unwrap().to_string();
    let path = format!("/admin/events/{reference}/replay");

    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": "usr_nobody"})),
            Some("attach-0"),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // Replayed without a member, it still waits.
    let (status, body) = t
        .admin_with_key("POST", &path, None, Some("attach-1"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "pending", "{body}");

    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": id})),
            Some("attach-2"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["old_status"], "pending");
    assert_eq!(body["new_status"], "processed", "{body}");
    let (_, user) = t.admin("GET", &format!("/admin/users/{id}"), None).await;
    assert!(
        user["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["provider"] == "stripe" && s["state"] == "active"),
        "{user}"
    );
    // The customer is the member's now: its next event applies directly.
    let (_, r) = t
        .post_stripe(&stripe_event(
            &t.id("att-upd"),
            "customer.subscription.updated",
            now + 1,
            stripe_subscription("sub_att", &cus, "active", true, now + 86_400),
        ))
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": id})),
            Some("attach-3"),
        )
        .await;
    assert_eq!(
        status, 409,
        "an applied event is not attached again: {body}"
    );
    let attached = audit(&t, "replay").await;
    assert!(
        attached.iter().any(|e| e["user_id"] == id.as_str()),
        "the attach is audited against the member: {attached:?}"
    );
}

/// Idempotency is scoped to the allowlist entry, not the session: an admin
/// whose role session expired retries with a new session name and the same
/// key, and the change is not made twice.
#[tokio::test]
async fn a_retry_from_a_new_session_of_the_same_role_repeats_nothing() {
    let t = TestStack::start_with(Options {
        admin_principals: Some(format!(
            "{ADMIN_PRINCIPAL},arn:aws:iam::123456789012:role/ops/GatehouseAdmin"
        )),
        ..Default::default()
    })
    .await;
    let (_, id) = member(&t, "sessions").await;
    let services = t.stack.services_for("admin-roles").unwrap();
    let roles = admin_roles::AdminRoles::new(services);
    let change = |session: &str| gatehouse::http::ApiRequest {
        method: "POST".into(),
        path: format!("/admin/users/{id}/roles"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("idempotency-key".into(), "grant-after-expiry".into()),
        ],
        body: json!({"grant": "admin", "reason": "runs the community"})
            .to_string()
            .into_bytes(),
        path_params: [("id".to_string(), id.clone())].into_iter().collect(),
        iam: Some(gatehouse::http::IamIdentity {
            user_arn: Some(format!(
                "arn:aws:sts::123456789012:assumed-role/GatehouseAdmin/{session}"
            )),
            ..Default::default()
        }),
        ..Default::default()
    };
    let first = roles.handle(change("alice-1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = roles.handle(change("alice-2")).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body_json(), first.body_json());
    let grants = audit(&t, "roles").await;
    assert_eq!(grants.len(), 1, "one audit record: {grants:?}");
}

#[tokio::test]
async fn points_by_hand_are_audited_idempotent_and_never_below_zero() {
    let t = TestStack::start().await;
    let (_, id) = member(&t, "points").await;
    let path = format!("/admin/users/{id}/points");
    let add = json!({"delta": 50, "reason": "webinar attendance"});
    let (status, first) = t
        .admin_with_key("POST", &path, Some(&add), Some("pts-1"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            first["points_before"].as_i64(),
            first["points_after"].as_i64()
        ),
        (Some(0), Some(50))
    );
    // A retry of the same request, even from a new session, repeats nothing.
    let (status, again) = t
        .admin_with_key("POST", &path, Some(&add), Some("pts-1"))
        .await;
    assert_eq!((status, &again), (200, &first));
    // More than the balance: 409, nothing changes.
    let (status, refused) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"delta": -80, "reason": "correction"})),
            Some("pts-2"),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("balance is 50"),
        "{refused}"
    );
    let (status, taken) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"delta": -20, "reason": "correction"})),
            Some("pts-3"),
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    let (_, user) = t.admin("GET", &format!("/admin/users/{id}"), None).await;
    assert_eq!(user["points"], 30);
    let entries = user["points_ledger"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let reasons: Vec<&str> = entries
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"webinar attendance") && reasons.contains(&"correction"));
    let deltas: i64 = entries.iter().map(|e| e["points"].as_i64().unwrap()).sum();
    assert_eq!(deltas, 30, "the ledger adds up to the balance");
    let audited = audit(&t, "points").await;
    assert_eq!(audited.len(), 2, "{audited:?}");
    // Bad requests are specific 400s.
    for (body, what) in [
        (json!({"delta": 0, "reason": "x"}), "delta"),
        (json!({"delta": 5}), "reason"),
        (json!({"delta": 1.5, "reason": "x"}), "1.5"),
    ] {
        let (status, problem) = t
            .admin_with_key("POST", &path, Some(&body), Some("pts-bad"))
            .await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(what),
            "{problem}"
        );
    }
    let (status, _) = t
        .admin_with_key(
            "POST",
            "/admin/users/usr_nobody/points",
            Some(&add),
            Some("pts-404"),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn concurrent_deductions_never_take_the_balance_below_zero() {
    let t = TestStack::start().await;
    let (_, id) = member(&t, "drain").await;
    let path = format!("/admin/users/{id}/points");
    let (status, _) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"delta": 30, "reason": "grant"})),
            Some("d-0"),
        )
        .await;
    assert_eq!(status, 200);
    let body = json!({"delta": -10, "reason": "spend"});
    let answers = futures::future::join_all((1..=5).map(|i| {
        let (path, body) = (path.clone(), body.clone());
        let t = &t;
        async move {
            t.admin_with_key("POST", &path, Some(&body), Some(&format!("d-{i}")))
                .await
                .0
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        3,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|s| [200, 409].contains(s)),
        "{answers:?}"
    );
    let (_, user) = t.admin("GET", &format!("/admin/users/{id}"), None).await;
    assert_eq!(user["points"], 0);
}
