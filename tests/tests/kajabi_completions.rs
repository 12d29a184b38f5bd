//! Kajabi course completions end to end: a completion form's submission, in
//! the seed's dialect or as a v1 `form_submission` hook, awards the course's
//! points once per member; one for an unknown email is kept `unmatched` and
//! applied when a member with that email appears, or when an admin links it.

use gatehouse::store::attr::{get_n, get_s};
use gatehouse_e2e::{purchase, stripe_checkout, stripe_event, Auth, TestStack};
use serde_json::{json, Value};

const AI_COURSE: &str = "AI Foundations for Educators";

/// The seed's `form.submitted` body.
fn seed_completion(event_id: &str, email: &str, course: &str) -> String {
    json!({
        "event_type": "form.submitted", "event_id": event_id, "created_at": "2026-11-02T10:30:00Z",
        "data": {
            "form": {"id": "form_123", "name": "Course Completion Form", "site_id": "site_123"},
            "submission": {"id": format!("sub_{event_id}"), "fields": {
                "email": email, "course_name": course, "completion_date": "2026-11-02",
                "certificate_url": "https://certificates.example/1", "student_name": "Ada Lovelace"}}
        }
    })
    .to_string()
}

/// A v1 `form_submission` hook, as Kajabi documents its payload.
fn v1_submission(hook_id: &str, email: &str, form_id: &str, title: &str) -> String {
    json!({"id": hook_id, "event": "form_submission", "payload": [
        {"id": "77", "type": "form_submissions",
         "attributes": {"name": "Ada Lovelace", "email": email, "address_line_1": null, "address_line_2": null,
            "address_city": null, "address_country": null, "address_state": null, "address_zip": null,
            "phone_number": null, "business_number": null, "mobile_phone_number": null},
         "relationships": {"site": {"data": {"id": "2", "type": "sites"}},
            "form": {"data": {"id": form_id, "type": "forms"}}}},
        {"id": form_id, "type": "forms",
         "attributes": {"url": format!("https://site.example/forms/{form_id}"), "title": title, "default": false,
            "webhook_url": null, "created_at": null, "updated_at": null},
         "relationships": {"site": {"data": {"id": "2", "type": "sites"}},
            "fields": {"data": []}, "contact_tags": {"data": []}}}
    ]})
    .to_string()
}

async fn bought(t: &TestStack, name: &str) -> (String, String) {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = get_s(snap.user_by_email(&email).unwrap(), "user_id")
        .unwrap()
        .to_string();
    (email, user)
}

