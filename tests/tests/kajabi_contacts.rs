//! Kajabi contacts and tags end to end (the full-sync seed): v1 `tag_added` /
//! `tag_removed` hooks keep the member's tags in the order of the contact's
//! `updated_at`, and a tag the plans file maps (`VIP` -> `kajabi_vip`) grants
//! its plan's roles while present; a change for an email no member has yet
//! waits and applies when one appears. Contact changes update a member's
//! name; a non-completion form's submitter is kept as a lead. Kajabi's
//! `payment_succeeded` and `order_created` hooks grant their offer's plan.
//! Payloads are Kajabi's documented samples, ids and times filled in.

use gatehouse::store::attr::get_s;
use gatehouse_e2e::{deliver_some_concurrently, purchase, Auth, TestStack};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// A v1 `tag_added` / `tag_removed` hook: the `contacts` resource (moved to
/// `updated_at`) and the `contact_tags` resource.
fn tag_hook(added: bool, hook: &str, contact: &str, email: &str, tag: &str, at: &str) -> String {
    json!({"id": hook, "event": if added { "tag_added" } else { "tag_removed" }, "payload": [
        {"id": contact, "type": "contacts", "attributes": {"name": "Ada Lovelace", "email": email,
            "address_line_1": null, "address_line_2": null, "address_city": null, "address_country": null,
            "address_state": null, "address_zip": null, "phone_number": null, "business_number": null,
            "subscribed": true, "external_user_id": null,
            "created_at": "2026-11-01T09:00:00.000Z", "updated_at": at},
         "links": {"customer": ""}, "relationships": {"site": {"data": {"id": "2", "type": "sites"}}}},
        {"id": format!("tag-{}", tag.to_lowercase()), "type": "contact_tags", "attributes": {"name": tag},
         "relationships": {"site": {"data": {"id": "2", "type": "sites"}}}}
    ]})
    .to_string()
}

