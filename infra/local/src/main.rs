//! `gatehouse-local`: the local stack's command line.
//!
//! - `dev`: serve every function at GATEHOUSE_ADDR until SIGINT/SIGTERM
//! - `demo`: start a fresh stack on a free port and play the scenario
//! - `sign-event IN OUT`: re-sign a sample API Gateway event with the local secret

use std::process::ExitCode;

use gatehouse_local::{moto, LocalStack, StackConfig};

fn usage() -> ExitCode {
    eprintln!("usage: gatehouse-local dev | demo | sign-event IN.json OUT.json");
    ExitCode::from(2)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn dev() -> Result<(), String> {
    let config = StackConfig::from_env().map_err(|e| e.to_string())?;
    let mut moto = moto::ensure(&config.endpoint).await.map_err(|e| e.to_string())?;
    let stack = LocalStack::start(config).await.map_err(|e| e.to_string())?;
    eprintln!("gatehouse dev: listening on {} (moto at {}{})", stack.base_url(), stack.endpoint, if moto.started_here() { ", started here" } else { "" });
    for route in &stack.routes {
        eprintln!("  {} {}{}", route.method, stack.base_url(), route.path);
    }
    shutdown_signal().await;
    eprintln!("gatehouse dev: stopping");
    stack.shutdown().await;
    moto.stop();
    Ok(())
}

async fn demo() -> Result<(), String> {
    let mut config = StackConfig::from_env().map_err(|e| e.to_string())?;
    let mut moto = moto::ensure(&config.endpoint).await.map_err(|e| e.to_string())?;
    // A fresh table and queue per run, so the demo can be rerun, also beside `make dev`.
    let run = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    config.names.table = format!("gatehouse-demo-{run}");
    config.names.queue = format!("gatehouse-demo-{run}-email");
    config.names.dlq = format!("gatehouse-demo-{run}-email-dlq");
    config.addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let stack = LocalStack::start(config).await.map_err(|e| e.to_string())?;
    let result = gatehouse_local::demo::Demo::new(&stack).run().await;
    stack.shutdown().await;
    moto.stop();
    result.map_err(|e| e.to_string())
}

fn sign_event(input: &str, output: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let mut event: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let body = event["body"].as_str().unwrap_or_default().to_string();
    let secret = std::env::var("KAJABI_WEBHOOK_SECRET").unwrap_or_default();
    if let Some(headers) = event.get_mut("headers").and_then(|h| h.as_object_mut()) {
        if headers.contains_key("x-kajabi-signature") {
            let sig = gatehouse::signature::hmac_sha256_hex(secret.as_bytes(), body.as_bytes());
            headers.insert("x-kajabi-signature".into(), serde_json::Value::String(sig));
        }
    }
    if let Some(token) = std::env::var("KAJABI_URL_TOKENS").ok().and_then(|t| t.split(',').next().map(str::to_string)) {
        if let Some(query) = event.get("rawQueryString").and_then(|q| q.as_str()) {
            if query.contains("token=") {
                event["rawQueryString"] = serde_json::Value::String(format!("token={token}"));
                event["queryStringParameters"] = serde_json::json!({ "token": token });
            }
        }
    }
    if let Some(parent) = std::path::Path::new(output).parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let pretty = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?;
    std::fs::write(output, pretty).map_err(|e| format!("{output}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = gatehouse_local::env::load_local_env() {
        eprintln!("cannot read infra/local.env: {e}");
        return ExitCode::from(2);
    }
    gatehouse::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["dev"] => dev().await,
        ["demo"] => demo().await,
        ["sign-event", input, output] => sign_event(input, output),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-local: {e}");
            ExitCode::FAILURE
        }
    }
}
