//! Small helpers to build and read DynamoDB attribute maps.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn b(value: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

pub fn bool(value: bool) -> AttributeValue {
    AttributeValue::Bool(value)
}

pub fn list_s(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.clone())).collect())
}

pub fn map_s(values: &BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(
        values
            .iter()
            .map(|(k, v)| (k.clone(), s(v.clone())))
            .collect(),
    )
}

/// Every stored timestamp has this one format, so strings sort by time.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

pub fn get_n(item: &Item, key: &str) -> Option<i64> {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn get_bool(item: &Item, key: &str) -> Option<bool> {
    match item.get(key) {
        Some(AttributeValue::Bool(v)) => Some(*v),
        _ => None,
    }
}

pub fn get_ts(item: &Item, key: &str) -> Option<DateTime<Utc>> {
    get_s(item, key)
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|d| d.with_timezone(&Utc))
}

pub fn get_list_s(item: &Item, key: &str) -> Vec<String> {
    match item.get(key) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(AttributeValue::Ss(values)) => values.clone(),
        _ => Vec::new(),
    }
}

pub fn get_map_s(item: &Item, key: &str) -> BTreeMap<String, String> {
    match item.get(key) {
        Some(AttributeValue::M(values)) => values
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(s) => Some((k.clone(), s.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

pub fn get_b(item: &Item, key: &str) -> Option<Vec<u8>> {
    match item.get(key) {
        Some(AttributeValue::B(v)) => Some(v.as_ref().to_vec()),
        _ => None,
    }
}
