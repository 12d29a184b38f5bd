//! Scheduled daily: one email to the admin naming the course completions
//! that match no member, only when some do, and once per day however often
//! it runs.

use gatehouse::service::{ServiceError, Services};
use serde_json::{json, Value};

pub struct CompletionsDigest {
    services: Services,
}

impl CompletionsDigest {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self) -> Result<Value, ServiceError> {
        Ok(match self.services.send_completions_digest().await? {
            Some(outcome) => json!({"digest": outcome.status()}),
            None => json!({"digest": "none waiting"}),
        })
    }
}