async fn admin_view(t: &TestStack, email: &str) -> Value {
    let snap = t.snapshot().await;
    let user = get_s(snap.user_by_email(email).expect("the member"), "user_id")
        .unwrap()
        .to_string();
    let (status, view) = t.admin("GET", &format!("/admin/users/{user}"), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// The emails `GET /admin/users?role=` lists.
async fn role_holders(t: &TestStack, role: &str) -> Vec<String> {
    let (status, page) = t
        .admin("GET", &format!("/admin/users?role={role}&limit=50"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_string))
        .collect()
}

fn has_role(view: &Value, role: &str) -> bool {
    view["roles"].as_array().unwrap().iter().any(|r| r == role)
}

/// A member whose Kajabi plan has ended: only the base role.
async fn lapsed_member(t: &TestStack, name: &str) -> String {
    let email = t.email(name);
    for body in [
        purchase(&t.id(&format!("{name}-buy")), &email, "off_456"),
        gatehouse_e2e::lifecycle("expired", &t.id(&format!("{name}-exp")), &email, json!({})),
    ] {
        let (_, r) = t.post_kajabi(&body, Auth::Signature).await;
        assert_eq!(r["status"], "processed", "{r}");
    }
    assert!(!has_role(&admin_view(t, &email).await, "premium-member"));
    email
}

#[tokio::test]
async fn a_mapped_tag_grants_its_plans_role_while_present_in_the_order_of_updated_at() {
    let t = TestStack::start().await;
    let email = lapsed_member(&t, "tagged").await;
    let hook = |added: bool, at: &str| tag_hook(added, &t.id("hook"), "41", &email, "VIP", at);
    let (_, r) = t
        .post_kajabi(
            &hook(true, "2026-11-02T10:00:00.000Z"),
            Auth::Token(gatehouse_e2e::URL_TOKENS[0]),
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = admin_view(&t, &email).await;
    assert!(has_role(&view, "premium-member"), "{view}");
    assert_eq!(view["kajabi_tags"], json!(["VIP"]));
    // The admin list's role filter sees the tag's role, as sessions do.
    assert!(role_holders(&t, "premium-member").await.contains(&email));
    // The removal that came later in Kajabi, then the addition before it,
    // delivered late: the removal holds.
    let (_, r) = t
        .post_kajabi(&hook(false, "2026-11-03T10:00:00.000Z"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_kajabi(&hook(true, "2026-11-02T12:00:00.000Z"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "superseded", "{r}");
    let view = admin_view(&t, &email).await;
    assert!(!has_role(&view, "premium-member"), "{view}");
    assert_eq!(view["kajabi_tags"], json!([]));
    assert!(!role_holders(&t, "premium-member").await.contains(&email));
    // A redelivery is a duplicate; a tag the plans file does not map is
    // kept, and grants nothing.
    let (_, r) = t
        .post_kajabi(&hook(false, "2026-11-03T10:00:00.000Z"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "duplicate", "{r}");
    let newsletter = tag_hook(
        true,
        &t.id("hook"),
        "41",
        &email,
        "Newsletter",
        "2026-11-04T10:00:00.000Z",
    );
    let (_, r) = t.post_kajabi(&newsletter, Auth::Signature).await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = admin_view(&t, &email).await;
    assert_eq!(view["kajabi_tags"], json!(["Newsletter"]));
    assert_eq!(view["roles"], json!(["free-user"]));
}

/// An admin's revoke of a role a tag grants holds until the tag changes
/// again, as a revoke of a plan's role holds until the plan changes.
#[tokio::test]
async fn an_admin_revoke_of_a_tags_role_holds_until_the_tag_changes() {
    let t = TestStack::start().await;
    let email = lapsed_member(&t, "revoked").await;
    let hook = |added: bool, at: &str| tag_hook(added, &t.id("hook"), "41", &email, "VIP", at);
    let (_, r) = t
        .post_kajabi(&hook(true, "2026-11-02T10:00:00.000Z"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let user = admin_view(&t, &email).await["profile"]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = t
        .admin_with_key(
            "POST",
            &format!("/admin/users/{user}/roles"),
            Some(&json!({"revoke": "premium-member", "reason": "chargeback"})),
            Some("revoke-tag-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!has_role(&admin_view(&t, &email).await, "premium-member"));
    // Kajabi removes and re-adds the tag: a new grant, so the revoke lifts.
    for (added, at) in [
        (false, "2026-11-03T10:00:00.000Z"),
        (true, "2026-11-04T10:00:00.000Z"),
    ] {
        let (_, r) = t.post_kajabi(&hook(added, at), Auth::Signature).await;
        assert_eq!(r["status"], "processed", "{r}");
    }
    assert!(has_role(&admin_view(&t, &email).await, "premium-member"));
}

/// A tag change without the contact's `updated_at` cannot be ordered: it is
/// `failed` with the reason, never applied by Gatehouse's own clock.
#[tokio::test]
async fn a_tag_change_without_updated_at_is_failed_with_the_reason() {
    let t = TestStack::start().await;
    let email = lapsed_member(&t, "timeless").await;
    let mut body: Value =
        serde_json::from_str(&tag_hook(true, &t.id("hook"), "41", &email, "VIP", "x")).unwrap();
    body["payload"][0]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("updated_at");
    let (status, r) = t.post_kajabi(&body.to_string(), Auth::Signature).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("failed")), "{r}");
    assert!(!has_role(&admin_view(&t, &email).await, "premium-member"));
}

/// Property: any order of a member's purchase (which introduces them) and
/// four changes of their VIP tag, with duplicates and some deliveries at
/// once, ends as the latest change says, with nothing left waiting.
#[tokio::test]
async fn any_order_of_tag_changes_and_the_purchase_ends_as_the_latest_change() {
    let t = TestStack::start().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7a65_0001);
    for run in 0..gatehouse_e2e::ordering_runs().min(12) {
        let seed: u64 = rng.gen();
        let name = format!("perm{run}");
        let email = t.email(&name);
        let hook = t.id(&format!("{name}-hook"));
        let mut deliveries = vec![
            purchase(&t.id(&format!("{name}-buy")), &email, "off_456"),
            gatehouse_e2e::lifecycle("expired", &t.id(&format!("{name}-exp")), &email, json!({})),
            tag_hook(true, &hook, "41", &email, "VIP", "2026-11-02T10:00:00.000Z"),
            tag_hook(
                false,
                &hook,
                "41",
                &email,
                "VIP",
                "2026-11-03T10:00:00.000Z",
            ),
            tag_hook(true, &hook, "41", &email, "VIP", "2026-11-04T10:00:00.000Z"),
            // At the same instant as the last addition: the removal wins.
            // The latest names the tag with stray spaces and in lower case:
            // the same tag.
            tag_hook(
                false,
                &hook,
                "41",
                &email,
                "VIP",
                "2026-11-04T10:00:00.000Z",
            ),
            tag_hook(
                true,
                &hook,
                "41",
                &email,
                " vip ",
                "2026-11-05T10:00:00.000Z",
            ),
        ];
        let mut local = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..2 {
            let copy = deliveries[local.gen_range(0..deliveries.len())].clone();
            deliveries.push(copy);
        }
        deliveries.shuffle(&mut local);
        let stack = &t;
        let answers =
            deliver_some_concurrently(&deliveries, seed.rotate_left(11), |body| async move {
                stack.post_kajabi(&body, Auth::Signature).await
            })
            .await;
        for (status, answer) in answers {
            assert_eq!(status, 200, "seed {seed:#x}: {answer}");
            assert_ne!(answer["status"], "failed", "seed {seed:#x}: {answer}");
        }
        let view = admin_view(&t, &email).await;
        assert_eq!(
            view["kajabi_tags"],
            json!(["vip"]),
            "seed {seed:#x}: {view}"
        );
        assert!(has_role(&view, "premium-member"), "seed {seed:#x}: {view}");
        let snap = t.snapshot().await;
        let waiting = snap
            .events()
            .iter()
            .filter(|e| {
                get_s(e, "event_id").is_some_and(|id| id.contains(&name))
                    && matches!(get_s(e, "status"), Some("pending" | "unmatched"))
            })
            .count();
        assert_eq!(waiting, 0, "seed {seed:#x}: nothing left waiting");
    }
}

#[tokio::test]
async fn a_tag_for_an_unknown_email_waits_for_the_member_and_is_not_a_completion_to_review() {
    let t = TestStack::start().await;
    let email = t.email("early");
    let (_, r) = t
        .post_kajabi(
            &tag_hook(
                true,
                &t.id("hook"),
                "9",
                &email,
                "VIP",
                "2026-11-02T10:00:00.000Z",
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "unmatched", "{r}");
    let (_, listed) = t.admin("GET", "/admin/completions", None).await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("early-buy"), &email, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let view = admin_view(&t, &email).await;
    assert_eq!(view["kajabi_tags"], json!(["VIP"]), "{view}");
}

/// A contact change updates a member's name (a later change wins); for an
/// email no member has, it is recorded with the reason.
#[tokio::test]
async fn contact_changes_update_a_members_name_newest_first() {
    let t = TestStack::start().await;
    let email = lapsed_member(&t, "renamed").await;
    let contact = |id: &str, name: &str, at: &str, email: &str| {
        json!({"id": id, "event": "contact.updated", "payload": [
            {"id": "41", "type": "contacts", "attributes": {"name": name, "email": email,
                "created_at": "2026-11-01T09:00:00.000Z", "updated_at": at}}]})
        .to_string()
    };
    let (_, r) = t
        .post_kajabi(
            &contact(
                &t.id("c2"),
                "Augusta King",
                "2026-11-05T00:00:00.000Z",
                &email,
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed", "{r}");
    let (_, r) = t
        .post_kajabi(
            &contact(&t.id("c1"), "Ada Byron", "2026-11-04T00:00:00.000Z", &email),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "superseded", "{r}");
    let view = admin_view(&t, &email).await;
    assert_eq!(view["profile"]["first_name"], "Augusta", "{view}");
    assert_eq!(view["profile"]["last_name"], "King");
    let (_, r) = t
        .post_kajabi(
            &contact(
                &t.id("c3"),
                "Nobody",
                "2026-11-05T00:00:00.000Z",
                &t.email("stranger"),
            ),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "ignored", "{r}");
    let snap = t.snapshot().await;
    // A v1 contact change is keyed by the hook, the contact and the time it moved.
    let moved = chrono::DateTime::parse_from_rfc3339("2026-11-05T00:00:00.000Z")
        .unwrap()
        .timestamp_millis();
    let record = snap
        .event("kajabi", &format!("{}:41:{moved}", t.id("c3")))
        .unwrap();
    assert!(get_s(record, "reason").unwrap().contains("members only"));
}

/// A v1 `form_submission` of a form that completes no course keeps its
/// submitter as a lead: no user, no email.
#[tokio::test]
async fn a_non_completion_form_keeps_a_lead_and_makes_no_user() {
    let t = TestStack::start().await;
    let email = t.email("lead");
    let body = json!({"id": t.id("form-hook"), "event": "form_submission", "payload": [
        {"id": "301", "type": "form_submissions",
         "attributes": {"name": "Grace Hopper", "email": email, "address_line_1": null, "address_line_2": null,
            "address_city": null, "address_country": null, "address_state": null, "address_zip": null,
            "phone_number": null, "business_number": null, "mobile_phone_number": null},
         "relationships": {"site": {"data": {"id": "2", "type": "sites"}}, "form": {"data": {"id": "frm_newsletter", "type": "forms"}}}},
        {"id": "frm_newsletter", "type": "forms",
         "attributes": {"url": "https://site.example/forms/frm_newsletter", "title": "Newsletter", "default": false,
            "webhook_url": null, "created_at": null, "updated_at": null},
         "relationships": {"site": {"data": {"id": "2", "type": "sites"}}, "fields": {"data": []}, "contact_tags": {"data": []}}}
    ]})
    .to_string();
    for expected in ["ignored", "duplicate"] {
        let (_, r) = t.post_kajabi(&body, Auth::Signature).await;
        assert_eq!(r["status"], expected, "{r}");
    }
    let snap = t.snapshot().await;
    assert!(snap.user_by_email(&email).is_none(), "a lead is not a user");
    assert!(snap.jobs_to(&email).is_empty(), "a lead gets no email");
    let leads = snap.of_kind("KAJABI_LEAD");
    assert_eq!(leads.len(), 1);
    assert_eq!(get_s(leads[0], "email"), Some(email.as_str()));
    assert_eq!(get_s(leads[0], "last_form"), Some("Newsletter"));
    let record = snap
        .event("kajabi", &format!("{}:301", t.id("form-hook")))
        .unwrap();
    assert!(get_s(record, "reason")
        .unwrap()
        .contains("kept as a Kajabi lead"));
}

/// Kajabi's `payment_succeeded` and `order_created` hooks (documented
/// samples, the transaction's offer relationship filled in) grant the
/// offer's plan, once each.
#[tokio::test]
async fn payment_succeeded_and_order_created_grant_their_offers_plan() {
    let t = TestStack::start().await;
    for (event, name) in [("payment_succeeded", "payer"), ("order_created", "orderer")] {
        let email = t.email(name);
        let mut payload = vec![
            json!({"id": "5001", "type": "transactions", "attributes": {"action": "charge", "state": "succeeded",
                "payment_type": "charge", "amount_in_cents": 1000, "sales_tax_in_cents": 0, "currency": "USD",
                "currency_symbol": "$", "formatted_amount": "$10.00", "created_at": "2026-11-02T17:10:19.285Z"},
             "relationships": {"customer": {"data": {"id": "12", "type": "customers"}},
                "offer": {"data": {"id": "off_456", "type": "offers"}}}}),
            json!({"id": "12", "type": "customers", "attributes": {"name": "John Doe", "email": email,
                "avatar": null, "external_user_id": null, "public_bio": null, "public_location": null,
                "public_website": null, "socials": null, "net_revenue": "0.0", "sign_in_count": 0,
                "last_request_at": null, "bounced_at": null,
                "created_at": "2026-11-02T17:10:19.243Z", "updated_at": "2026-11-02T17:10:19.243Z"},
             "links": {"contact": "https://www.kajabi.test/api/v1/contacts/12"},
             "relationships": {"site": {"data": {"id": "2", "type": "sites"}},
                "contact": {"data": {"id": "12", "type": "contacts"}},
                "offers": {"data": [], "links": {"self": "https://www.kajabi.test/api/v1/customers/12/relationships/offers"}},
                "products": {"data": []}}}),
        ];
        if event == "order_created" {
            payload.push(json!({"id": "8001", "type": "orders", "attributes": {"order_number": 8001,
                "currency_code": "USD", "fulfilled_at": null, "created_at": "2026-11-02T17:13:05.207Z",
                "total_price_in_cents": 1000, "subtotal_in_cents": 800, "sales_tax_amount_in_cents": 200,
                "discount_amount_in_cents": 0}}));
        }
        let body = json!({"id": t.id(event), "event": event, "payload": payload}).to_string();
        for expected in ["processed", "duplicate"] {
            let (_, r) = t.post_kajabi(&body, Auth::Signature).await;
            assert_eq!(r["status"], expected, "{event}: {r}");
        }
        let view = admin_view(&t, &email).await;
        assert!(has_role(&view, "premium-member"), "{event}: {view}");
        assert_eq!(
            t.wait_emails(&email, 1).await.len(),
            1,
            "{event}: one welcome"
        );
    }
}
