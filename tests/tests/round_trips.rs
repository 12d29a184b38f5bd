//! DynamoDB round trips per event (design: a new purchase in 2, a duplicate in 1).
//! Counted by an SDK interceptor on the function's own client.

use gatehouse::aws::RoundTripCounter;
use gatehouse::store::Store;
use gatehouse_e2e::{purchase, TestStack, KAJABI_SECRET};

fn request(body: &str) -> gatehouse::http::ApiRequest {
    gatehouse::http::ApiRequest {
        method: "POST".into(),
        path: "/webhooks/kajabi".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (
                "x-kajabi-signature".into(),
                gatehouse::signature::hmac_sha256_hex(KAJABI_SECRET.as_bytes(), body.as_bytes()),
            ),
        ],
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn new_purchase_takes_two_round_trips_and_a_duplicate_one() {
    let t = TestStack::start().await;
    let counter = RoundTripCounter::default();
    let mut services = t.stack.services.clone();
    services.store = Store::new(
        counter.instrument(&t.stack.clients.dynamodb),
        services.store.table(),
    );
    let function = kajabi_webhook::KajabiWebhook::new(services);
    let body = purchase(&t.id("evt"), &t.email("count"), "off_456");

    let response = function.handle(request(&body)).await;
    assert_eq!(response.body_json()["status"], "processed");
    assert_eq!(counter.take(), vec!["BatchGetItem", "TransactWriteItems"]);

    let response = function.handle(request(&body)).await;
    assert_eq!(response.body_json()["status"], "duplicate");
    assert_eq!(counter.take(), vec!["BatchGetItem"]);

    let ignored = serde_json::json!({"type": "tag_added", "id": t.id("tag")}).to_string();
    let response = function.handle(request(&ignored)).await;
    assert_eq!(response.body_json()["status"], "ignored");
    assert_eq!(
        counter.take(),
        vec!["PutItem"],
        "an ignored event is one conditional put"
    );
}
