//! What Kajabi says of contacts: a member's Kajabi tags (each keyed in the
//! member's partition, so `load_member` reads them with the profile), the
//! member's name and contact id, and leads (form submitters who are not
//! members).

use super::*;
use crate::domain::TagStamp;

/// Sort-key prefix of a member's Kajabi tags.
pub const TAG_PREFIX: &str = "KTAG#";

/// One Kajabi tag of a member, present or removed, with the stamp of the
/// change that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    /// The normalized name (the key).
    pub key: String,
    /// The name as Kajabi last sent it.
    pub name: String,
    pub present: bool,
    pub stamp: TagStamp,
    /// The event that last changed it.
    pub event: String,
}

impl TagRecord {
    pub(super) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("tag item: {what}"));
        // The normalized name (the sort key holds a hash of a long one).
        let key = get_s(item, "tag_key").ok_or_else(|| corrupt("tag_key"))?;
        Ok(Self {
            key: key.to_string(),
            name: get_s(item, "tag").unwrap_or(key).to_string(),
            present: get_bool(item, "present").unwrap_or(false),
            stamp: get_s(item, "stamp")
                .and_then(TagStamp::parse)
                .ok_or_else(|| corrupt("stamp"))?,
            event: get_s(item, "event").unwrap_or_default().to_string(),
        })
    }
}

impl Tx {
    /// Writes a tag change, only over an older one (or none): two racing
    /// changes cannot both land, and the runner reloads the loser.
    pub fn put_kajabi_tag(
        &mut self,
        user: &UserId,
        tag: &TagRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let item = Item::from([
            ("pk".to_string(), s(keys::user(user))),
            (
                "sk".to_string(),
                s(format!("{TAG_PREFIX}{}", keys::bounded(&tag.key))),
            ),
            ("kind".to_string(), s("KAJABI_TAG")),
            ("tag".to_string(), s(&tag.name)),
            ("tag_key".to_string(), s(&tag.key)),
            ("present".to_string(), bool(tag.present)),
            ("stamp".to_string(), s(tag.stamp.encode())),
            ("event".to_string(), s(&tag.event)),
            ("changed_at".to_string(), s(ts(now))),
        ]);
        self.push_put(
            item,
            Some((
                "attribute_not_exists(pk) OR stamp < :stamp",
                None,
                values(vec![(":stamp", s(tag.stamp.encode()))]),
            )),
        )
    }

    /// The member's name and Kajabi contact id, from a contact change at
    /// `updated_at`: only over an older one, so a late `contact.updated`
    /// never undoes a newer name.
    pub fn update_kajabi_contact(
        &mut self,
        user: &UserId,
        first_name: Option<&str>,
        last_name: Option<&str>,
        contact_id: Option<&str>,
        updated_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["kajabi_contact_at = :at".to_string()];
        let mut vals = vec![(":at", s(ts(updated_at)))];
        for (attribute, placeholder, value) in [
            ("first_name", ":first", first_name),
            ("last_name", ":last", last_name),
            ("kajabi_contact_id", ":contact", contact_id),
        ] {
            if let Some(value) = value {
                sets.push(format!("{attribute} = {placeholder}"));
                vals.push((placeholder, s(value)));
            }
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(keys::user(user), keys::PROFILE)))
                .update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(kajabi_contact_at) OR kajabi_contact_at < :at)",
                )
                .set_expression_attribute_values(values(vals)),
        )
    }

    /// A Kajabi lead: someone who submitted a form that is no course's, and
    /// is not (or not yet) a member. Keyed by the email's hash; the email
    /// itself is kept for the admin.
    pub fn put_lead(
        &mut self,
        email: &Email,
        name: Option<&str>,
        form: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut sets = vec![
            "email = :email",
            "kind = :kind",
            "last_form = :form",
            "last_seen = :now",
            "first_seen = if_not_exists(first_seen, :now)",
        ];
        let mut vals = vec![
            (":email", s(email.as_str())),
            (":kind", s("KAJABI_LEAD")),
            (":form", s(form)),
            (":now", s(ts(now))),
            (":one", n(1)),
        ];
        if let Some(name) = name {
            sets.push("full_name = :name");
            vals.push((":name", s(name)));
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    format!(
                        "LEAD#kajabi#email-sha256:{}",
                        crate::signature::sha256_hex(email.as_str().as_bytes())
                    ),
                    "LEAD",
                )))
                .update_expression(format!("SET {} ADD submissions :one", sets.join(", ")))
                .set_expression_attribute_values(values(vals)),
        )
    }
}
