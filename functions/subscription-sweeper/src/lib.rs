//! Scheduled: moves canceled subscriptions whose access has ended to expired
//! and queues the expiry email. Uses GSI2 (canceled, by access end), not a Scan.

use gatehouse::service::{ServiceError, Services};
use serde_json::{json, Value};

pub struct SubscriptionSweeper {
    services: Services,
}

impl SubscriptionSweeper {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self) -> Result<Value, ServiceError> {
        let expired = self.services.expire_ended_subscriptions().await?;
        Ok(json!({ "expired": expired }))
    }
}
