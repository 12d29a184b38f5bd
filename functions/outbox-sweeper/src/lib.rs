//! Scheduled: re-enqueues email jobs still pending after the sweep delay.

use gatehouse::service::{ServiceError, Services};
use serde_json::{json, Value};

pub struct OutboxSweeper {
    services: Services,
}

impl OutboxSweeper {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self) -> Result<Value, ServiceError> {
        let requeued = self.services.sweep_outbox().await?;
        Ok(json!({ "requeued": requeued }))
    }
}
