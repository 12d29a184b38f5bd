//! The CloudWatch metrics (EMF lines) a real run writes, read back and counted.

use gatehouse::metrics::{capture, captured, totals};
use gatehouse_e2e::{purchase, stripe_event, Auth, TestStack};
use serde_json::json;

#[tokio::test]
async fn a_run_writes_the_counts_the_alarms_watch() {
    capture();
    let t = TestStack::start().await;
    let email = t.email("metrics");
    let body = purchase(&t.id("evt"), &email, "off_456");
    assert_eq!(
        t.post_kajabi(&body, Auth::Signature).await.1["status"],
        "processed"
    );
    assert_eq!(
        t.post_kajabi(&body, Auth::Signature).await.1["status"],
        "duplicate"
    );
    assert_eq!(t.post_kajabi(&body, Auth::BadSignature).await.0, 401);
    // Signed but not JSON: recorded failed, answered 400.
    assert_eq!(t.post_kajabi("{not json", Auth::Signature).await.0, 400);
    let ignored = stripe_event(
        &t.id("st"),
        "charge.captured",
        chrono::Utc::now().timestamp(),
        json!({}),
    );
    assert_eq!(t.post_stripe(&ignored).await.1["status"], "ignored");
    t.wait_emails(&email, 1).await;
    t.wait_emails(&t.admin, 1).await;

    let lines = captured();
    let of = |metric: &str| totals(&lines, "Provider", metric);
    assert_eq!(of("received")["kajabi"], 4.0);
    assert_eq!(of("failed")["kajabi"], 1.0);
    assert_eq!(of("received")["stripe"], 1.0);
    assert_eq!(of("processed")["kajabi"], 1.0);
    assert_eq!(of("duplicate")["kajabi"], 1.0);
    assert_eq!(of("unauthorized")["kajabi"], 1.0);
    assert_eq!(of("ignored")["stripe"], 1.0);
    assert!(!of("unavailable").contains_key("kajabi"));
    // One latency sample per answered delivery.
    let latencies = lines
        .iter()
        .filter(|l| l.contains("\"latency\"") && l.contains("\"kajabi\""))
        .count();
    assert_eq!(latencies, 2);
    // The member's welcome and the admin's notice.
    assert_eq!(totals(&lines, "Component", "sent")["email"], 2.0);
}

#[tokio::test]
async fn completions_count_received_awarded_duplicate_and_unmatched_once_each() {
    capture();
    let t = TestStack::start().await;
    let member = t.email("learner");
    let (_, r) = t
        .post_kajabi(&purchase(&t.id("buy"), &member, "off_456"), Auth::Signature)
        .await;
    assert_eq!(r["status"], "processed");
    let completion = |id: &str, email: &str| {
        json!({"event_type": "form.submitted", "event_id": t.id(id),
            "data": {"form": {"id": "form_123"}, "submission": {"id": id, "fields": {
                "email": email, "course_name": "AI Foundations for Educators", "completion_date": "2026-11-02"}}}})
        .to_string()
    };
    let stranger = t.email("stranger");
    for (id, email, expected) in [
        ("c1", &member, "processed"),
        ("c1", &member, "duplicate"),
        ("c2", &member, "ignored"),
        ("c3", &stranger, "unmatched"),
        ("c3", &stranger, "unmatched"),
    ] {
        let (_, r) = t.post_kajabi(&completion(id, email), Auth::Signature).await;
        assert_eq!(r["status"], expected, "{id}: {r}");
    }
    // The stranger buys: the waiting completion is awarded, and neither
    // received nor unmatched counts it again.
    let (_, r) = t
        .post_kajabi(
            &purchase(&t.id("buy2"), &stranger, "off_456"),
            Auth::Signature,
        )
        .await;
    assert_eq!(r["status"], "processed");
    let lines = captured();
    let of = |metric: &str| {
        totals(&lines, "Provider", metric)
            .get("kajabi")
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(of("completions_received"), 3.0);
    assert_eq!(of("completions_awarded"), 2.0);
    assert_eq!(of("completions_duplicate"), 2.0);
    assert_eq!(of("completions_unmatched"), 1.0);
}
