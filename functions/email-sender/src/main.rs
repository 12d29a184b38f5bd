//! Lambda wiring only; the handler lives in the library.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::telemetry::init();
    let services = gatehouse::service::Services::from_env().await?;
    let sender = Arc::new(email_sender::EmailSender::new(services));
    gatehouse::lambda::run_events(move |event: email_sender::SqsEvent| {
        let sender = Arc::clone(&sender);
        async move { Ok(sender.handle(event).await) }
    })
    .await
}
