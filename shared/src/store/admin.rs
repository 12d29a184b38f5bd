//! Admin reads: paged queries over the sparse listing indexes, answered as
//! typed rows, with the position to resume from as a typed key.
//!
//! | index | on | partition | sort |
//! |---|---|---|---|
//! | `gsi3` | user profiles | `USERS` | normalized email |
//! | `gsi4` | events | `EVENTS` | `<received_at>#<provider>#<event id>` |
//! | `gsi5` | events that name a user | `<user id>` | `<received_at>` |
//! | `gsi5` | completions for review | `COMPLETIONS#unmatched` or `#dismissed` | `<received_at>` |
//! | `gsi4` | payments | `PAYMENTS` | `<created_at>#<provider>#<reference>` |
//! | `gsi5` | a member's payments | `PAYMENTS#<user id>` | `<created_at>` |

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::attr::*;
use super::{keys, request_error, Store, StoreError, StoredJob};
use crate::domain::{EventKey, JobId, Provider, Revocation, UserId};

pub const USERS_INDEX: &str = "gsi3";
pub const USERS_PARTITION: &str = "USERS";
pub const EVENTS_INDEX: &str = "gsi4";
pub const EVENTS_PARTITION: &str = "EVENTS";
pub const USER_EVENTS_INDEX: &str = "gsi5";
/// Where the events index lists payments (`#` keeps them apart from events).
pub const PAYMENTS_PARTITION: &str = "PAYMENTS";

/// Where the user-events index lists one member's payments.
pub fn user_payments_partition(user: &UserId) -> String {
    format!("PAYMENTS#{user}")
}

/// Where the user-events index lists course completions for review: the
/// unmatched ones and those an admin dismissed (event records of other
/// types stay out: `is_completion_type`). `#` never appears in a user id, so
/// no user's events mix in.
pub fn completions_partition(status: super::EventStatus) -> Option<String> {
    use super::EventStatus::{Dismissed, Unmatched};
    matches!(status, Unmatched | Dismissed).then(|| format!("COMPLETIONS#{}", status.as_str()))
}

/// The event types a course completion is recorded with (a Kajabi tag
/// change also waits `unmatched`, and is no completion to review).
pub fn is_completion_type(event_type: &str) -> bool {
    matches!(event_type, "form.submitted" | "form_submission")
}

/// Where a listing resumes: the table's and the index's key attributes of the
/// last item read, all strings in this table's layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexKey(pub BTreeMap<String, String>);

impl IndexKey {
    fn from_item(item: &Item) -> Option<Self> {
        item.iter()
            .map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Self)
    }

    fn to_item(&self) -> Item {
        self.0.iter().map(|(k, v)| (k.clone(), s(v))).collect()
    }
}

/// A value an index filter compares an attribute with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    Text(String),
    Flag(bool),
}

/// One query against an index: the partition, an optional sort-key condition
/// and filter, where to start, and how many items to read.
#[derive(Debug, Clone, Default)]
pub struct IndexQuery {
    pub index: &'static str,
    pub partition: String,
    /// `begins_with` on the sort key.
    pub sort_prefix: Option<String>,
    /// Inclusive sort-key range.
    pub sort_between: Option<(String, String)>,
    /// `attribute = value` clauses, all of which must hold.
    pub filters: Vec<(String, FilterValue)>,
    pub start: Option<IndexKey>,
    pub limit: i32,
    /// Newest first for time-sorted indexes.
    pub descending: bool,
}

impl IndexQuery {
    /// Keeps only items whose `attribute` equals `value`.
    pub fn and_equals(&mut self, attribute: &str, value: FilterValue) {
        self.filters.push((attribute.to_string(), value));
    }
}

/// A user as the users index projects them (never the password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user_id: UserId,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: bool,
    pub auth_provider: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub points: i64,
    pub created_at: Option<String>,
    pub granted_roles: Vec<String>,
    pub revocations: Vec<Revocation>,
}

/// An event as the event indexes project it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub key: EventKey,
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub received_at: Option<String>,
    pub user_id: Option<String>,
    pub job_ids: Vec<String>,
}

/// One item read from an index, with the key that resumes right after it.
#[derive(Debug, Clone)]
pub struct IndexRow {
    item: Item,
    index: &'static str,
}

impl IndexRow {
    /// The start key that resumes the query right after this row.
    pub fn resume_after(&self) -> Option<IndexKey> {
        let picked: Item = index_key_names(self.index)
            .iter()
            .map(|name| Some((name.to_string(), self.item.get(*name)?.clone())))
            .collect::<Option<Item>>()?;
        IndexKey::from_item(&picked)
    }

    /// The table key (`pk`, `sk`) of the item this row projects.
    pub fn table_key(&self) -> Option<(String, String)> {
        Some((
            get_s(&self.item, "pk")?.to_string(),
            get_s(&self.item, "sk")?.to_string(),
        ))
    }

