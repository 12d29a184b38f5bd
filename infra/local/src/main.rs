//! `gatehouse-local`: the local stack's command line.
//!
//! - `dev`: serve every function at GATEHOUSE_ADDR until SIGINT/SIGTERM
//! - `demo`: start a fresh stack on a free port and play the scenario
//! - `sign-event IN OUT`: re-sign a sample API Gateway event with the local secret
//! - `session-public-keys`: read `kid:seed,…` on stdin, print `SESSION_PUBLIC_KEYS`

use std::process::ExitCode;

use gatehouse_local::{moto, LocalStack, StackConfig};

fn usage() -> ExitCode {
    eprintln!(
        "usage: gatehouse-local dev | demo | sign-event IN.json OUT.json | session-public-keys < KEYS"
    );
    ExitCode::from(2)
}

/// Registers for SIGINT and SIGTERM before the stack starts, so a signal sent
/// as soon as the port answers stops the server instead of killing the process.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

async fn dev() -> Result<(), String> {
    let stop = shutdown_signal()?;
    let config = StackConfig::from_env().map_err(|e| e.to_string())?;
    let mut moto = moto::ensure(&config.endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let stack = LocalStack::start(config).await.map_err(|e| e.to_string())?;
    eprintln!(
        "gatehouse dev: listening on {} (moto at {}{})",
        stack.base_url(),
        stack.endpoint,
        if moto.started_here() {
            ", started here"
        } else {
            ""
        }
    );
    for route in &stack.routes {
        eprintln!("  {} {}{}", route.method, stack.base_url(), route.path);
    }
    stop.await;
    eprintln!("gatehouse dev: stopping");
    stack.shutdown().await;
    moto.stop();
    Ok(())
}

async fn demo() -> Result<(), String> {
    let mut config = StackConfig::from_env().map_err(|e| e.to_string())?;
    let mut moto = moto::ensure(&config.endpoint)
        .await
        .map_err(|e| e.to_string())?;
    // A fresh table and queue per run, so the demo can be rerun, also beside `make dev`.
    let run = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    config.names.table = format!("gatehouse-demo-{run}");
    config.names.queue = format!("gatehouse-demo-{run}-email");
    config.names.dlq = format!("gatehouse-demo-{run}-email-dlq");
    config.addr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    // Checkout against a local fake of Stripe's and Paystack's APIs and pages:
    // the return and cancel URLs point at this stack's own port.
    let stripe_key = "sk_test_demo_fake_stripe";
    let paystack_key = config
        .settings
        .paystack_secret_key
        .as_ref()
        .map(|k| k.expose().to_string())
        .unwrap_or_default();
    let fake = gatehouse_local::fake_payments::FakePayments::start(stripe_key, &paystack_key).await;
    config.settings.stripe_api_base = fake.base_url.clone();
    config.settings.stripe_secret_key = Some(gatehouse::config::Secret::new(stripe_key));
    config.settings.paystack_api_base = fake.base_url.clone();
    config.urls_from_listener = true;
    let stripe_secret = config
        .settings
        .stripe_webhook_secrets
        .first()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let stack = LocalStack::start(config).await.map_err(|e| e.to_string())?;
    fake.send_webhooks_to(gatehouse_local::fake_payments::WebhookTarget {
        base_url: stack.base_url(),
        stripe_secret,
        paystack_secret: paystack_key,
    });
    let mut result = gatehouse_local::demo::Demo::new(&stack)
        .with_payments(fake)
        .run()
        .await
        .map_err(|e| e.to_string());
    let denied = stack.iam.denied();
    if result.is_ok() && !denied.is_empty() {
        result = Err(format!(
            "{} AWS calls were not allowed by their function's policy in infra/template.yaml",
            denied.len()
        ));
    }
    stack.shutdown().await;
    moto.stop();
    result
}

/// The public halves of the session keys read on stdin: the value of the
/// `SessionPublicKeys` parameter. The seeds never leave this process.
fn session_public_keys() -> Result<(), String> {
    let mut seeds = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut seeds).map_err(|e| e.to_string())?;
    let keys = gatehouse::session::SessionKeys::parse(
        &gatehouse::config::Secret::new(seeds.trim()),
        "",
        "",
        chrono::Duration::hours(1),
    )
    .map_err(|e| e.to_string())?;
    println!("{}", keys.public_list());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = gatehouse_local::env::load_local_env() {
        eprintln!("cannot read infra/local.env: {e}");
        return ExitCode::from(2);
    }
    gatehouse::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["dev"] => dev().await,
        ["demo"] => demo().await,
        ["sign-event", input, output] => gatehouse_local::events::sign_event_file(input, output),
        ["session-public-keys"] => session_public_keys(),
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
