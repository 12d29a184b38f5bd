//! Lambda wiring only; the handler lives in the library.

#[tokio::main]
async fn main() -> Result<(), gatehouse::lambda::Error> {
    gatehouse::telemetry::init();
    let services = gatehouse::service::Services::from_env().await?;
    gatehouse::lambda::run_http(account_pages::AccountPages::new(services)).await
}
