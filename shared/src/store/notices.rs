//! In-app notices: one per member-facing email, written in the same
//! transaction as its job, in a partition of their own (`NOTICES#<user>`),
//! so a member's notices never weigh on the Query that loads the member.

use super::*;

/// Sort key prefix of a notice: `NOTICE#<job id>` (job ids sort by time).
const NOTICE_PREFIX: &str = "NOTICE#";

fn partition(user: &UserId) -> String {
    format!("NOTICES#{user}")
}

/// A notice as stored: the email's template and the values it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    /// The job's id, which names the notice.
    pub id: String,
    pub template: Template,
    pub data: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

impl NoticeRecord {
    fn from_item(item: &Item) -> Option<Self> {
        Some(Self {
            id: get_s(item, "notice_id")?.to_string(),
            template: Template::parse(get_s(item, "template")?)?,
            data: get_map_s(item, "data"),
            created_at: get_ts(item, "created_at"),
            read_at: get_ts(item, "read_at"),
        })
    }
}

/// A page of notices, newest first, and the id to continue after.
#[derive(Debug, Clone, Default)]
pub struct NoticePage {
    pub notices: Vec<NoticeRecord>,
    pub next: Option<String>,
}

impl Tx {
    /// The member's notice for `job`: its template and the values a notice
    /// shows (never the address or the name it was sent to).
    pub fn put_notice(&mut self, user: &UserId, job: &EmailJob) -> Result<(), StoreError> {
        let mut item = key(partition(user), &format!("{NOTICE_PREFIX}{}", job.id));
        item.insert("kind".into(), s("NOTICE"));
        item.insert("notice_id".into(), s(job.id.as_str()));
        item.insert("template".into(), s(job.template.as_str()));
        let shown: BTreeMap<String, String> = job
            .data
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "email" | "first_name"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        item.insert("data".into(), map_s(&shown));
        item.insert("created_at".into(), s(ts(job.created_at)));
        self.push_put(item, None)
    }
}

impl Store {
    /// The member's notices, newest first: `limit` after the notice `after`.
    pub async fn notices(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: i32,
    ) -> Result<NoticePage, StoreError> {
        let start = after.map(|id| {
            Item::from([
                ("pk".to_string(), s(partition(user))),
                ("sk".to_string(), s(format!("{NOTICE_PREFIX}{id}"))),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(partition(user)))
            .expression_attribute_values(":prefix", s(NOTICE_PREFIX))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(request_error)?;
        let notices: Vec<NoticeRecord> = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(NoticeRecord::from_item)
            .collect();
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .and_then(|k| {
                get_s(&k, "sk").map(|sk| sk.trim_start_matches(NOTICE_PREFIX).to_string())
            });
        Ok(NoticePage { notices, next })
    }

    /// Marks the member's notice read (the first time only); `false` when
    /// the member has no such notice.
    pub async fn mark_notice_read(
        &self,
        user: &UserId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(partition(user), &format!("{NOTICE_PREFIX}{id}"))))
            .update_expression("SET read_at = if_not_exists(read_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(ts(now)))
            .send()
            .await;
        condition_held(result)
    }
}
