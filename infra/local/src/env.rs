//! `infra/local.env`: plain KEY=VALUE lines. The process environment wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// Sets every key of `infra/local.env` that the environment does not already set.
pub fn load_local_env() -> std::io::Result<()> {
    let path = workspace_root().join("infra/local.env");
    let text = std::fs::read_to_string(path)?;
    for (key, value) in parse(&text) {
        if std::env::var_os(&key).is_none() {
            // Single-threaded at startup, before the runtime spawns workers.
            unsafe { std::env::set_var(key, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_lines() {
        let parsed = parse("# c\nA=1\n\nB = two words\nC=\"q\"\nnot a pair\n");
        assert_eq!(parsed.get("A").map(String::as_str), Some("1"));
        assert_eq!(parsed.get("B").map(String::as_str), Some("two words"));
        assert_eq!(parsed.get("C").map(String::as_str), Some("q"));
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn shipped_local_env_has_the_documented_keys() {
        let text = std::fs::read_to_string(workspace_root().join("infra/local.env")).unwrap();
        let parsed = parse(&text);
        for key in [
            "GATEHOUSE_ADDR",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "TABLE_NAME",
            "EMAIL_QUEUE_NAME",
            "EMAIL_DLQ_NAME",
            "KAJABI_WEBHOOK_SECRET",
            "KAJABI_URL_TOKENS",
            "FROM_EMAIL",
            "ADMIN_EMAIL",
            "FRONTEND_URL",
            "TOKEN_SIGNING_KEY",
        ] {
            assert!(parsed.contains_key(key), "infra/local.env lacks {key}");
        }
        assert!(
            parsed["GATEHOUSE_ADDR"].starts_with("127.0.0.1:"),
            "local server must bind loopback only"
        );
    }
}
