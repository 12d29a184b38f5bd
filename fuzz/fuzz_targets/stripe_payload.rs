//! Any bytes as a Stripe webhook body: parsed as the function parses it.
#![no_main]

use gatehouse::service::source::{Stripe, WebhookSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let (id, kind) = Stripe::identify(&Stripe::parse(&json));
        let _ = (id.map(|i| i.len()), kind.len());
    }
});
