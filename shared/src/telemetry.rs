//! Structured JSON logs. The Lambda runtime logs raw events at TRACE; the
//! workspace compiles TRACE out (`tracing/max_level_debug`) and the filter pins
//! the runtime crates to INFO as a second guard.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let filter = EnvFilter::try_new(format!(
        "{base},lambda_runtime=info,lambda_runtime_api_client=info,aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
    ))
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_is_compiled_out() {
        assert!(
            tracing::level_filters::STATIC_MAX_LEVEL < tracing::level_filters::LevelFilter::TRACE
        );
    }
}
