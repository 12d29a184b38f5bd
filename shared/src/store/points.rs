//! Points: one ledger item per award under the member's partition, and the
//! balance on the profile, changed in the same transaction.

use super::*;
use crate::domain::Course;

/// Ledger items' sort keys start with this.
pub(super) const POINTS_PREFIX: &str = "POINTS#";

/// One award of points, as `/account/me` and the admin view list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// What the entry is keyed by: `course#<id>` (a course awards once), or
    /// `adjust#<audit id>` (an admin's change).
    pub entry: String,
    /// Positive or, for an admin's deduction, negative.
    pub points: i64,
    /// An admin's reason for an adjustment.
    pub reason: Option<String>,
    pub course_id: Option<String>,
    pub course_name: Option<String>,
    /// The event that awarded it.
    pub event: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub awarded_at: DateTime<Utc>,
}

impl LedgerEntry {
    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("points item: {what}"));
        Ok(Self {
            entry: get_s(item, "sk")
                .and_then(|sk| sk.strip_prefix(POINTS_PREFIX))
                .ok_or_else(|| corrupt("sk"))?
                .to_string(),
            points: get_n(item, "points").ok_or_else(|| corrupt("points"))?,
            course_id: get_s(item, "course_id").map(str::to_string),
            course_name: get_s(item, "course_name").map(str::to_string),
            reason: get_s(item, "reason").map(str::to_string),
            event: get_s(item, "event").map(str::to_string),
            completed_at: get_ts(item, "completed_at"),
            awarded_at: get_ts(item, "awarded_at").ok_or_else(|| corrupt("awarded_at"))?,
        })
    }
}

fn course_entry(course_id: &str) -> String {
    format!("{POINTS_PREFIX}course#{course_id}")
}

impl Tx {
    /// Awards `course`'s points to `user` once: the entry keyed by the course
    /// is written only if absent, and the balance grows by the same points.
    pub fn award_course(
        &mut self,
        user: &UserId,
        course: &Course,
        event: &EventKey,
        completed_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::user(user), &course_entry(&course.id));
        item.insert("kind".into(), s("POINTS"));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("points".into(), n(i64::from(course.points)));
        item.insert("course_id".into(), s(&course.id));
        item.insert("course_name".into(), s(&course.name));
        item.insert("event".into(), s(event.to_string()));
        if let Some(at) = completed_at {
            item.insert("completed_at".into(), s(ts(at)));
        }
        item.insert("awarded_at".into(), s(ts(now)));
        self.push_put(item, Some(("attribute_not_exists(pk)", None, None)))?;
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user), keys::PROFILE)))
                .update_expression("ADD points :points")
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_values(values(vec![(
                    ":points",
                    n(i64::from(course.points)),
                )])),
        )
    }
}

impl Tx {
    /// An admin's adjustment: its own ledger entry (keyed by the audit
    /// record, so it is written once) and the balance moved by `delta`, only
    /// while the balance stays at or above 0.
    pub fn adjust_points(
        &mut self,
        user: &UserId,
        delta: i64,
        audit: &EventKey,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(
            keys::user(user),
            &format!("{POINTS_PREFIX}adjust#{}", audit.event_id()),
        );
        item.insert("kind".into(), s("POINTS"));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("points".into(), n(delta));
        item.insert("reason".into(), s(reason));
        item.insert("event".into(), s(audit.to_string()));
        item.insert("awarded_at".into(), s(ts(now)));
        self.push_put(item, Some(("attribute_not_exists(pk)", None, None)))?;
        let (condition, floor) = if delta < 0 {
            ("attribute_exists(pk) AND points >= :floor", Some(-delta))
        } else {
            ("attribute_exists(pk)", None)
        };
        let mut vals = vec![(":delta", n(delta))];
        if let Some(floor) = floor {
            vals.push((":floor", n(floor)));
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user), keys::PROFILE)))
                .update_expression("ADD points :delta")
                .condition_expression(condition)
                .set_expression_attribute_values(values(vals)),
        )
    }
}

impl Store {
    /// The entry that awarded `course_id` to `user`, if one did.
    pub async fn get_course_award(
        &self,
        user: &UserId,
        course_id: &str,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        self.get(keys::user(user), &course_entry(course_id))
            .await?
            .map(|item| LedgerEntry::from_item(&item))
            .transpose()
    }
}
