//! `gatehouse-admin`: signs admin API calls with SigV4 (service `execute-api`)
//! from the standard AWS credential chain, or from the local stack's dev
//! credentials with `--local`, and prints tables or JSON.

pub mod commands;
pub mod table;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("request failed: {0}")]
    Http(String),
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Config(String),
}

/// Signs a request; returns the headers to add (Authorization, X-Amz-Date,
/// X-Amz-Security-Token for temporary credentials).
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, CliError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| CliError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CliError::Signing(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A signed client for one Gatehouse API.
pub struct AdminClient {
    http: reqwest::Client,
    base_url: String,
    credentials: Credentials,
    region: String,
}

/// What the API answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl AdminClient {
    pub fn new(base_url: &str, credentials: Credentials, region: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials,
            region: region.to_string(),
        }
    }

    /// Sends one signed request. Mutating calls carry an `Idempotency-Key`.
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CliError> {
        let raw = body.map(|b| (b.to_string().into_bytes(), "application/json"));
        self.send(method, path_and_query, raw, idempotency_key)
            .await
    }

    /// Sends `body` with its media type, signed.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<(Vec<u8>, &str)>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CliError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let mut headers: Vec<(String, String)> = Vec::new();
        let raw = match body {
            Some((raw, media)) => {
                headers.push(("content-type".into(), media.to_string()));
                raw
            }
            None => Vec::new(),
        };
        if let Some(key) = idempotency_key {
            headers.push(("idempotency-key".into(), key.to_string()));
        }
        let signed = sign_request(
            method,
            &url,
            &headers,
            &raw,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        )?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let mut request = self.http.request(method, &url).body(raw);
        for (k, v) in headers.iter().chain(signed.iter()) {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CliError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| CliError::Http(e.to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }
}

