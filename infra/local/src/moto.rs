//! moto server: start it when it is not up, read what SES "sent".

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto is not running at {0} and could not be started: {1}")]
    Start(String, String),
    #[error("moto did not answer at {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("moto API: {0}")]
    Api(String),
}

pub async fn is_up(endpoint: &str) -> bool {
    let client = reqwest::Client::new();
    client
        .get(format!("{endpoint}/moto-api/config"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A moto server this process started; dropped means stopped.
pub struct MotoGuard {
    child: Option<Child>,
}

impl MotoGuard {
    pub fn started_here(&self) -> bool {
        self.child.is_some()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MotoGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The venv's Python runs `scripts/moto_server.py`: moto with DynamoDB requests
/// serialized (see that file for why).
fn moto_python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::env::workspace_root().join(".venv/local/bin/python"))
}

/// Uses the moto at `endpoint` if it answers, else starts one on its port.
pub async fn ensure(endpoint: &str) -> Result<MotoGuard, MotoError> {
    if is_up(endpoint).await {
        return Ok(MotoGuard { child: None });
    }
    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| MotoError::Start(endpoint.into(), "endpoint has no port".into()))?;
    let log_dir = crate::env::workspace_root().join(".moto");
    let _ = std::fs::create_dir_all(&log_dir);
    let log = std::fs::File::create(log_dir.join(format!("moto-{port}.log")))
        .map_err(|e| MotoError::Start(endpoint.into(), e.to_string()))?;
    let launcher = crate::env::workspace_root().join("scripts/moto_server.py");
    let child = Command::new(moto_python())
        .arg(launcher)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| MotoError::Start(endpoint.into(), e.to_string()))?,
        )
        .stderr(log)
        .spawn()
        .map_err(|e| {
            MotoError::Start(
                endpoint.into(),
                format!("{e} (run `make setup` to install it)"),
            )
        })?;
    let guard = MotoGuard { child: Some(child) };
    let deadline = Duration::from_secs(30);
    let start = Instant::now();
    while start.elapsed() < deadline {
        if is_up(endpoint).await {
            return Ok(guard);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(MotoError::Timeout(endpoint.into(), deadline))
}

/// One message as SES received it (moto keeps the HTML part when both are given).
#[derive(Debug, Clone, Deserialize)]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub subject: String,
    pub body: String,
    pub destinations: Destinations,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Destinations {
    #[serde(rename = "ToAddresses", default)]
    pub to: Vec<String>,
}

impl SentEmail {
    pub fn is_to(&self, address: &str) -> bool {
        self.destinations
            .to
            .iter()
            .any(|t| t.eq_ignore_ascii_case(address))
    }

    /// The whole setup URL as the member would click it.
    pub fn setup_url(&self) -> Option<String> {
        let marker = self.body.find("/account/setup#token=")?;
        let start = self.body[..marker].rfind("http")?;
        let rest = &self.body[start..];
        let end = rest.find(['"', '<', '\n', ' ']).unwrap_or(rest.len());
        Some(rest[..end].replace("&amp;", "&"))
    }

    /// The setup token and email from the link in the body, if any.
    pub fn setup_link(&self) -> Option<(String, String)> {
        let start = self.body.find("/account/setup#token=")?;
        let rest = &self.body[start + "/account/setup#token=".len()..];
        let end = rest.find(['"', '<', '\n', ' ']).unwrap_or(rest.len());
        let fragment = rest[..end].replace("&amp;", "&");
        let (token, email) = fragment.split_once("&email=")?;
        let email = gatehouse::http::parse_query(&format!("e={email}")).pop()?.1;
        Some((token.to_string(), email))
    }
}

pub async fn sent_emails(endpoint: &str) -> Result<Vec<SentEmail>, MotoError> {
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        ses: Ses,
    }
    #[derive(Deserialize, Default)]
    struct Ses {
        #[serde(rename = "Message", default)]
        message: Vec<SentEmail>,
    }
    // `?service=ses` is honoured by scripts/moto_server.py; plain moto ignores it.
    let data: Data = reqwest::get(format!("{endpoint}/moto-api/data.json?service=ses"))
        .await
        .map_err(|e| MotoError::Api(e.to_string()))?
        .json()
        .await
        .map_err(|e| MotoError::Api(e.to_string()))?;
    Ok(data.ses.message)
}
