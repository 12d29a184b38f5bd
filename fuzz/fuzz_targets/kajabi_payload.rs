//! Any bytes as a Kajabi webhook body: parsed as the function parses it, and
//! keyed as its delivery would be (ids hashed or cut to fit a key).
#![no_main]

use gatehouse::domain::Provider;
use gatehouse::service::source::{Kajabi, WebhookSource};
use gatehouse::service::webhook::Delivery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let (id, kind) = Kajabi::identify(&Kajabi::parse(&json));
        let delivery = Delivery::new(Provider::Kajabi, id, kind, body, chrono::Utc::now());
        let _ = (delivery.key.to_string(), delivery.event_type.len());
    }
});