/// A fresh idempotency key for one mutating command.
pub fn new_idempotency_key() -> String {
    format!("cli-{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// `infra/local.env` of this checkout: plain KEY=VALUE lines; the environment wins.
pub fn local_setting(key: &str) -> Option<String> {
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

/// The signed client the options ask for: local dev credentials with
/// `--local`, else the standard AWS credential chain.
pub async fn client(options: &commands::GlobalOptions) -> Result<AdminClient, CliError> {
    use aws_credential_types::provider::ProvideCredentials;
    if options.local {
        let need = |k: &str| {
            local_setting(k)
                .ok_or_else(|| CliError::Config(format!("{k} is not set in infra/local.env")))
        };
        let endpoint = match &options.endpoint {
            Some(e) => e.clone(),
            None => format!("http://{}", need("GATEHOUSE_ADDR")?),
        };
        let credentials = Credentials::new(
            need("ADMIN_ACCESS_KEY_ID")?,
            need("ADMIN_SECRET_ACCESS_KEY")?,
            None,
            None,
            "gatehouse-local",
        );
        let region = match &options.region {
            Some(r) => r.clone(),
            None => need("AWS_REGION")?,
        };
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

/// What one CLI run printed, and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the CLI on `args` (without the program name): what `gatehouse-admin` does.
pub async fn run(args: &[String]) -> Outcome {
    match run_inner(args).await {
        Ok(outcome) => outcome,
        Err(CliError::Usage(text)) => Outcome {
            code: 2,
            stdout: String::new(),
            stderr: text,
        },
        Err(e) => Outcome {
            code: 1,
            stdout: String::new(),
            stderr: format!("gatehouse-admin: {e}"),
        },
    }
}

async fn run_inner(args: &[String]) -> Result<Outcome, CliError> {
    let (options, command) = commands::parse(args)?;
    let client = client(&options).await?;
    let mut cursor: Option<String> = None;
    let mut stdout = Vec::new();
    // One key for the whole run, so a retry of this run can reuse it.
    let key = options
        .idempotency_key
        .clone()
        .unwrap_or_else(new_idempotency_key);
    if let commands::Command::CompletionsImport { file, dry_run } = &command {
        return import_completions(&client, &options, &command, file, *dry_run, &key).await;
    }
    loop {
        let call = command.call(cursor.as_deref());
        let answer = client
            .call(
                call.method,
                &call.path,
                call.body.as_ref(),
                call.mutating.then_some(key.as_str()),
            )
            .await?;
        if answer.status >= 400 {
            return Ok(Outcome {
                code: 1,
                stdout: if options.json {
                    answer.body.to_string()
                } else {
                    String::new()
                },
                stderr: commands::describe_error(&answer),
            });
        }
        let next = answer.body["next_cursor"].as_str().map(str::to_string);
        stdout.push(if options.json {
            answer.body.to_string()
        } else {
            command.render(&answer.body)
        });
        match next {
            Some(next) if command.follows_cursors() => cursor = Some(next),
            _ => break,
        }
    }
    Ok(Outcome {
        code: 0,
        stdout: stdout.join("\n"),
        stderr: String::new(),
    })
}

/// Rows the CLI sends a request: the server takes 10,000, but 2,000 finish
/// well inside its time budget even at a 256 MB function's CPU share.
const IMPORT_PIECE_ROWS: usize = 2_000;

/// `completions import`: the file in pieces of at most 2,000 rows, each with
/// its own Idempotency-Key derived from the run's (so a rerun with the same
/// `--idempotency-key` repeats nothing), line numbers mapped back to the file,
/// and a progress bar on stderr.
async fn import_completions(
    client: &AdminClient,
    options: &commands::GlobalOptions,
    command: &commands::Command,
    file: &str,
    dry_run: bool,
    key: &str,
) -> Result<Outcome, CliError> {
    use gatehouse::admin::import::split_csv;
    let raw = std::fs::read(file).map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    let pieces =
        split_csv(&raw, IMPORT_PIECE_ROWS).map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    let mut total = serde_json::json!({"dry_run": dry_run, "rows": 0,
        "awarded": {"count": 0, "rows": []}, "already_awarded": {"count": 0, "rows": []},
        "unmatched": {"count": 0, "rows": []}, "invalid": {"count": 0, "rows": []},
        "not_applied": {"count": 0, "rows": []}});
    let show_progress = !options.json && pieces.len() > 1;
    for (i, (piece, lines)) in pieces.iter().enumerate() {
        let answer = client
            .send(
                "POST",
                &format!("/admin/completions/import?dry_run={dry_run}"),
                Some((piece.clone().into_bytes(), "text/csv")),
                Some(&format!("{key}-{i}")),
            )
            .await?;
        if answer.status >= 400 {
            // What the earlier pieces did stands: say so, and how to go on.
            return Ok(Outcome {
                code: 1,
                stdout: if i == 0 {
                    String::new()
                } else if options.json {
                    total.to_string()
                } else {
                    command.render(&total)
                },
                stderr: format!(
                    "lines {}..{}: {}\nrerun with --idempotency-key {key} to repeat nothing already done",
                    lines.first().unwrap_or(&0),
                    lines.last().unwrap_or(&0),
                    commands::describe_error(&answer)
                ),
            });
        }
        // The server numbers each piece's rows from line 2.
        let original = |line: &Value| -> Value {
            line.as_u64()
                .and_then(|l| lines.get((l as usize).checked_sub(2)?))
                .map_or(Value::Null, |l| Value::from(*l))
        };
        total["rows"] = Value::from(
            total["rows"].as_u64().unwrap_or(0) + answer.body["rows"].as_u64().unwrap_or(0),
        );
        for outcome in [
            "awarded",
            "already_awarded",
            "unmatched",
            "invalid",
            "not_applied",
        ] {
            let count = total[outcome]["count"].as_u64().unwrap_or(0)
                + answer.body[outcome]["count"].as_u64().unwrap_or(0);
            total[outcome]["count"] = Value::from(count);
            let rows: Vec<Value> = answer.body[outcome]["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| {
                    if row.is_object() {
                        serde_json::json!({"row": original(&row["row"]), "reason": row["reason"]})
                    } else {
                        original(row)
                    }
                })
                .collect();
            if let Some(all) = total[outcome]["rows"].as_array_mut() {
                all.extend(rows);
            }
        }
        if show_progress {
            let done = i + 1;
            let width = 30;
            let filled = done * width / pieces.len();
            eprint!(
                "\r[{}{}] {done}/{} pieces",
                "#".repeat(filled),
                ".".repeat(width - filled),
                pieces.len()
            );
            if done == pieces.len() {
                eprintln!();
            }
        }
    }
    Ok(Outcome {
        code: 0,
        stdout: if options.json {
            total.to_string()
        } else {
            command.render(&total)
        },
        stderr: String::new(),
    })
}
