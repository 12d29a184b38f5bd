//! POST /webhooks/kajabi end to end: HTTP -> local stack -> moto.

use gatehouse::store::attr::{get_bool, get_list_s, get_map_s, get_s};
use gatehouse_e2e::{lifecycle, purchase, Auth, TestStack, URL_TOKENS};
use serde_json::{json, Value};

#[tokio::test]
async fn new_purchase_creates_inactive_user_subscription_and_emails() {
    let t = TestStack::start().await;
    let email = t.email("ada");
    let raw_email = format!("  {}  ", email.to_uppercase());
    let (status, body) = t
        .post_kajabi(
            &purchase(&t.id("evt"), &raw_email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "processed");
    assert_eq!(body["event"], format!("kajabi:{}", t.id("evt")));

    let snap = t.snapshot().await;
    let user = snap
        .user_by_email(&email)
        .expect("user stored under the normalized email");
    assert_eq!(get_bool(user, "is_active"), Some(false));
    assert_eq!(get_s(user, "auth_provider"), Some("kajabi"));
    let meta = get_map_s(user, "metadata");
    assert_eq!(meta.get("partner").map(String::as_str), Some("NSSA"));
    assert_eq!(
        meta.get("kajabi_member_id").map(String::as_str),
        Some("mem_1")
    );
    assert_eq!(
        meta.get("kajabi_offer_id").map(String::as_str),
        Some("off_456")
    );
    assert!(meta.contains_key("signup_date"));
    let user_id = get_s(user, "user_id").unwrap();
    let subs = snap.subscriptions_of(user_id);
    assert_eq!(subs.len(), 1);
    assert_eq!(get_s(subs[0], "state"), Some("active"));
    assert_eq!(get_s(subs[0], "plan_id"), Some("nssa_annual"));

    let welcome = t.wait_emails(&email, 1).await;
    assert!(welcome[0].subject.starts_with("Welcome"));
    let (token, link_email) = welcome[0].setup_link().expect("setup link in the email");
    assert_eq!(link_email, email);
    assert_eq!(token.len(), 43);
    let admin = t.wait_emails(&t.admin, 1).await;
    assert!(
        admin[0].subject.starts_with("New signup"),
        "{}",
        admin[0].subject
    );

    // The raw token is stored nowhere: only its hash.
    let snap = t.snapshot().await;
    for item in &snap.items {
        assert!(
            !format!("{item:?}").contains(&token),
            "raw token stored in {item:?}"
        );
    }
}

#[tokio::test]
async fn all_three_dialects_are_accepted() {
    let t = TestStack::start().await;
    let v1 = json!({"id": t.id("hook"), "event": "purchase", "payload": [
        {"id": "c1", "type": "customers", "attributes": {"email": t.email("v1"), "name": "Vee One"}},
        {"id": 2150, "type": "offers", "attributes": {"title": "NSSA"}}
    ]});
    let (status, body) = t
        .post_kajabi_as(
            &v1.to_string(),
            Auth::Token(URL_TOKENS[0]),
            "application/vnd.api+json; charset=utf-8",
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("processed")),
        "{body}"
    );

    let legacy = json!({"id": t.id("legacy"), "event": "purchase.created", "member_email": t.email("legacy"), "offer_id": "off_456"});
    let (status, body) = t
        .post_kajabi(&legacy.to_string(), Auth::Token(URL_TOKENS[1]))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("processed")),
        "{body}"
    );

    let snap = t.snapshot().await;
    assert!(snap.user_by_email(&t.email("v1")).is_some());
    assert!(snap.user_by_email(&t.email("legacy")).is_some());
}