    pub fn user(&self) -> Option<UserRow> {
        let item = &self.item;
        Some(UserRow {
            user_id: UserId::from_stored(get_s(item, "user_id")?),
            email: get_s(item, "email").map(str::to_string),
            first_name: get_s(item, "first_name").map(str::to_string),
            last_name: get_s(item, "last_name").map(str::to_string),
            is_active: get_bool(item, "is_active").unwrap_or(false),
            auth_provider: get_s(item, "auth_provider").map(str::to_string),
            metadata: get_map_s(item, "metadata"),
            points: get_n(item, "points").unwrap_or(0),
            created_at: get_s(item, "created_at").map(str::to_string),
            granted_roles: get_list_s(item, "granted_roles"),
            revocations: get_s(item, "revocations")
                .and_then(|raw| serde_json::from_str(raw).ok())
                .unwrap_or_default(),
        })
    }

    pub fn event(&self) -> Option<EventRow> {
        let item = &self.item;
        let provider = Provider::parse(get_s(item, "provider")?)?;
        Some(EventRow {
            key: EventKey::new(provider, get_s(item, "event_id")?),
            event_type: get_s(item, "event_type").map(str::to_string),
            status: get_s(item, "status").map(str::to_string),
            reason: get_s(item, "reason").map(str::to_string),
            received_at: get_s(item, "received_at").map(str::to_string),
            user_id: get_s(item, "user_id").map(str::to_string),
            job_ids: get_list_s(item, "job_ids"),
        })
    }
}

/// Rows read, and where the next read starts (None at the end).
#[derive(Debug, Clone, Default)]
pub struct IndexPage {
    pub rows: Vec<IndexRow>,
    pub next: Option<IndexKey>,
}

/// The attribute names of an index's keys plus the table's: what a start key holds.
pub fn index_key_names(index: &str) -> [&'static str; 4] {
    match index {
        USERS_INDEX => ["pk", "sk", "gsi3pk", "gsi3sk"],
        EVENTS_INDEX => ["pk", "sk", "gsi4pk", "gsi4sk"],
        _ => ["pk", "sk", "gsi5pk", "gsi5sk"],
    }
}

impl Store {
    pub async fn query_index(&self, query: IndexQuery) -> Result<IndexPage, StoreError> {
        let [_, _, pk_name, sk_name] = index_key_names(query.index);
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        names.insert("#ipk".into(), pk_name.into());
        values.insert(":ipk".into(), s(query.partition.clone()));
        let mut condition = "#ipk = :ipk".to_string();
        if let Some(prefix) = &query.sort_prefix {
            names.insert("#isk".into(), sk_name.into());
            values.insert(":iprefix".into(), s(prefix.clone()));
            condition.push_str(" AND begins_with(#isk, :iprefix)");
        } else if let Some((from, to)) = &query.sort_between {
            names.insert("#isk".into(), sk_name.into());
            values.insert(":ifrom".into(), s(from.clone()));
            values.insert(":ito".into(), s(to.clone()));
            condition.push_str(" AND #isk BETWEEN :ifrom AND :ito");
        }
        let mut clauses = Vec::new();
        for (n, (attribute, value)) in query.filters.iter().enumerate() {
            names.insert(format!("#f{n}"), attribute.clone());
            values.insert(
                format!(":f{n}"),
                match value {
                    FilterValue::Text(text) => s(text),
                    FilterValue::Flag(flag) => bool(*flag),
                },
            );
            clauses.push(format!("#f{n} = :f{n}"));
        }
        let filter = (!clauses.is_empty()).then(|| clauses.join(" AND "));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(query.index)
            .key_condition_expression(condition)
            .set_filter_expression(filter)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(query.start.as_ref().map(IndexKey::to_item))
            .limit(query.limit.max(1))
            .scan_index_forward(!query.descending)
            .send()
            .await
            .map_err(request_error)?;
        Ok(IndexPage {
            rows: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|item| IndexRow {
                    item,
                    index: query.index,
                })
                .collect(),
            next: out
                .last_evaluated_key
                .filter(|k| !k.is_empty())
                .and_then(|k| IndexKey::from_item(&k)),
        })
    }

    /// The email jobs with these ids that exist (consistent reads, 100 a request).
    pub async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<StoredJob>, StoreError> {
        let keys: Vec<Item> = ids
            .iter()
            .map(|id| {
                Item::from([
                    ("pk".to_string(), s(keys::job(id))),
                    ("sk".to_string(), s(keys::JOB)),
                ])
            })
            .collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            for item in self.batch_get(chunk.to_vec()).await? {
                if let Ok(job) = StoredJob::from_item(&item) {
                    found.push(job);
                }
            }
        }
        Ok(found)
    }
}