/// The member's balance and ledger, as the admin view shows them.
async fn points_of(t: &TestStack, user: &str) -> (i64, Vec<Value>) {
    let (status, view) = t.admin("GET", &format!("/admin/users/{user}"), None).await;
    assert_eq!(status, 200, "{view}");
    (
        view["points"].as_i64().unwrap(),
        view["points_ledger"]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_completion_in_either_dialect_awards_its_course_points_once() {
    let t = TestStack::start().await;
    let (email, user) = bought(&t, "learner").await;

    // The seed's dialect names the course in its `course_name` field.
    let (status, r) = t
        .post_kajabi(
            &seed_completion(&t.id("c1"), &email.to_uppercase(), AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("processed")),
        "{r}"
    );
    // A v1 hook carries only the form: the course is the form's.
    let (_, r) = t
        .post_kajabi(
            &v1_submission(
                &t.id("h1"),
                &email,
                "frm_data_literacy",
                "Data Literacy: done",
            ),
            Auth::Token(gatehouse_e2e::URL_TOKENS[0]),
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");

    let (balance, ledger) = points_of(&t, &user).await;
    assert_eq!(balance, 20 + 35);
    let courses: Vec<&str> = ledger
        .iter()
        .map(|e| e["course_id"].as_str().unwrap())
        .collect();
    assert_eq!(courses.len(), 2);
    assert!(
        courses.contains(&"ai_foundations_for_educators") && courses.contains(&"data_literacy")
    );
    let ai = ledger
        .iter()
        .find(|e| e["course_id"] == "ai_foundations_for_educators")
        .unwrap();
    assert_eq!(ai["points"], 20);
    assert_eq!(ai["course_name"], AI_COURSE);
    assert_eq!(ai["completed_at"], "2026-11-02T00:00:00Z");

    // Completing the same course again, by a new submission, awards nothing.
    let (_, again) = t
        .post_kajabi(
            &seed_completion(&t.id("c2"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(again["status"], "ignored", "{again}");
    let record = t.snapshot().await;
    let reason = get_s(record.event("kajabi", &t.id("c2")).unwrap(), "reason").unwrap();
    assert!(reason.contains("already completed"), "{reason}");
    // The same delivery twice is a duplicate.
    let (_, dup) = t
        .post_kajabi(
            &seed_completion(&t.id("c1"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(dup["status"], "duplicate");
    assert_eq!(points_of(&t, &user).await.0, 55);
}

#[tokio::test]
async fn concurrent_completions_of_one_course_award_it_once() {
    let t = TestStack::start().await;
    let (email, user) = bought(&t, "rush").await;
    let bodies: Vec<String> = (0..6)
        .map(|i| seed_completion(&t.id(&format!("rush{}", i % 3)), &email, AI_COURSE))
        .collect();
    let answers =
        futures::future::join_all(bodies.iter().map(|b| t.post_kajabi(b, Auth::Signature))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let processed = answers
        .iter()
        .filter(|(_, r)| r["status"] == "processed")
        .count();
    assert_eq!(processed, 1, "{answers:?}");
    let (balance, ledger) = points_of(&t, &user).await;
    assert_eq!((balance, ledger.len()), (20, 1));
    let snap = t.snapshot().await;
    let statuses: Vec<&str> = (0..3)
        .map(|i| {
            get_s(
                snap.event("kajabi", &t.id(&format!("rush{i}"))).unwrap(),
                "status",
            )
            .unwrap()
        })
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "processed").count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == "ignored").count(), 2);
}

#[tokio::test]
async fn a_form_that_completes_no_course_is_ignored_with_the_reason() {
    let t = TestStack::start().await;
    let (email, user) = bought(&t, "lead").await;
    let (_, r) = t
        .post_kajabi(
            &v1_submission(&t.id("h-news"), &email, "frm_newsletter", "Newsletter"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "ignored", "{r}");
    let (_, r2) = t
        .post_kajabi(
            &seed_completion(&t.id("c-other"), &email, "AI Foundations"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r2["status"], "ignored", "a near name is no match: {r2}");
    let snap = t.snapshot().await;
    // A v1 hook's event is its id and the submission's.
    let key = format!("{}:77", t.id("h-news"));
    let reason = get_s(snap.event("kajabi", &key).unwrap(), "reason").unwrap();
    assert_eq!(
        reason,
        "form frm_newsletter (Newsletter) is not a completion form in the courses file: its submitter is kept as a Kajabi lead"
    );
    assert_eq!(points_of(&t, &user).await.0, 0);
    // A completion without an email is failed with the reason.
    let (_, r3) = t
        .post_kajabi(
            &seed_completion(&t.id("c-noemail"), "", AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r3["status"], "failed", "{r3}");
}

#[tokio::test]
async fn an_unmatched_completion_waits_and_the_members_first_purchase_applies_it_once() {
    let t = TestStack::start().await;
    let email = t.email("later");
    let (status, r) = t
        .post_kajabi(
            &seed_completion(&t.id("early"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (200, Some("unmatched")),
        "{r}"
    );
    let (_, listed) = t
        .admin(
            "GET",
            "/admin/events?provider=kajabi&status=unmatched",
            None,
        )
        .await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    // Redelivered while unmatched: still unmatched, nothing awarded.
    let (_, again) = t
        .post_kajabi(
            &seed_completion(&t.id("early"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(again["status"], "unmatched", "{again}");

    let (_, r) = t
        .post_kajabi(&purchase(&t.id("buy"), &email, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let user = get_s(t.snapshot().await.user_by_email(&email).unwrap(), "user_id")
        .unwrap()
        .to_string();
    let snap = t.snapshot().await;
    let record = snap.event("kajabi", &t.id("early")).unwrap();
    assert_eq!(get_s(record, "status"), Some("processed"));
    assert_eq!(get_s(record, "user_id"), Some(user.as_str()));
    let (balance, ledger) = points_of(&t, &user).await;
    assert_eq!((balance, ledger.len()), (20, 1), "applied once");
    // Nothing waits any more; a replay of the applied event is refused.
    let customer = snap
        .of_kind("PROVIDER_CUSTOMER")
        .into_iter()
        .find(|c| get_s(c, "pk").is_some_and(|pk| pk.contains("completion:")))
        .cloned();
    assert!(
        customer.is_none_or(|c| !c.contains_key("waiting")),
        "the waiting set is empty"
    );
}

#[tokio::test]
async fn a_stripe_checkout_for_the_email_applies_its_unmatched_completion() {
    let t = TestStack::start().await;
    let email = t.email("viastripe");
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("st"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "unmatched", "{r}");
    let now = chrono::Utc::now().timestamp();
    let checkout = stripe_event(
        &t.id("co"),
        "checkout.session.completed",
        now,
        stripe_checkout(&t.id("cs"), &t.id("cus"), &email, "subscription", None),
    );
    let (_, r) = t.post_stripe(&checkout).await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let user = get_s(snap.user_by_email(&email).unwrap(), "user_id").unwrap();
    assert_eq!(
        get_n(
            snap.users()
                .into_iter()
                .find(|u| get_s(u, "user_id") == Some(user))
                .unwrap(),
            "points"
        ),
        Some(20)
    );
    assert_eq!(
        get_s(snap.event("kajabi", &t.id("st")).unwrap(), "status"),
        Some("processed")
    );
}

#[tokio::test]
async fn an_admin_links_an_unmatched_completion_to_a_member_with_another_email() {
    let t = TestStack::start().await;
    let (_, user) = bought(&t, "member").await;
    let other = t.email("personal-address");
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("lnk"), &other, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "unmatched", "{r}");
    let (status, listed) = t.admin("GET", "/admin/completions", None).await;
    assert_eq!(status, 200, "{listed}");
    let row = &listed["items"][0];
    assert_eq!(row["email"], other.as_str(), "{listed}");
    assert_eq!(row["course"]["name"], AI_COURSE);
    assert_eq!(row["status"], "unmatched");
    let reference = row["id"].as_str().unwrap().to_string();
    let path = format!("/admin/completions/{reference}/link");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": "usr_nobody"})),
            Some("link-0"),
        )
        .await;
    assert_eq!(status, 404, "an unknown member: {body}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": user})),
            Some("link-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["old_status"], "unmatched");
    assert_eq!(body["new_status"], "processed", "{body}");
    assert_eq!(
        body["applies"],
        json!([format!("kajabi:{}", t.id("lnk"))]),
        "{body}"
    );
    assert_eq!(points_of(&t, &user).await.0, 20);
    let first = body;
    // The same link again repeats nothing; the email's next completion goes
    // to the linked member, and its course awards once.
    let (status, again) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": user})),
            Some("link-1"),
        )
        .await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "a retry answers the first answer"
    );
    assert_eq!(points_of(&t, &user).await.0, 20);
    // It is no longer listed for review, and linking it again is a conflict.
    let (_, listed) = t.admin("GET", "/admin/completions", None).await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (status, body) = t
        .admin_with_key(
            "POST",
            &path,
            Some(&json!({"user_id": user})),
            Some("link-2"),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (_, audit) = t
        .admin(
            "GET",
            "/admin/events?provider=admin&type=admin.link-completion",
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    // The linked email then buys: its own account appears, yet the link
    // holds, so its completions still go to the member it was linked to.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("other-buys"), &other, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let own = get_s(t.snapshot().await.user_by_email(&other).unwrap(), "user_id")
        .unwrap()
        .to_string();
    let (_, r) = t
        .post_kajabi(
            &v1_submission(&t.id("lnk2"), &other, "frm_data_literacy", "Data Literacy"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("lnk3"), &other, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(
        r["status"], "ignored",
        "the linked member has this course: {r}"
    );
    assert_eq!(points_of(&t, &user).await.0, 55);
    assert_eq!(points_of(&t, &own).await.0, 0, "never awarded to both");
}

#[tokio::test]
async fn a_purchase_applies_completions_still_waiting_when_the_account_already_exists() {
    use gatehouse::domain::{Email, Provider, UserId};
    let t = TestStack::start().await;
    let email = t.email("leftover");
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("left"), &email, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "unmatched", "{r}");
    // What an account creation leaves when it stops right after its commit:
    // the account, and the completion still waiting.
    let now = chrono::Utc::now();
    let store = &t.stack.services.store;
    let mut tx = store.tx();
    tx.create_user(
        &gatehouse::store::NewUser {
            id: UserId::generate(now.timestamp_millis()),
            email: Email::parse(&email).unwrap(),
            first_name: None,
            last_name: None,
            auth_provider: Provider::Stripe,
            metadata: Default::default(),
            awaiting_payment: false,
        },
        now,
    )
    .unwrap();
    store.commit(tx).await.unwrap();
    let snap = t.snapshot().await;
    assert_eq!(
        get_s(snap.event("kajabi", &t.id("left")).unwrap(), "status"),
        Some("unmatched")
    );
    let user = get_s(snap.user_by_email(&email).unwrap(), "user_id")
        .unwrap()
        .to_string();
    // The next purchase for the email reads it with its facts and applies it.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("left-buys"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(
        get_s(
            t.snapshot().await.event("kajabi", &t.id("left")).unwrap(),
            "status"
        ),
        Some("processed")
    );
    assert_eq!(points_of(&t, &user).await.0, 20);
}

#[tokio::test]
async fn an_admin_dismisses_a_completion_and_the_daily_digest_names_those_left() {
    let t = TestStack::start().await;
    let digest = |t: &TestStack| {
        let digest = std::sync::Arc::clone(&t.stack.digest);
        async move { digest.handle().await.unwrap()["digest"].clone() }
    };
    assert_eq!(digest(&t).await, "none waiting");
    let (spam, kept) = (t.email("spam"), t.email("kept"));
    for (id, email) in [("spam", &spam), ("kept", &kept)] {
        let (_, r) = t
            .post_kajabi(
                &seed_completion(&t.id(id), email, AI_COURSE),
                Auth::Signature,
            )
            .await;
        assert_eq!(r["status"], "unmatched", "{r}");
    }
    // One digest a day, naming both, however often the schedule fires.
    assert_eq!(digest(&t).await, "processed");
    assert_eq!(digest(&t).await, "duplicate");
    t.drain_queue().await;
    let digests: Vec<_> = t
        .emails_to(&t.admin)
        .await
        .into_iter()
        .filter(|m| m.subject.contains("wait for review"))
        .collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert!(
        digests[0].subject.starts_with("2 course completions"),
        "{}",
        digests[0].subject
    );
    assert!(digests[0].body.contains(&spam) && digests[0].body.contains(AI_COURSE));

    let (_, listed) = t
        .admin("GET", "/admin/completions?status=unmatched", None)
        .await;
    let spam_id = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == spam.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/admin/completions/{spam_id}/dismiss");
    let (status, body) = t
        .admin_with_key("POST", &path, Some(&json!({})), Some("dismiss-0"))
        .await;
    assert_eq!(status, 400, "a reason is required: {body}");
    let reason = json!({"reason": "a test submission"});
    let (status, first) = t
        .admin_with_key("POST", &path, Some(&reason), Some("dismiss-1"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["new_status"], "dismissed");
    let (status, again) = t
        .admin_with_key("POST", &path, Some(&reason), Some("dismiss-1"))
        .await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "a retry repeats the answer"
    );
    let (status, body) = t
        .admin_with_key("POST", &path, Some(&reason), Some("dismiss-2"))
        .await;
    assert_eq!(status, 409, "already dismissed: {body}");
    let (_, unmatched) = t.admin("GET", "/admin/completions", None).await;
    assert_eq!(
        unmatched["items"].as_array().unwrap().len(),
        1,
        "{unmatched}"
    );
    assert_eq!(unmatched["items"][0]["email"], kept.as_str());
    let (_, dismissed) = t
        .admin("GET", "/admin/completions?status=dismissed", None)
        .await;
    assert_eq!(
        dismissed["items"][0]["reason"], "a test submission",
        "{dismissed}"
    );
    let (_, audit) = t
        .admin(
            "GET",
            "/admin/events?provider=admin&type=admin.dismiss-completion",
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    // The schedule fires again the same day, with fewer waiting: still one digest.
    assert_eq!(digest(&t).await, "duplicate");

    // Neither a redelivery nor the email's own account applies it.
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("spam"), &spam, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "duplicate", "{r}");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("spam-buys"), &spam, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let spammer = get_s(snap.user_by_email(&spam).unwrap(), "user_id")
        .unwrap()
        .to_string();
    assert_eq!(points_of(&t, &spammer).await.0, 0);
    assert_eq!(
        get_s(snap.event("kajabi", &t.id("spam")).unwrap(), "status"),
        Some("dismissed")
    );

    // The one left is linked from the CLI, by its event key.
    let (_, user) = bought(&t, "member").await;
    let key = format!("kajabi:{}", t.id("kept"));
    let linked = cli(&t, &["completions", "link", &key, "--user", &user]).await;
    assert_eq!(linked.code, 0, "{}", linked.stderr);
    assert!(
        linked.stdout.contains("unmatched -> processed"),
        "{}",
        linked.stdout
    );
    assert_eq!(points_of(&t, &user).await.0, 20);
    let listed = cli(&t, &["completions", "list"]).await;
    assert!(
        listed.stdout.contains("0 completion(s)"),
        "{}",
        listed.stdout
    );
    let dismiss = cli(&t, &["completions", "dismiss", &key, "--reason", "late"]).await;
    assert_ne!(
        dismiss.code, 0,
        "a linked completion is not dismissed: {}",
        dismiss.stdout
    );
    assert!(dismiss.stderr.contains("409"), "{}", dismiss.stderr);
}

/// A link and a dismissal of one completion at once: exactly one wins, and
/// the completion ends as the winner says (awarded once, or dismissed with
/// nothing awarded), never linked and dismissed both.
#[tokio::test]
async fn a_link_racing_a_dismissal_ends_one_way_only() {
    let t = TestStack::start().await;
    let (_, user) = bought(&t, "racer").await;
    let mut awarded = 0;
    for round in 0..6 {
        let email = t.email(&format!("race-{round}"));
        let event = t.id(&format!("race-{round}"));
        let (_, r) = t
            .post_kajabi(&seed_completion(&event, &email, AI_COURSE), Auth::Signature)
            .await;
        assert_eq!(r["status"], "unmatched", "{r}");
        let id = gatehouse::admin::listing::encode_event_key(&gatehouse::domain::EventKey::new(
            gatehouse::domain::Provider::Kajabi,
            &event,
        ));
        let link_body = json!({"user_id": user});
        let dismiss_body = json!({"reason": "a race"});
        let link_path = format!("/admin/completions/{id}/link");
        let dismiss_path = format!("/admin/completions/{id}/dismiss");
        let link_key = format!("race-link-{round}");
        let dismiss_key = format!("race-dismiss-{round}");
        let ((link, linked), (dismiss, dismissed)) = tokio::join!(
            t.admin_with_key("POST", &link_path, Some(&link_body), Some(&link_key)),
            t.admin_with_key(
                "POST",
                &dismiss_path,
                Some(&dismiss_body),
                Some(&dismiss_key)
            ),
        );
        let status = get_s(
            t.snapshot().await.event("kajabi", &event).unwrap(),
            "status",
        )
        .unwrap()
        .to_string();
        match (link, dismiss) {
            (200, 409) => {
                // The first linked completion awards the course; later ones
                // are recorded with no points.
                let expected = if awarded == 0 { "processed" } else { "ignored" };
                assert_eq!(linked["new_status"], expected, "{linked}");
                assert_eq!(status, expected);
                awarded += 1;
            }
            (409, 200) => {
                assert_eq!(dismissed["new_status"], "dismissed", "{dismissed}");
                assert_eq!(status, "dismissed");
            }
            other => panic!("round {round}: {other:?} {linked} {dismissed}"),
        }
    }
    // The course awards once, however many of its completions were linked.
    assert_eq!(
        points_of(&t, &user).await.0,
        if awarded > 0 { 20 } else { 0 }
    );
}

async fn cli(t: &TestStack, args: &[&str]) -> gatehouse_admin::Outcome {
    t.cli(args).await
}

fn csv_file(t: &TestStack, name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}-{name}.csv", t.run));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

fn lines(report: &Value, outcome: &str) -> Vec<u64> {
    report[outcome]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap_or_else(|| r["row"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_csv_import_awards_once_keeps_the_unknown_and_names_each_bad_row() {
    let t = TestStack::start().await;
    let (member, user) = bought(&t, "csv").await;
    let (webhooked, other) = bought(&t, "hooked").await;
    let (_, r) = t
        .post_kajabi(
            &seed_completion(&t.id("wh"), &webhooked, AI_COURSE),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let stranger = t.email("stranger");
    let file = csv_file(
        &t,
        "completions",
        &format!(
            "email,course,completion_date,points\n\
             {member},{AI_COURSE},2026-11-02,20\n\
             {stranger},ai_foundations_for_educators,2026-11-02,\n\
             not-an-email,{AI_COURSE},2026-11-02,\n\
             {member},Underwater Basket Weaving,2026-11-02,\n\
             {member},data_literacy,02/11/2026,\n\
             {webhooked},\"AI Foundations for Educators\",2026-11-01,\n\
             {member},data_literacy,2026-11-03,35\n"
        ),
    );

    // A dry run reports and changes nothing.
    let dry = cli(&t, &["--json", "completions", "import", &file, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dry: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(lines(&dry, "awarded"), [2, 8]);
    assert_eq!(points_of(&t, &user).await.0, 0);

    let first = cli(&t, &["--json", "completions", "import", &file]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(first["rows"], 7);
    assert_eq!(lines(&first, "awarded"), [2, 8]);
    assert_eq!(
        lines(&first, "already_awarded"),
        [7],
        "the webhook delivered it"
    );
    assert_eq!(lines(&first, "unmatched"), [3]);
    assert_eq!(lines(&first, "invalid"), [4, 5, 6]);
    let reasons: Vec<&str> = first["invalid"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].starts_with("bad email"), "{reasons:?}");
    assert!(reasons[1].starts_with("unknown course"), "{reasons:?}");
    assert!(reasons[2].starts_with("bad date"), "{reasons:?}");
    assert_eq!(points_of(&t, &user).await.0, 55);
    assert_eq!(
        points_of(&t, &other).await.0,
        20,
        "awarded once, by the webhook"
    );

    // The same file again awards nothing more; the table output says so.
    let again = cli(&t, &["completions", "import", &file]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.starts_with(
            "7 rows: 0 awarded, 3 already awarded, 1 unmatched, 3 invalid, 0 not applied"
        ),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("line 4: bad email"),
        "{}",
        again.stdout
    );
    assert_eq!(points_of(&t, &user).await.0, 55);

    // The unknown email's row is applied when that member buys.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("stranger-buys"), &stranger, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let snap = t.snapshot().await;
    let stranger_id = get_s(snap.user_by_email(&stranger).unwrap(), "user_id")
        .unwrap()
        .to_string();
    assert_eq!(points_of(&t, &stranger_id).await.0, 20);
}

#[tokio::test]
async fn a_malformed_csv_is_refused_whole_naming_the_line() {
    let t = TestStack::start().await;
    let (member, user) = bought(&t, "badfile").await;
    for (name, text, expect) in [
        ("header", format!("mail,course,completion_date\n{member},{AI_COURSE},2026-11-02\n"), "line 1"),
        (
            "columns",
            format!("email,course,completion_date\n{member},{AI_COURSE},2026-11-02\n{member},{AI_COURSE}\n"),
            "line 3",
        ),
        ("quote", format!("email,course,completion_date\n\"{member},{AI_COURSE},2026-11-02\n"), "line 2"),
    ] {
        let file = csv_file(&t, name, &text);
        let out = cli(&t, &["completions", "import", &file]).await;
        assert_ne!(out.code, 0, "{name}");
        assert!(out.stderr.contains(expect), "{name}: {}", out.stderr);
    }
    // The server refuses such a file on its own too, and applies nothing.
    let client = t.admin_client();
    let body =
        format!("email,course,completion_date\n{member},{AI_COURSE},2026-11-02\n{member},x\n");
    let answer = client
        .send(
            "POST",
            "/admin/completions/import",
            Some((body.into_bytes(), "text/csv")),
            Some("bad-1"),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body["detail"].as_str().unwrap().contains("line 3"),
        "{}",
        answer.body
    );
    let bytes = b"email,course,completion_date\n\xff\xfe\n".to_vec();
    let answer = client
        .send(
            "POST",
            "/admin/completions/import",
            Some((bytes, "text/csv")),
            Some("bad-2"),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("line 2: the file is not UTF-8"),
        "{}",
        answer.body
    );
    assert_eq!(points_of(&t, &user).await.0, 0);
}
