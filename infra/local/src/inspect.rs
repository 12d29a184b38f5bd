//! Reads the whole table back for the demo summary and the tests. A Scan is
//! fine on a local table; the functions themselves never scan.

use std::collections::BTreeMap;

use gatehouse::store::attr::{get_bool, get_list_s, get_map_s, get_s, Item};

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub items: Vec<Item>,
}

impl Snapshot {
    pub async fn read(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(Self { items })
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| get_s(i, "kind") == Some(kind))
            .collect()
    }

    pub fn users(&self) -> Vec<&Item> {
        self.of_kind("USER")
    }

    pub fn user_by_email(&self, email: &str) -> Option<&Item> {
        self.users()
            .into_iter()
            .find(|u| get_s(u, "email") == Some(email))
    }

    pub fn subscriptions_of(&self, user_id: &str) -> Vec<&Item> {
        self.of_kind("SUBSCRIPTION")
            .into_iter()
            .filter(|s| get_s(s, "user_id") == Some(user_id))
            .collect()
    }

    pub fn jobs_to(&self, email: &str) -> Vec<&Item> {
        self.of_kind("OUTBOX")
            .into_iter()
            .filter(|j| get_s(j, "to") == Some(email))
            .collect()
    }

    pub fn events(&self) -> Vec<&Item> {
        let mut events = self.of_kind("EVENT");
        events.sort_by_key(|e| get_s(e, "received_at").unwrap_or_default().to_string());
        events
    }

    pub fn event(&self, provider: &str, event_id: &str) -> Option<&Item> {
        self.of_kind("EVENT").into_iter().find(|e| {
            get_s(e, "provider") == Some(provider) && get_s(e, "event_id") == Some(event_id)
        })
    }
}

/// A short, printable line per item, for the demo summary.
pub fn describe_user(u: &Item) -> String {
    let meta: BTreeMap<String, String> = get_map_s(u, "metadata");
    format!(
        "{} <{}> active={} provider={} partner={} member={}",
        get_s(u, "user_id").unwrap_or("?"),
        get_s(u, "email").unwrap_or("?"),
        get_bool(u, "is_active").unwrap_or(false),
        get_s(u, "auth_provider").unwrap_or("?"),
        meta.get("partner").map(String::as_str).unwrap_or("-"),
        meta.get("kajabi_member_id")
            .map(String::as_str)
            .unwrap_or("-"),
    )
}

pub fn describe_subscription(s: &Item) -> String {
    format!(
        "{} {} state={} access_until={}",
        get_s(s, "provider").unwrap_or("?"),
        get_s(s, "plan_id").unwrap_or("?"),
        get_s(s, "state").unwrap_or("?"),
        get_s(s, "access_until").unwrap_or("-"),
    )
}

pub fn describe_event(e: &Item) -> String {
    format!(
        "{}:{} {} status={}{}{}",
        get_s(e, "provider").unwrap_or("?"),
        get_s(e, "event_id").unwrap_or("?"),
        get_s(e, "event_type").unwrap_or("?"),
        get_s(e, "status").unwrap_or("?"),
        get_s(e, "reason")
            .map(|r| format!(" reason={r}"))
            .unwrap_or_default(),
        match get_list_s(e, "duplicate_body_hashes").len() {
            0 => String::new(),
            n => format!(" differing_redeliveries={n}"),
        }
    )
}