#[tokio::test]
async fn authentication_failures_name_the_check_and_record_nothing() {
    let t = TestStack::start().await;
    let body = purchase(&t.id("evt"), &t.email("x"), "off_456");
    // Seventeen `token` parameters, one of them good: refused by the cap, unchecked.
    let seventeen = format!("{}{}", URL_TOKENS[0], "&token=x".repeat(16));
    for (auth, needle) in [
        (Auth::None, "missing credentials"),
        (
            Auth::Token(&seventeen),
            "17 token query parameters; the limit is 16",
        ),
        (Auth::BadSignature, "X-Kajabi-Signature does not match"),
        (
            Auth::Token("not-a-token"),
            "token query parameter does not match",
        ),
    ] {
        let (status, problem) = t.post_kajabi(&body, auth).await;
        assert_eq!(status, 401);
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{problem}"
        );
        assert_eq!(problem["status"], 401);
    }
    assert!(
        t.snapshot().await.events().is_empty(),
        "unauthenticated deliveries are not recorded"
    );
}

#[tokio::test]
async fn order_of_checks_size_auth_content_type_json() {
    let t = TestStack::start().await;
    // 413 before authentication.
    let huge = "x".repeat(256 * 1024 + 1);
    let (status, _) = t.post_kajabi(&huge, Auth::None).await;
    assert_eq!(status, 413);
    // 401 before content type.
    let (status, _) = t.post_kajabi_as("{}", Auth::None, "text/plain").await;
    assert_eq!(status, 401);
    // 415 for an authenticated non-JSON type, recorded as failed.
    let (status, problem) = t.post_kajabi_as("{}", Auth::Signature, "text/plain").await;
    assert_eq!(status, 415, "{problem}");
    // 400 for invalid JSON, recorded as failed.
    let (status, problem) = t.post_kajabi("{not json", Auth::Signature).await;
    assert_eq!(status, 400);
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let snap = t.snapshot().await;
    let reasons: Vec<&str> = snap
        .events()
        .iter()
        .filter_map(|e| get_s(e, "reason"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("unsupported content type")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("invalid JSON")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn unprocessable_deliveries_are_recorded_failed_and_answered_200() {
    let t = TestStack::start().await;
    let cases = [
        (
            purchase(&t.id("unknown-offer"), &t.email("a"), "off_nope"),
            "unknown offer",
        ),
        (
            json!({"type": "offer.purchased", "id": t.id("no-email"), "offer": {"id": "off_456"}})
                .to_string(),
            "missing member email",
        ),
        (
            purchase(&t.id("bad-email"), "not-an-email", "off_456"),
            "invalid member email",
        ),
    ];
    for (body, reason) in &cases {
        let (status, answer) = t.post_kajabi(body, Auth::Signature).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "failed");
        assert!(
            answer["reason"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }
    let snap = t.snapshot().await;
    assert!(snap.users().is_empty(), "nothing was provisioned");
    let failed = snap
        .events()
        .iter()
        .filter(|e| get_s(e, "status") == Some("failed"))
        .count();
    assert_eq!(failed, cases.len());
    let stored = snap.event("kajabi", &t.id("unknown-offer")).unwrap();
    assert!(get_s(stored, "reason").unwrap().contains("off_nope"));
}

#[tokio::test]
async fn unknown_types_are_recorded_as_ignored() {
    let t = TestStack::start().await;
    let body =
        json!({"type": "contact.deleted", "id": t.id("tag"), "contact": {"email": t.email("t")}})
            .to_string();
    let (status, answer) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    let (status, answer) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );
    let snap = t.snapshot().await;
    let event = snap.event("kajabi", &t.id("tag")).unwrap();
    assert_eq!(get_s(event, "status"), Some("ignored"));
    assert_eq!(get_s(event, "event_type"), Some("contact.deleted"));
}

#[tokio::test]
async fn events_without_an_id_are_keyed_by_body_hash() {
    let t = TestStack::start().await;
    let body = json!({"event": "purchase.created", "member_email": t.email("noid"), "offer_id": "off_456"}).to_string();
    let (_, first) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(first["status"], "processed");
    assert!(first["event"]
        .as_str()
        .unwrap()
        .starts_with("kajabi:sha256:"));
    let (_, second) = t.post_kajabi(&body, Auth::Signature).await;
    assert_eq!(second["status"], "duplicate");
    assert_eq!(first["event"], second["event"]);
}

#[tokio::test]
async fn duplicate_has_no_second_effect_and_notes_a_differing_body() {
    let t = TestStack::start().await;
    let email = t.email("dup");
    let id = t.id("evt");
    let (_, first) = t
        .post_kajabi(&purchase(&id, &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(first["status"], "processed");
    let (status, again) = t
        .post_kajabi(&purchase(&id, &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!((status, again["status"].as_str()), (200, Some("duplicate")));
    // A retry whose live fields differ is still a duplicate; the new body hash is noted.
    let mut changed: serde_json::Value =
        serde_json::from_str(&purchase(&id, &email, "off_456")).unwrap();
    changed["member"]["first_name"] = json!("Changed");
    let (_, third) = t.post_kajabi(&changed.to_string(), Auth::Signature).await;
    assert_eq!(third["status"], "duplicate");

    t.wait_emails(&email, 1).await;
    let snap = t.snapshot().await;
    assert_eq!(snap.users().len(), 1);
    assert_eq!(snap.jobs_to(&email).len(), 1, "one welcome job");
    assert_eq!(snap.jobs_to(&t.admin).len(), 1, "one admin job");
    let event = snap.event("kajabi", &id).unwrap();
    assert_eq!(get_list_s(event, "duplicate_body_hashes").len(), 1);
    assert_eq!(t.emails_to(&email).await.len(), 1, "no second email");
}

#[tokio::test]
async fn a_failed_event_is_processed_again_on_redelivery() {
    let t = TestStack::start().await;
    let email = t.email("late");
    let id = t.id("cancel");
    // A member of Kajabi's lifetime offer: their email is known to Kajabi.
    let (_, lifetime) = t
        .post_kajabi(
            &purchase(&t.id("life"), &email, "off_lifetime"),
            Auth::Signature,
        )
        .await;
    assert_eq!(lifetime["status"], "processed");
    // A cancel of the annual plan they have not bought (yet): failed.
    let (_, first) = t
        .post_kajabi(
            &lifecycle("canceled", &id, &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(first["status"], "failed");
    // After the purchase, Kajabi's retry of the same event is applied.
    let (_, bought) = t
        .post_kajabi(&purchase(&t.id("buy"), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(bought["status"], "processed");
    let (_, retry) = t
        .post_kajabi(
            &lifecycle("canceled", &id, &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(retry["status"], "processed", "{retry}");
    let snap = t.snapshot().await;
    assert_eq!(
        get_s(snap.event("kajabi", &id).unwrap(), "status"),
        Some("processed")
    );
}

#[tokio::test]
async fn existing_email_is_linked_and_keeps_its_password() {
    let t = TestStack::start().await;
    let email = t.email("linked");
    t.post_kajabi(
        &purchase(&t.id("first"), &email, "off_456"),
        Auth::Signature,
    )
    .await;
    let (token, _) = t.wait_emails(&email, 1).await[0].setup_link().unwrap();
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": email, "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
    let before = t.snapshot().await;
    let hash_before = get_s(before.user_by_email(&email).unwrap(), "password_hash")
        .unwrap()
        .to_string();

    let (_, second) = t
        .post_kajabi(&purchase(&t.id("second"), &email, "2150"), Auth::Signature)
        .await;
    assert_eq!(second["status"], "processed");
    let admin = t.wait_emails(&t.admin, 2).await;
    assert!(admin
        .iter()
        .any(|m| m.subject.starts_with("Existing user linked")));
    let after = t.snapshot().await;
    assert_eq!(after.users().len(), 1);
    let user = after.user_by_email(&email).unwrap();
    assert_eq!(get_s(user, "password_hash"), Some(hash_before.as_str()));
    assert_eq!(get_bool(user, "is_active"), Some(true));
    assert_eq!(
        after.jobs_to(&email).len(),
        1,
        "an active member gets no new welcome"
    );
}

#[tokio::test]
async fn cancel_renew_expire_lifecycle() {
    let t = TestStack::start().await;
    let email = t.email("life");
    t.post_kajabi(&purchase(&t.id("buy"), &email, "off_456"), Auth::Signature)
        .await;
    let sub_state = |snap: &gatehouse_local::inspect::Snapshot| {
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        (
            get_s(subs[0], "state").unwrap().to_string(),
            get_s(subs[0], "access_until").map(str::to_string),
            get_s(subs[0], "period_end").map(str::to_string),
        )
    };
    let (_, bought_period_end) = {
        let s = sub_state(&t.snapshot().await);
        (s.0, s.2)
    };

    // Cancel without a date: access until the plan period end.
    let (_, c) = t
        .post_kajabi(
            &lifecycle("canceled", &t.id("c1"), &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(c["status"], "processed");
    let (state, until, _) = sub_state(&t.snapshot().await);
    assert_eq!(state, "canceled");
    assert_eq!(until, bought_period_end);

    // Renew: active again.
    let (_, r) = t
        .post_kajabi(
            &lifecycle("renewed", &t.id("r1"), &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    assert_eq!(sub_state(&t.snapshot().await).0, "active");

    // Cancel with the payload's end date.
    let (_, c2) = t
        .post_kajabi(
            &lifecycle(
                "canceled",
                &t.id("c2"),
                &email,
                json!({"subscription": {"end_date": "2031-02-03T00:00:00Z"}}),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(c2["status"], "processed");
    let (state, until, _) = sub_state(&t.snapshot().await);
    assert_eq!(state, "canceled");
    assert_eq!(until.as_deref(), Some("2031-02-03T00:00:00.000Z"));

    // Expire: no access.
    let (_, e) = t
        .post_kajabi(
            &lifecycle("expired", &t.id("e1"), &email, json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(e["status"], "processed");
    let (state, until, _) = sub_state(&t.snapshot().await);
    assert_eq!(state, "expired");
    let until = chrono::DateTime::parse_from_rfc3339(&until.unwrap()).unwrap();
    assert!(until <= chrono::Utc::now());

    // Member notices: welcome, two cancels, expiry.
    let emails = t.wait_emails(&email, 4).await;
    let subjects: Vec<&str> = emails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects.iter().filter(|s| s.contains("canceled")).count(),
        2,
        "{subjects:?}"
    );
    assert_eq!(
        subjects.iter().filter(|s| s.contains("expired")).count(),
        1,
        "{subjects:?}"
    );
    let cancel = emails
        .iter()
        .find(|m| m.body.contains("February 3, 2031"))
        .expect("cancel notice names the end date");
    assert!(cancel.subject.contains("canceled"));
}

#[tokio::test]
async fn an_older_event_is_superseded() {
    let t = TestStack::start().await;
    let email = t.email("order");
    t.post_kajabi(&purchase(&t.id("buy"), &email, "off_456"), Auth::Signature)
        .await;
    let (_, newer) = t
        .post_kajabi(
            &lifecycle(
                "expired",
                &t.id("new"),
                &email,
                json!({"created_at": "2030-01-02T00:00:00Z"}),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(newer["status"], "processed");
    let (_, older) = t
        .post_kajabi(
            &lifecycle(
                "renewed",
                &t.id("old"),
                &email,
                json!({"created_at": "2030-01-01T00:00:00Z"}),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(older["status"], "superseded", "{older}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    assert_eq!(
        get_s(
            snap.subscriptions_of(get_s(user, "user_id").unwrap())[0],
            "state"
        ),
        Some("expired")
    );
    assert_eq!(
        get_s(snap.event("kajabi", &t.id("old")).unwrap(), "status"),
        Some("superseded")
    );
}

#[tokio::test]
async fn twenty_concurrent_identical_deliveries_have_one_effect() {
    let t = TestStack::start().await;
    let email = t.email("rush");
    let body = purchase(&t.id("evt"), &email, "off_456");
    // Separate clients: separate connections.
    let results = futures::future::join_all((0..20).map(|_| {
        let body = body.clone();
        let url = t.url("/webhooks/kajabi");
        async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let sig = gatehouse::signature::hmac_sha256_hex(
                gatehouse_e2e::KAJABI_SECRET.as_bytes(),
                body.as_bytes(),
            );
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-kajabi-signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    }))
    .await;
    let processed = results
        .iter()
        .filter(|(s, b)| *s == 200 && b["status"] == "processed")
        .count();
    let duplicates = results
        .iter()
        .filter(|(s, b)| *s == 200 && b["status"] == "duplicate")
        .count();
    assert_eq!(processed, 1, "{results:?}");
    assert_eq!(
        processed + duplicates,
        20,
        "every delivery answered 200: {results:?}"
    );

    t.wait_emails(&email, 1).await;
    t.wait_emails(&t.admin, 1).await;
    let snap = t.snapshot().await;
    assert_eq!(snap.users().len(), 1);
    let user = snap.user_by_email(&email).unwrap();
    assert_eq!(
        snap.subscriptions_of(get_s(user, "user_id").unwrap()).len(),
        1
    );
    assert_eq!(snap.jobs_to(&email).len(), 1);
    // Duplicates re-enqueue the pending job; the sender must still send it once.
    gatehouse_e2e::eventually(
        "queue drained",
        std::time::Duration::from_secs(20),
        || async { (t.queue_depth(&t.stack.queue_url).await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        t.emails_to(&email).await.len(),
        1,
        "exactly one SES message to the member"
    );
    assert_eq!(t.emails_to(&t.admin).await.len(), 1);
}

#[tokio::test]
async fn malformed_base64_event_is_a_400_through_the_lambda_glue() {
    let t = TestStack::start().await;
    let function =
        kajabi_webhook::KajabiWebhook::new(t.stack.services_for("kajabi-webhook").unwrap());
    let event = json!({
        "version": "2.0", "rawPath": "/webhooks/kajabi", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"requestId": "r", "http": {"method": "POST", "path": "/webhooks/kajabi"}},
        "body": "***not base64***", "isBase64Encoded": true
    });
    let response = gatehouse::lambda::handle_api_gateway_event(&function, event).await;
    assert_eq!(response["statusCode"], 400);
    assert!(response["body"].as_str().unwrap().contains("base64"));
    // Not even an envelope: still an answer.
    let response = gatehouse::lambda::handle_api_gateway_event(&function, json!([1, 2, 3])).await;
    assert_eq!(response["statusCode"], 400);
    // A well-formed base64 body passes through to the handler (401: unsigned).
    let ok = json!({"rawPath": "/webhooks/kajabi", "body": "e30=", "isBase64Encoded": true,
        "requestContext": {"http": {"method": "POST"}}});
    assert_eq!(
        gatehouse::lambda::handle_api_gateway_event(&function, ok).await["statusCode"],
        401
    );
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let t = TestStack::start().await;
    let r = t
        .http
        .post(t.url("/webhooks/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = t.http.get(t.url("/webhooks/kajabi")).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "only the declared method is routed"
    );
}

#[tokio::test]
async fn a_purchase_older_than_the_expiry_links_the_account_and_leaves_access_alone() {
    let t = TestStack::start().await;
    let email = t.email("lateb");
    let at = |body: String, time: &str| {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        v["created_at"] = json!(time);
        v.to_string()
    };
    let (_, r) = t
        .post_kajabi(
            &at(
                purchase(&t.id("buy1"), &email, "off_456"),
                "2030-01-01T00:00:00Z",
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_kajabi(
            &lifecycle(
                "expired",
                &t.id("exp"),
                &email,
                json!({"created_at": "2030-01-03T00:00:00Z"}),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let state = |snap: &gatehouse_local::inspect::Snapshot| {
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        get_s(subs[0], "state").map(str::to_string)
    };
    // A purchase from before the expiry, delivered after it.
    let (_, r) = t
        .post_kajabi(
            &at(
                purchase(&t.id("buy2"), &email, "off_456"),
                "2030-01-02T00:00:00Z",
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    assert_eq!(
        state(&snap).as_deref(),
        Some("expired"),
        "the expiry stands"
    );
    assert!(
        get_s(snap.event("kajabi", &t.id("buy2")).unwrap(), "reason")
            .is_some_and(|r| r.contains("access is unchanged")),
        "the record says why"
    );
    // Buying again after the expiry opens it again.
    let (_, r) = t
        .post_kajabi(
            &at(
                purchase(&t.id("buy3"), &email, "off_456"),
                "2030-01-04T00:00:00Z",
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(state(&t.snapshot().await).as_deref(), Some("active"));
}

#[tokio::test]
async fn a_cancel_or_expiry_never_ends_a_lifetime_plan() {
    let t = TestStack::start().await;
    let email = t.email("forever");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("buy"), &email, "off_lifetime"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let jobs_before = t.snapshot().await.jobs_to(&email).len();
    for (kind, id) in [("canceled", "cancel"), ("expired", "expire")] {
        let (status, r) = t
            .post_kajabi(
                &lifecycle(
                    kind,
                    &t.id(id),
                    &email,
                    json!({"offer": {"id": "off_lifetime"}}),
                ),
                Auth::Signature,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(r["status"], "ignored", "{kind}: {r}");
        let snap = t.snapshot().await;
        let record = snap.event("kajabi", &t.id(id)).unwrap();
        assert!(
            get_s(record, "reason").is_some_and(|r| r.contains("lifetime plan")),
            "{kind}: the record says why"
        );
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        assert_eq!(get_s(subs[0], "state"), Some("active"), "{kind}");
        assert_eq!(
            get_s(subs[0], "access_until"),
            None,
            "{kind}: access never ends"
        );
        assert_eq!(snap.jobs_to(&email).len(), jobs_before, "{kind}: no notice");
    }
}

#[tokio::test]
async fn a_signed_delivery_near_the_size_cap_is_recorded_whatever_its_text() {
    let t = TestStack::start().await;
    let padding = "p".repeat(60_000);
    // A 190 KB event type and a 60 KB pad: with the payload, 440 KB unbounded.
    let odd_type =
        json!({"type": "x".repeat(190_000), "id": t.id("bigtype"), "pad": padding}).to_string();
    // An unknown offer id that the failure reason repeats.
    let mut odd_offer: Value =
        serde_json::from_str(&purchase(&t.id("bigoffer"), &t.email("big"), "off_456")).unwrap();
    odd_offer["offer"]["id"] = json!("o".repeat(190_000));
    odd_offer["pad"] = json!(padding);
    for (body, status, what) in [
        (odd_type, "ignored", "bigtype"),
        (odd_offer.to_string(), "failed", "bigoffer"),
    ] {
        assert!(body.len() < 256 * 1024, "under the body cap");
        let (code, r) = t.post_kajabi(&body, Auth::Signature).await;
        assert_eq!(code, 200, "{what}: recorded, not 503: {r}");
        assert_eq!(r["status"], status, "{what}");
        let snap = t.snapshot().await;
        let record = snap.event("kajabi", &t.id(what)).expect("recorded");
        assert!(get_s(record, "event_type").unwrap().len() <= 200, "{what}");
        assert!(
            get_s(record, "reason").is_none_or(|r| r.len() <= 2_000),
            "{what}"
        );
    }
    // Redeliveries with differing bodies are noted up to a bound, and answered.
    let id = t.id("redelivered");
    for i in 0..55 {
        let body = json!({"type": "contact.deleted", "id": id, "n": i}).to_string();
        let (code, _) = t.post_kajabi(&body, Auth::Signature).await;
        assert_eq!(code, 200);
    }
    let snap = t.snapshot().await;
    let noted = get_list_s(snap.event("kajabi", &id).unwrap(), "duplicate_body_hashes");
    assert_eq!(noted.len(), 50, "the first 50 differing bodies are noted");
}

/// The templates of the jobs written for `email`, sorted.
fn templates_to(snap: &gatehouse_local::inspect::Snapshot, email: &str) -> Vec<String> {
    let mut templates: Vec<String> = snap
        .jobs_to(email)
        .iter()
        .filter_map(|j| get_s(j, "template").map(str::to_string))
        .collect();
    templates.sort();
    templates
}

#[tokio::test]
async fn a_lifecycle_event_before_its_purchase_waits_and_the_purchase_applies_it() {
    let t = TestStack::start().await;
    let email = t.email("early");
    let end = "2031-01-20T00:00:00Z";
    let cancel = lifecycle(
        "canceled",
        &t.id("early-cancel"),
        &email,
        json!({"subscription": {"end_date": end}}),
    );
    let (status, answer) = t.post_kajabi(&cancel, Auth::Signature).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("pending")),
        "{answer}"
    );
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("waiting for the member's Kajabi purchase"),
        "{reason}"
    );
    assert!(!reason.contains(&email), "no address in the reason");
    // Kajabi's retry of the waiting event is still pending, not a duplicate.
    let (_, again) = t.post_kajabi(&cancel, Auth::Signature).await;
    assert_eq!(again["status"], "pending", "{again}");
    let snap = t.snapshot().await;
    assert!(
        snap.user_by_email(&email).is_none(),
        "nothing provisioned yet"
    );
    let waiting = snap.event("kajabi", &t.id("early-cancel")).unwrap();
    assert_eq!(get_s(waiting, "status"), Some("pending"));
    assert!(get_s(waiting, "waiting_on")
        .unwrap()
        .starts_with("email-sha256:"));

    let (_, bought) = t
        .post_kajabi(
            &purchase(&t.id("late-buy"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(bought["status"], "processed", "{bought}");
    let snap = t.snapshot().await;
    let user = snap
        .user_by_email(&email)
        .expect("the purchase made the member");
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(subs.len(), 1);
    assert_eq!(
        get_s(subs[0], "state"),
        Some("canceled"),
        "the waiting cancel applied"
    );
    assert!(get_s(subs[0], "access_until")
        .unwrap()
        .starts_with("2031-01-20"));
    let applied = snap.event("kajabi", &t.id("early-cancel")).unwrap();
    assert_eq!(get_s(applied, "status"), Some("processed"));
    assert_eq!(
        templates_to(&snap, &email),
        ["cancel_notice", "welcome"],
        "one welcome and one cancel notice"
    );
    // A redelivery of the cancel is now a duplicate.
    let (_, dup) = t.post_kajabi(&cancel, Auth::Signature).await;
    assert_eq!(dup["status"], "duplicate", "{dup}");
}

#[tokio::test]
async fn a_member_of_another_provider_waits_for_their_kajabi_purchase() {
    let t = TestStack::start().await;
    let email = t.email("crossover");
    let checkout = gatehouse_e2e::stripe_event(
        &t.id("evt_co"),
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        gatehouse_e2e::stripe_checkout(&t.id("cs"), &t.id("cus"), &email, "subscription", None),
    );
    let (_, paid) = t.post_stripe(&checkout).await;
    assert_eq!(paid["status"], "processed", "{paid}");
    // A renewal and an expiry (this one naming no offer) before the purchase both wait.
    let renew = lifecycle("renewed", &t.id("kx-renew"), &email, json!({}));
    let (_, answer) = t.post_kajabi(&renew, Auth::Signature).await;
    assert_eq!(answer["status"], "pending", "{answer}");
    let expire = json!({"type": "member.subscription.expired", "id": t.id("kx-expire"),
        "member": {"id": "mem_1", "email": email}})
    .to_string();
    let (_, answer) = t.post_kajabi(&expire, Auth::Signature).await;
    assert_eq!(answer["status"], "pending", "{answer}");

    let (_, bought) = t
        .post_kajabi(
            &purchase(&t.id("kx-buy"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(bought["status"], "processed", "{bought}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let kajabi: Vec<_> = snap
        .subscriptions_of(get_s(user, "user_id").unwrap())
        .into_iter()
        .filter(|s| get_s(s, "provider") == Some("kajabi"))
        .collect();
    assert_eq!(kajabi.len(), 1);
    assert_eq!(
        get_s(kajabi[0], "state"),
        Some("expired"),
        "the waiting expiry applied"
    );

    // Once the email has a Kajabi purchase, an event about a plan it never
    // bought fails with its reason instead of waiting.
    let other = json!({"type": "member.subscription.canceled", "id": t.id("kx-other"),
        "member": {"id": "mem_1", "email": email}, "offer": {"id": "off_lifetime"}})
    .to_string();
    let (_, failed) = t.post_kajabi(&other, Auth::Signature).await;
    assert_eq!(failed["status"], "failed", "{failed}");
}

/// `purchase.refunded` in the `purchase.*` dialect (`purchase.created`'s fields).
fn refund(event_id: &str, email: &str, offer: &str) -> String {
    json!({"id": event_id, "event": "purchase.refunded", "member_email": email,
        "member_name": "Ada Lovelace", "offer_id": offer, "offer_title": "NSSA Annual Membership"})
    .to_string()
}

#[tokio::test]
async fn a_refund_revokes_what_the_purchase_granted_lifetime_included() {
    let t = TestStack::start().await;
    for (name, offer, plan) in [
        ("refunded", "off_456", "nssa_annual"),
        ("refundedlife", "off_lifetime", "premium_lifetime"),
    ] {
        let email = t.email(name);
        let (_, r) = t
            .post_kajabi(
                &purchase(&t.id(&format!("{name}-buy")), &email, offer),
                Auth::Signature,
            )
            .await;
        assert_eq!(r["status"], "processed", "{r}");
        if offer == "off_lifetime" {
            // A cancel keeps a lifetime plan's access; the refund does not.
            let cancel = lifecycle(
                "canceled",
                &t.id(&format!("{name}-cancel")),
                &email,
                json!({}),
            );
            let cancel = cancel.replace("off_456", offer);
            let (_, r) = t.post_kajabi(&cancel, Auth::Signature).await;
            assert_eq!(r["status"], "ignored", "{r}");
        }
        let body = refund(&t.id(&format!("{name}-refund")), &email, offer);
        let (_, r) = t.post_kajabi(&body, Auth::Signature).await;
        assert_eq!(r["status"], "processed", "{r}");
        let snap = t.snapshot().await;
        let user = snap.user_by_email(&email).unwrap();
        let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
        let sub = subs
            .iter()
            .find(|s| get_s(s, "plan_id") == Some(plan))
            .expect("the plan's row");
        assert_eq!(get_s(sub, "state"), Some("refunded"), "{name}");
        let until = get_s(sub, "access_until").unwrap().to_string();
        assert!(
            until <= chrono::Utc::now().to_rfc3339(),
            "{name}: access ended"
        );
        assert!(
            snap.jobs_to(&email)
                .iter()
                .any(|j| get_s(j, "template") == Some("refund_notice")),
            "{name}: a refund notice"
        );
        // A second refund, or an expiry after the refund, changes nothing
        // and sends nothing.
        let (_, again) = t
            .post_kajabi(
                &refund(&t.id(&format!("{name}-refund2")), &email, offer),
                Auth::Signature,
            )
            .await;
        assert_eq!(again["status"], "superseded", "{again}");
        let expire = lifecycle(
            "expired",
            &t.id(&format!("{name}-expire")),
            &email,
            json!({}),
        )
        .replace("off_456", offer);
        let (_, after) = t.post_kajabi(&expire, Auth::Signature).await;
        assert_eq!(after["status"], "superseded", "{after}");
        let snap = t.snapshot().await;
        let notices: Vec<_> = snap
            .jobs_to(&email)
            .into_iter()
            .filter_map(|j| get_s(j, "template"))
            .filter(|t| *t == "refund_notice" || *t == "expiry_notice")
            .collect();
        assert_eq!(notices, ["refund_notice"], "{name}");
    }
    // A refund before its purchase waits, and the purchase applies it.
    let email = t.email("earlyrefund");
    let (_, r) = t
        .post_kajabi(
            &refund(&t.id("early-refund"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "pending", "{r}");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("early-buy"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = snap.user_by_email(&email).unwrap();
    let subs = snap.subscriptions_of(get_s(user, "user_id").unwrap());
    assert_eq!(get_s(subs[0], "state"), Some("refunded"));

    // A refund that names no offer is not guessed at.
    let (_, r) = t
        .post_kajabi(
            &json!({"id": t.id("no-offer-refund"), "event": "purchase.refunded",
                "member_email": email})
            .to_string(),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("no offer id"), "{r}");
}
