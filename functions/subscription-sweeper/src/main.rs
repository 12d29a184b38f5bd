//! Lambda wiring only; the handler lives in the library.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::telemetry::init();
    let services = gatehouse::service::Services::from_env().await?;
    let sweeper = Arc::new(subscription_sweeper::SubscriptionSweeper::new(services));
    gatehouse::lambda::run_events(move |_event: serde_json::Value| {
        let sweeper = Arc::clone(&sweeper);
        async move { Ok(sweeper.handle().await?) }
    })
    .await
}
