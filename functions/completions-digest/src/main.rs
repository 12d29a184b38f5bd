//! Lambda wiring only; the handler lives in the library.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::telemetry::init();
    let services = gatehouse::service::Services::from_env().await?;
    let digest = Arc::new(completions_digest::CompletionsDigest::new(services));
    gatehouse::lambda::run_events(move |_event: serde_json::Value| {
        let digest = Arc::clone(&digest);
        async move { Ok(digest.handle().await?) }
    })
    .await
}
