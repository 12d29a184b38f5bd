//! `gatehouse-admin`: see `gatehouse_admin::commands::USAGE`.

use std::process::ExitCode;

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use gatehouse_admin::commands::{describe_error, parse, GlobalOptions};
use gatehouse_admin::{new_idempotency_key, AdminClient, CliError};

/// `infra/local.env` of this checkout: plain KEY=VALUE lines; the environment wins.
fn local_setting(key: &str) -> Option<String> {
    if let Ok(value) = std::env::var(key) {
        return Some(value);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/local.env");
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

async fn client(options: &GlobalOptions) -> Result<AdminClient, CliError> {
    if options.local {
        let need = |k: &str| {
            local_setting(k)
                .ok_or_else(|| CliError::Config(format!("{k} is not set in infra/local.env")))
        };
        let endpoint = options
            .endpoint
            .clone()
            .unwrap_or(format!("http://{}", need("GATEHOUSE_ADDR")?));
        let credentials = Credentials::new(
            need("ADMIN_ACCESS_KEY_ID")?,
            need("ADMIN_SECRET_ACCESS_KEY")?,
            None,
            None,
            "gatehouse-local",
        );
        let region = options.region.clone().unwrap_or(need("AWS_REGION")?);
        return Ok(AdminClient::new(&endpoint, credentials, &region));
    }
    let endpoint = options
        .endpoint
        .clone()
        .or_else(|| std::env::var("GATEHOUSE_API_URL").ok())
        .ok_or_else(|| {
            CliError::Config(
                "give --endpoint or set GATEHOUSE_API_URL (the stack's ApiUrl output)".into(),
            )
        })?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let credentials = config
        .credentials_provider()
        .ok_or_else(|| CliError::Credentials("no credential provider".into()))?
        .provide_credentials()
        .await
        .map_err(|e| CliError::Credentials(e.to_string()))?;
    let region = options
        .region
        .clone()
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| CliError::Config("give --region or configure a default region".into()))?;
    Ok(AdminClient::new(&endpoint, credentials, &region))
}

async fn run() -> Result<ExitCode, CliError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, command) = parse(&args)?;
    let client = client(&options).await?;
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let call = command.call(cursor.as_deref());
        let key = call.mutating.then(new_idempotency_key);
        let answer = client
            .call(call.method, &call.path, call.body.as_ref(), key.as_deref())
            .await?;
        if answer.status >= 400 {
            eprintln!("{}", describe_error(&answer));
            if options.json {
                println!("{}", answer.body);
            }
            return Ok(ExitCode::from(1));
        }
        let next = answer.body["next_cursor"].as_str().map(str::to_string);
        pages.push(answer.body);
        match next {
            Some(next) if command.follows_cursors() => cursor = Some(next),
            _ => break,
        }
    }
    for page in &pages {
        if options.json {
            println!("{page}");
        } else {
            println!("{}", command.render(page));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(CliError::Usage(text)) => {
            eprintln!("{text}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("gatehouse-admin: {e}");
            ExitCode::from(1)
        }
    }
}
