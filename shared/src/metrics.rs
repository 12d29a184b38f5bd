//! CloudWatch Embedded Metric Format: one JSON line per measured thing,
//! written to stdout. Lambda sends stdout to CloudWatch Logs, and CloudWatch
//! turns each line into metrics: no SDK call and no time on the request path.
//! The alarms in the template watch these metrics.
//!
//! Format: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Map, Value};

/// The namespace every Gatehouse metric is in.
pub const NAMESPACE: &str = "Gatehouse";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF line: `metrics` under `dimensions` (a single dimension set), at
/// `timestamp_ms`. Pure, so the shape is unit-tested.
pub fn line(
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Unit, f64)],
    timestamp_ms: i64,
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        root.insert((*name).into(), Value::String((*value).into()));
    }
    for (name, _, value) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// Where lines go when a test is listening; stdout otherwise.
static CAPTURE: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

/// In Lambda (or with `GATEHOUSE_METRICS=stdout`) lines go to stdout; the
/// local stack keeps `make dev` and `make demo` readable without them.
fn to_stdout() -> bool {
    static TO_STDOUT: OnceLock<bool> = OnceLock::new();
    *TO_STDOUT.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || std::env::var("GATEHOUSE_METRICS").is_ok_and(|v| v == "stdout")
    })
}

/// Writes one EMF line now.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, Unit, f64)]) {
    let text = line(dimensions, metrics, chrono::Utc::now().timestamp_millis());
    if let Some(captured) = CAPTURE.get() {
        captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(text.clone());
    }
    if to_stdout() {
        // A closed stdout must never fail a request.
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

/// A count of 1 of `metric` for `provider` (a webhook source or a provider API).
pub fn count(provider: &str, metric: &str) {
    emit(&[("Provider", provider)], &[(metric, Unit::Count, 1.0)]);
}

/// A count of 1 of an email outcome (`sent`, `failed`, `parked`).
pub fn email(outcome: &str) {
    emit(&[("Component", "email")], &[(outcome, Unit::Count, 1.0)]);
}

/// Keeps a copy of every line this process writes from now on, for tests
/// (nextest runs each test in its own process).
pub fn capture() {
    let _ = CAPTURE.set(Mutex::new(Vec::new()));
}

/// The lines kept since [`capture`].
pub fn captured() -> Vec<String> {
    CAPTURE
        .get()
        .map(|c| {
            c.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
        .unwrap_or_default()
}

/// Sums `metric` over EMF `lines`, per value of `dimension`: how a test (or
/// a log query) reads back what was written.
pub fn totals(
    lines: &[String],
    dimension: &str,
    metric: &str,
) -> std::collections::BTreeMap<String, f64> {
    let mut totals = std::collections::BTreeMap::new();
    for line in lines {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let declared = value["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["Name"] == metric));
        if let (true, Some(key), Some(n)) =
            (declared, value[dimension].as_str(), value[metric].as_f64())
        {
            *totals.entry(key.to_string()).or_insert(0.0) += n;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape CloudWatch documents: `_aws` with the timestamp and one
    /// directive naming the namespace, the dimension keys and each metric's
    /// name and unit; the dimension and metric values at the root.
    #[test]
    fn lines_follow_the_specification() {
        let text = line(
            &[("Provider", "stripe")],
            &[
                ("processed", Unit::Count, 1.0),
                ("latency", Unit::Milliseconds, 12.5),
            ],
            1_700_000_000_000,
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Gatehouse",
                        "Dimensions": [["Provider"]],
                        "Metrics": [
                            {"Name": "processed", "Unit": "Count"},
                            {"Name": "latency", "Unit": "Milliseconds"}
                        ]
                    }]
                },
                "Provider": "stripe",
                "processed": 1.0,
                "latency": 12.5
            })
        );
        assert!(!text.contains('\n'), "one line");
    }

    #[test]
    fn totals_read_back_what_was_written() {
        let lines = vec![
            line(
                &[("Provider", "kajabi")],
                &[("processed", Unit::Count, 1.0)],
                0,
            ),
            line(
                &[("Provider", "kajabi")],
                &[("processed", Unit::Count, 1.0)],
                0,
            ),
            line(
                &[("Provider", "stripe")],
                &[("failed", Unit::Count, 1.0)],
                0,
            ),
            "not json".to_string(),
        ];
        assert_eq!(totals(&lines, "Provider", "processed")["kajabi"], 2.0);
        assert_eq!(totals(&lines, "Provider", "failed")["stripe"], 1.0);
        assert!(!totals(&lines, "Provider", "failed").contains_key("kajabi"));
    }
}
