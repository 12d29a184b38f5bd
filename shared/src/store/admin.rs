//! Admin reads: paged queries over the sparse listing indexes.
//!
//! | index | on | partition | sort |
//! |---|---|---|---|
//! | `gsi3` | user profiles | `USERS` | normalized email |
//! | `gsi4` | events | `EVENTS` | `<received_at>#<provider>#<event id>` |
//! | `gsi5` | events that name a user | `<user id>` | `<received_at>` |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::attr::*;
use super::{request_error, Store, StoreError};

pub const USERS_INDEX: &str = "gsi3";
pub const USERS_PARTITION: &str = "USERS";
pub const EVENTS_INDEX: &str = "gsi4";
pub const EVENTS_PARTITION: &str = "EVENTS";
pub const USER_EVENTS_INDEX: &str = "gsi5";

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
    /// A filter expression with its `#name` and `:value` placeholders.
    pub filter: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    pub start: Option<Item>,
    pub limit: i32,
    /// Newest first for time-sorted indexes.
    pub descending: bool,
}

/// Items read, and where the next read starts (None at the end).
#[derive(Debug, Clone, Default)]
pub struct IndexPage {
    pub items: Vec<Item>,
    pub next: Option<Item>,
}

/// The attribute names of an index's keys plus the table's: what a start key holds.
pub fn index_key_names(index: &str) -> [&'static str; 4] {
    match index {
        USERS_INDEX => ["pk", "sk", "gsi3pk", "gsi3sk"],
        EVENTS_INDEX => ["pk", "sk", "gsi4pk", "gsi4sk"],
        _ => ["pk", "sk", "gsi5pk", "gsi5sk"],
    }
}

/// The start key that resumes a query right after `item`.
pub fn start_after(index: &str, item: &Item) -> Option<Item> {
    index_key_names(index)
        .iter()
        .map(|name| Some((name.to_string(), item.get(*name)?.clone())))
        .collect()
}

impl Store {
    pub async fn query_index(&self, query: IndexQuery) -> Result<IndexPage, StoreError> {
        let [_, _, pk_name, sk_name] = index_key_names(query.index);
        let mut names = query.names.clone();
        let mut values = query.values.clone();
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
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(query.index)
            .key_condition_expression(condition)
            .set_filter_expression(query.filter.clone())
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(query.start.clone())
            .limit(query.limit.max(1))
            .scan_index_forward(!query.descending)
            .send()
            .await
            .map_err(request_error)?;
        Ok(IndexPage {
            items: out.items.unwrap_or_default(),
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Consistent reads of whole items by key (up to 100 at a time).
    pub async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            found.extend(self.batch_get(chunk.to_vec()).await?);
        }
        Ok(found)
    }
}
