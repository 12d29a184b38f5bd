//! The admin read actions through signed requests: user listing (index-backed,
//! filtered, paged), one user whole, the event log and one event.

use gatehouse_e2e::{lifecycle, purchase, Auth, Options, TestStack};
use serde_json::{json, Value};

async fn buy(t: &TestStack, name: &str, offer: &str) -> String {
    let email = t.email(name);
    let (_, r) = t
        .post_kajabi(&purchase(&t.id(name), &email, offer), Auth::Signature)
        .await;
    assert!(r["status"] == "processed" || r["status"] == "failed", "{r}");
    email
}

/// Every page of a listing, following `next_cursor`.
async fn all_pages(t: &TestStack, path: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (status, body) = t.admin("GET", &url, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages.push(body["items"].as_array().unwrap().clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
}

fn emails(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

async fn list(t: &TestStack, query: &str) -> Vec<String> {
    let (status, body) = t.admin("GET", &format!("/admin/users?{query}"), None).await;
    assert_eq!(status, 200, "{query}: {body}");
    emails(body["items"].as_array().unwrap())
}

#[tokio::test]
async fn users_page_in_email_order_and_filter() {
    let t = TestStack::start().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(buy(&t, &format!("pg{i}"), "off_456").await);
    }
    made.sort();

    // Three pages of 2, 2 and 1, in email order, nothing repeated.
    let pages = all_pages(&t, "/admin/users?limit=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let seen: Vec<String> = pages.iter().flat_map(|p| emails(p)).collect();
    assert_eq!(seen, made);

    // Activate pg0, expire pg1.
    let (token, _) = t.wait_emails(&made[0], 1).await[0].setup_link().unwrap();
    let (status, _) = t
        .post_json(
            "/account/setup-password",
            &json!({"email": made[0], "token": token, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, r) = t
        .post_kajabi(
            &lifecycle("expired", &t.id("pg1-expired"), &made[1], json!({})),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");

    assert_eq!(list(&t, "is_active=true").await, [made[0].clone()]);
    assert_eq!(list(&t, "is_active=false").await.len(), 4);
    assert_eq!(list(&t, "auth_provider=kajabi").await.len(), 5);
    assert!(list(&t, "auth_provider=stripe").await.is_empty());
    assert_eq!(
        list(&t, "subscription_status=expired").await,
        [made[1].clone()]
    );
    assert_eq!(list(&t, "subscription_status=active").await.len(), 4);
    assert_eq!(list(&t, "plan=nssa_annual").await.len(), 5);
    assert!(list(&t, "plan=premium_monthly").await.is_empty());
    let premium = list(&t, "role=premium-member").await;
    assert_eq!(premium.len(), 4);
    assert!(
        !premium.contains(&made[1]),
        "an expired member lost the role"
    );
    assert_eq!(list(&t, "role=free-user").await.len(), 5);
    assert_eq!(list(&t, "email_prefix=PG3").await, [made[3].clone()]);
    assert_eq!(
        list(
            &t,
            "email_prefix=pg&is_active=false&subscription_status=active"
        )
        .await,
        made[2..].to_vec()
    );

    // Filters and pagination together.
    let pages = all_pages(&t, "/admin/users?subscription_status=active&limit=3").await;
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 4);
    assert_eq!(pages[0].len(), 3);
    assert_eq!(pages[0][0]["subscriptions"][0]["state"], "active");

    // A cursor resumes only the query that issued it.
    let (_, first) = t.admin("GET", "/admin/users?limit=1", None).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, body) = t
        .admin(
            "GET",
            &format!("/admin/users?limit=1&is_active=true&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("belongs to a query"));
}

#[tokio::test]
async fn bad_filters_and_limits_are_400_with_the_reason() {
    let t = TestStack::start().await;
    for (query, needle) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("limit=many", "limit"),
        ("plan=gold", "gold"),
        ("role=wizard", "wizard"),
        ("subscription_status=paused", "subscription_status"),
        ("is_active=maybe", "is_active"),
        ("auth_provider=myspace", "auth_provider"),
        ("colour=blue", "unknown parameter `colour`"),
        ("cursor=garbage", "cursor"),
    ] {
        let (status, body) = t.admin("GET", &format!("/admin/users?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    for (query, needle) in [
        ("status=lost", "status"),
        ("provider=myspace", "provider"),
        ("from=yesterday", "RFC 3339"),
        ("from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "after"),
        ("limit=201", "limit"),
    ] {
        let (status, body) = t
            .admin("GET", &format!("/admin/events?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn one_user_whole_and_unknown_ids_404() {
    let t = TestStack::start_with(Options {
        email_pump: false,
        ..Default::default()
    })
    .await;
    let email = buy(&t, "whole", "off_456").await;
    let (_, listed) = t.admin("GET", "/admin/users", None).await;
    let id = listed["items"][0]["user_id"].as_str().unwrap().to_string();
    let (status, user) = t.admin("GET", &format!("/admin/users/{id}"), None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["profile"]["email"], email.as_str());
    assert_eq!(user["profile"]["partner"], "NSSA");
    assert_eq!(user["subscriptions"][0]["plan"], "nssa_annual");
    assert_eq!(user["subscriptions"][0]["state"], "active");
    assert_eq!(user["subscriptions"][0]["access"], true);
    assert_eq!(user["roles"], json!(["free-user", "premium-member"]));
    assert!(user["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("read:premium-content")));
    assert_eq!(user["points"], 0);
    assert_eq!(user["events"][0]["type"], "offer.purchased");
    assert_eq!(user["events"][0]["status"], "processed");
    // The pump is off: the welcome email is still pending.
    assert_eq!(user["unsent_emails"][0]["template"], "welcome");
    assert_eq!(user["unsent_emails"][0]["status"], "pending");
    assert!(user.to_string().find("password_hash").is_none());

    for unknown in ["usr_0000000000000000000000000000", "no%20such", "x"] {
        let (status, body) = t
            .admin("GET", &format!("/admin/users/{unknown}"), None)
            .await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert_eq!(
            body["type"],
            "https://gatehouse.dev/problems/user-not-found"
        );
    }
}

#[tokio::test]
async fn the_event_log_filters_pages_and_shows_payloads() {
    let t = TestStack::start().await;
    let email = buy(&t, "events", "off_456").await;
    buy(&t, "unknown-offer", "off_nope").await;
    let tag = json!({"type": "contact.deleted", "id": t.id("tag")}).to_string();
    t.post_kajabi(&tag, Auth::Signature).await;

    let pages = all_pages(&t, "/admin/events?limit=1").await;
    assert_eq!(pages.len(), 3, "one event per page");
    let types: Vec<&str> = pages
        .iter()
        .map(|p| p[0]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["contact.deleted", "offer.purchased", "offer.purchased"],
        "newest first"
    );

    let (_, failed) = t.admin("GET", "/admin/events?status=failed", None).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    assert!(failed["items"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown"));
    let (_, ignored) = t
        .admin(
            "GET",
            "/admin/events?type=contact.deleted&provider=kajabi",
            None,
        )
        .await;
    assert_eq!(ignored["items"].as_array().unwrap().len(), 1);
    let (_, none) = t.admin("GET", "/admin/events?provider=stripe", None).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, future) = t
        .admin(
            "GET",
            &format!("/admin/events?from={}", later.replace('+', "%2B")),
            None,
        )
        .await;
    assert!(future["items"].as_array().unwrap().is_empty());
    let earlier = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (_, window) = t
        .admin(
            "GET",
            &format!(
                "/admin/events?from={}&to={}",
                earlier.replace('+', "%2B"),
                later.replace('+', "%2B")
            ),
            None,
        )
        .await;
    assert_eq!(window["items"].as_array().unwrap().len(), 3);

    // By user: only that member's event.
    let (_, users) = t.admin("GET", "/admin/users", None).await;
    let id = users["items"][0]["user_id"].as_str().unwrap();
    let (_, mine) = t
        .admin("GET", &format!("/admin/events?user={id}"), None)
        .await;
    let mine = mine["items"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["user_id"], id);

    // One event with its raw payload, by the ref from the list.
    let reference = mine[0]["ref"].as_str().unwrap();
    let (status, event) = t
        .admin("GET", &format!("/admin/events/{reference}"), None)
        .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["payload"]["encoding"], "json");
    assert_eq!(event["payload"]["body"]["member"]["email"], email.as_str());
    assert_eq!(event["status"], "processed");

    let (status, _) = t.admin("GET", "/admin/events/c3RyaXBlOm5vbmU", None).await;
    assert_eq!(status, 404, "stripe:none does not exist");
    let (status, body) = t.admin("GET", "/admin/events/not-a-key", None).await;
    assert_eq!(status, 400, "{body}");
}
