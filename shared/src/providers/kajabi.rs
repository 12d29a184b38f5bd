//! Kajabi: authentication and the three payload dialects.
//!
//! - the seed's `{type, id, member{...}, offer{...}}` (`offer.purchased`, `member.subscription.*`);
//! - Kajabi v1 hooks `{id, event, payload:[JSON:API resources]}` (`purchase`);
//! - the legacy outbound `{id, event: "purchase.created", member_email, ...}`;
//!
//! plus the `{event_type, event_id, data{...}}` shape seen for forms, which is
//! recorded (as ignored until course completions land).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;

use crate::config::Secret;
use crate::signature::{secrets_equal, verify_hmac_sha256_hex, SignatureLimits};

pub const SIGNATURE_HEADER: &str = "x-kajabi-signature";
pub const TOKEN_QUERY_PARAM: &str = "token";

/// `X-Kajabi-Signature` is one hex HMAC-SHA256 (64 characters).
pub const SIGNATURE_MAX_BYTES: usize = 256;

/// The `?token=` values of one request: the same cap on entries as Stripe's
/// header, and a bound on their total length.
pub const TOKEN_LIMITS: SignatureLimits = SignatureLimits {
    max_bytes: 2048,
    max_entries: 16,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Signature,
    UrlToken,
}

/// Why authentication failed; each names the failed check for the 401 detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KajabiAuthError {
    #[error("missing credentials: send an X-Kajabi-Signature header or a token query parameter")]
    Missing,
    #[error("X-Kajabi-Signature does not match the HMAC-SHA256 of the body")]
    SignatureMismatch,
    #[error("X-Kajabi-Signature was sent but no webhook secret is configured")]
    SignatureNotConfigured,
    #[error("token query parameter does not match any configured URL token")]
    TokenMismatch,
    #[error("X-Kajabi-Signature is {0} bytes; the limit is {max} bytes", max = SIGNATURE_MAX_BYTES)]
    SignatureTooLong(usize),
    #[error("{0} token query parameters; the limit is {max}", max = TOKEN_LIMITS.max_entries)]
    TooManyTokens(usize),
    #[error("token query parameters total {0} bytes; the limit is {max} bytes", max = TOKEN_LIMITS.max_bytes)]
    TokensTooLong(usize),
}

/// Kajabi's native hooks are unsigned, so a secret URL token also authenticates.
/// A signature header, when present, must verify: a bad signature is never
/// rescued by a good token.
pub fn authenticate(
    signature_header: Option<&str>,
    url_tokens_given: &[String],
    body: &[u8],
    secret: Option<&Secret>,
    url_tokens: &[Secret],
) -> Result<AuthMethod, KajabiAuthError> {
    if let Some(signature) = signature_header {
        if signature.len() > SIGNATURE_MAX_BYTES {
            return Err(KajabiAuthError::SignatureTooLong(signature.len()));
        }
        let secret = secret.ok_or(KajabiAuthError::SignatureNotConfigured)?;
        return if verify_hmac_sha256_hex(secret.expose().as_bytes(), body, signature) {
            Ok(AuthMethod::Signature)
        } else {
            Err(KajabiAuthError::SignatureMismatch)
        };
    }
    if url_tokens_given.is_empty() {
        return Err(KajabiAuthError::Missing);
    }
    if url_tokens_given.len() > TOKEN_LIMITS.max_entries {
        return Err(KajabiAuthError::TooManyTokens(url_tokens_given.len()));
    }
    let total: usize = url_tokens_given.iter().map(String::len).sum();
    if total > TOKEN_LIMITS.max_bytes {
        return Err(KajabiAuthError::TokensTooLong(total));
    }
    // Check every configured token, with no early exit, so timing reveals nothing.
    let mut matched = false;
    for given in url_tokens_given {
        for configured in url_tokens {
            matched |= secrets_equal(given.as_bytes(), configured.expose().as_bytes());
        }
    }
    if matched {
        Ok(AuthMethod::UrlToken)
    } else {
        Err(KajabiAuthError::TokenMismatch)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// Raw as received; the service parses it into an `Email`.
    pub email: Option<String>,
    pub member_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleChange {
    Canceled,
    Renewed,
    Expired,
    /// `purchase.refunded`: ends what the purchase granted, lifetime included.
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KajabiAction {
    Purchase {
        member: Member,
        offer_id: Option<String>,
        offer_name: Option<String>,
    },
    Lifecycle {
        change: LifecycleChange,
        member: Member,
        offer_id: Option<String>,
        ends_at: Option<DateTime<Utc>>,
    },
    /// A form submission: a course completion when its form or its
    /// `course_name` field names a configured course.
    FormSubmission(FormSubmission),
    /// `tag_added` / `tag_removed`: a v1 hook's `contacts` and `contact_tags`.
    Tag(TagChange),
    /// `contact.created` / `contact.updated`: the contact's name and id.
    Contact {
        member: Member,
        /// The contact's `updated_at`: later changes win.
        updated_at: Option<DateTime<Utc>>,
    },
    /// A type Gatehouse records but does not act on.
    Unsupported,
}

/// A Kajabi form submission, from the seed's `form.submitted` or a v1
/// `form_submission` hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormSubmission {
    pub member: Member,
    pub form_id: Option<String>,
    pub form_title: Option<String>,
    pub submission_id: Option<String>,
    /// The seed's `course_name` field (v1 hooks carry none: they match by form).
    pub course_name: Option<String>,
    /// The seed's `completion_date` field.
    pub completed_on: Option<DateTime<Utc>>,
}

/// A tag added to or removed from a Kajabi contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagChange {
    pub member: Member,
    pub added: bool,
    /// The tag's name, as Kajabi shows it.
    pub tag: Option<String>,
    pub tag_id: Option<String>,
    /// The contact's `updated_at`, which the change moves: the only time the
    /// hook carries, so the order of changes to one tag.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KajabiEvent {
    pub event_id: Option<String>,
    pub event_type: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub action: KajabiAction,
}

/// Reads a string or a number as a string: Kajabi sends numeric ids in some dialects.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn at<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(root, |node, key| node.get(key))
}

fn first_text(root: &Value, paths: &[&[&str]]) -> Option<String> {
    paths.iter().find_map(|path| text(at(root, path)))
}

/// RFC 3339, a bare date (end of that day is not assumed: midnight UTC), or unix seconds.
pub fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| Utc.from_utc_datetime(&d))
            }),
        Value::Number(n) => n
            .as_i64()
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single()),
        _ => None,
    }
}

fn first_timestamp(root: &Value, paths: &[&[&str]]) -> Option<DateTime<Utc>> {
    paths
        .iter()
        .find_map(|p| at(root, p).and_then(parse_timestamp))
}

/// JSON:API resources from `payload` (an array, or `{data, included}`).
fn jsonapi_resources(payload: &Value) -> Vec<&Value> {
    match payload {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => {
            let mut out = Vec::new();
            for key in ["data", "included"] {
                match payload.get(key) {
                    Some(Value::Array(items)) => out.extend(items.iter()),
                    Some(item @ Value::Object(_)) => out.push(item),
                    _ => {}
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn resource<'a>(resources: &[&'a Value], types: &[&str]) -> Option<&'a Value> {
    resources.iter().copied().find(|r| {
        r.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| types.contains(&t))
    })
}

fn split_name(full: Option<String>) -> (Option<String>, Option<String>) {
    match full {
        None => (None, None),
        Some(name) => match name.split_once(' ') {
            Some((first, last)) => (Some(first.to_string()), Some(last.trim().to_string())),
            None => (Some(name), None),
        },
    }
}

impl KajabiEvent {
    /// Never fails: a payload Gatehouse cannot act on becomes `Unsupported` or a
    /// purchase with missing fields, which the service records as failed with the reason.
    pub fn from_json(root: &Value) -> Self {
        let event_type = first_text(root, &[&["type"], &["event"], &["event_type"], &["name"]])
            .unwrap_or_else(|| "unknown".to_string());
        let event_id = first_text(root, &[&["id"], &["event_id"], &["webhook_id"]]);
        // A v1 hook's envelope carries no time: its purchase, transaction or
        // order says when it happened.
        let occurred_at =
            first_timestamp(root, &[&["created_at"], &["timestamp"], &["occurred_at"]]).or_else(
                || {
                    let resources = jsonapi_resources(root.get("payload")?);
                    resource(&resources, &["purchases", "transactions", "orders"])
                        .and_then(|r| at(r, &["attributes", "created_at"]))
                        .and_then(parse_timestamp)
                },
            );

        let (member, offer_id, offer_name) = match root.get("payload") {
            Some(payload) if !payload.is_null() => Self::jsonapi_parts(payload),
            _ => Self::flat_parts(root),
        };
        let ends_at = first_timestamp(
            root,
            &[
                &["ends_at"],
                &["end_date"],
                &["expires_at"],
                &["subscription", "ends_at"],
                &["subscription", "end_date"],
                &["subscription", "current_period_end"],
                &["data", "subscription", "end_date"],
                &["data", "ends_at"],
            ],
        );
        let action = match event_type.as_str() {
            "offer.purchased" | "purchase" | "purchase.created" | "payment_succeeded"
            | "order_created" | "order.created" => KajabiAction::Purchase {
                member,
                offer_id,
                offer_name,
            },
            "member.subscription.canceled" | "member.subscription.cancelled" => {
                KajabiAction::Lifecycle {
                    change: LifecycleChange::Canceled,
                    member,
                    offer_id,
                    ends_at,
                }
            }
            "member.subscription.renewed" => KajabiAction::Lifecycle {
                change: LifecycleChange::Renewed,
                member,
                offer_id,
                ends_at,
            },
            "member.subscription.expired" => KajabiAction::Lifecycle {
                change: LifecycleChange::Expired,
                member,
                offer_id,
                ends_at,
            },
            "purchase.refunded" => KajabiAction::Lifecycle {
                change: LifecycleChange::Refunded,
                member,
                offer_id,
                ends_at: None,
            },
            "form.submitted" | "form_submission" => {
                KajabiAction::FormSubmission(Self::form_submission(root))
            }
            "tag_added" | "tag_removed" => {
                KajabiAction::Tag(Self::tag_change(root, event_type == "tag_added", member))
            }
            "contact.created" | "contact.updated" => KajabiAction::Contact {
                updated_at: Self::contact_updated_at(root),
                member,
            },
            _ => KajabiAction::Unsupported,
        };
        // A v1 hook's `id` may name the hook rather than the delivery: with
        // the submission's own id, each submission is its own event, and a
        // redelivery (same both) is still a duplicate.
        let event_id = match (&action, event_id) {
            (KajabiAction::FormSubmission(form), Some(id)) if root.get("payload").is_some() => {
                Some(match &form.submission_id {
                    Some(submission) => format!("{id}:{submission}"),
                    None => id,
                })
            }
            // One hook delivers every change of its kind: the contact, the
            // tag and the time it moved name this one.
            (KajabiAction::Tag(change), Some(id)) => Some(format!(
                "{id}:{}:{}:{}",
                change.member.member_id.as_deref().unwrap_or("-"),
                change
                    .tag_id
                    .as_deref()
                    .or(change.tag.as_deref())
                    .unwrap_or("-"),
                change.updated_at.map(|t| t.timestamp_millis()).unwrap_or(0)
            )),
            // A contact change: the contact and the time it moved.
            (KajabiAction::Contact { member, updated_at }, Some(id))
                if root.get("payload").is_some() =>
            {
                Some(format!(
                    "{id}:{}:{}",
                    member.member_id.as_deref().unwrap_or("-"),
                    updated_at.map(|t| t.timestamp_millis()).unwrap_or(0)
                ))
            }
            // A v1 purchase, payment or order: its own resource's id.
            (KajabiAction::Purchase { .. }, Some(id)) => {
                match root.get("payload").map(jsonapi_resources).and_then(|r| {
                    resource(&r, &["purchases", "transactions", "orders"])
                        .and_then(|p| text(p.get("id")))
                }) {
                    Some(own) => Some(format!("{id}:{own}")),
                    None => Some(id),
                }
            }
            (_, id) => id,
        };
        Self {
            event_id,
            event_type,
            occurred_at,
            action,
        }
    }

    /// The seed's `data.{form, submission.fields}`, or a v1 hook's
    /// `form_submissions` and `forms` resources.
    fn form_submission(root: &Value) -> FormSubmission {
        if let Some(payload) = root.get("payload").filter(|p| !p.is_null()) {
            let resources = jsonapi_resources(payload);
            let submission = resource(&resources, &["form_submissions", "form_submission"]);
            let form = resource(&resources, &["forms", "form"]);
            let (first, last) =
                split_name(submission.and_then(|s| first_text(s, &[&["attributes", "name"]])));
            return FormSubmission {
                member: Member {
                    email: submission.and_then(|s| first_text(s, &[&["attributes", "email"]])),
                    member_id: None,
                    first_name: first,
                    last_name: last,
                },
                form_id: form.and_then(|f| text(f.get("id"))).or_else(|| {
                    submission
                        .and_then(|s| first_text(s, &[&["relationships", "form", "data", "id"]]))
                }),
                form_title: form.and_then(|f| first_text(f, &[&["attributes", "title"]])),
                submission_id: submission.and_then(|s| text(s.get("id"))),
                course_name: None,
                completed_on: None,
            };
        }
        let fields = |name: &str| first_text(root, &[&["data", "submission", "fields", name]]);
        let (first, last) = split_name(fields("student_name").or_else(|| fields("name")));
        FormSubmission {
            member: Member {
                email: fields("email"),
                member_id: None,
                first_name: first,
                last_name: last,
            },
            form_id: first_text(root, &[&["data", "form", "id"]]),
            form_title: first_text(
                root,
                &[&["data", "form", "name"], &["data", "form", "title"]],
            ),
            submission_id: first_text(root, &[&["data", "submission", "id"]]),
            course_name: fields("course_name"),
            completed_on: at(root, &["data", "submission", "fields", "completion_date"])
                .and_then(parse_timestamp),
        }
    }

    fn tag_change(root: &Value, added: bool, member: Member) -> TagChange {
        let resources = root
            .get("payload")
            .map(jsonapi_resources)
            .unwrap_or_default();
        let tag = resource(&resources, &["contact_tags", "contact_tag", "tags", "tag"]);
        TagChange {
            member,
            added,
            tag: tag.and_then(|t| first_text(t, &[&["attributes", "name"]])),
            tag_id: tag.and_then(|t| text(t.get("id"))),
            updated_at: Self::contact_updated_at(root),
        }
    }

    /// The v1 `contacts` resource's `updated_at`.
    fn contact_updated_at(root: &Value) -> Option<DateTime<Utc>> {
        let resources = root
            .get("payload")
            .map(jsonapi_resources)
            .unwrap_or_default();
        resource(&resources, &["contacts", "contact"])
            .and_then(|c| at(c, &["attributes", "updated_at"]))
            .and_then(parse_timestamp)
    }

    fn jsonapi_parts(payload: &Value) -> (Member, Option<String>, Option<String>) {
        let resources = jsonapi_resources(payload);
        let customer = resource(
            &resources,
            &[
                "customers",
                "customer",
                "contacts",
                "contact",
                "members",
                "member",
            ],
        );
        let offer = resource(&resources, &["offers", "offer"]);
        let member = match customer {
            Some(c) => {
                let (first, last) = split_name(first_text(c, &[&["attributes", "name"]]));
                Member {
                    email: first_text(c, &[&["attributes", "email"]]),
                    member_id: text(c.get("id")),
                    first_name: first_text(c, &[&["attributes", "first_name"]]).or(first),
                    last_name: first_text(c, &[&["attributes", "last_name"]]).or(last),
                }
            }
            None => Member::default(),
        };
        // A payment or an order names its offer by relationship only.
        let offer_id = offer.and_then(|o| text(o.get("id"))).or_else(|| {
            resources
                .iter()
                .find_map(|r| first_text(r, &[&["relationships", "offer", "data", "id"]]))
        });
        let offer_name =
            offer.and_then(|o| first_text(o, &[&["attributes", "title"], &["attributes", "name"]]));
        (member, offer_id, offer_name)
    }

    fn flat_parts(root: &Value) -> (Member, Option<String>, Option<String>) {
        let (first, last) = split_name(first_text(
            root,
            &[
                &["member_name"],
                &["member", "name"],
                &["data", "member", "name"],
                &["name"],
            ],
        ));
        let member = Member {
            email: first_text(
                root,
                &[
                    &["member", "email"],
                    &["member_email"],
                    &["email"],
                    &["customer", "email"],
                    &["contact", "email"],
                    &["data", "member", "email"],
                    &["data", "customer", "email"],
                    &["data", "contact", "email"],
                    &["data", "email"],
                ],
            ),
            member_id: first_text(
                root,
                &[
                    &["member", "id"],
                    &["member_id"],
                    &["customer", "id"],
                    &["contact_id"],
                    &["data", "member", "id"],
                    &["data", "customer", "id"],
                ],
            ),
            first_name: first_text(
                root,
                &[
                    &["member", "first_name"],
                    &["member_first_name"],
                    &["first_name"],
                    &["data", "member", "first_name"],
                ],
            )
            .or(first),
            last_name: first_text(
                root,
                &[
                    &["member", "last_name"],
                    &["member_last_name"],
                    &["last_name"],
                    &["data", "member", "last_name"],
                ],
            )
            .or(last),
        };
        let offer_id = first_text(
            root,
            &[
                &["offer", "id"],
                &["offer_id"],
                &["data", "offer", "id"],
                &["data", "offer_id"],
            ],
        );
        let offer_name = first_text(
            root,
            &[
                &["offer", "name"],
                &["offer", "title"],
                &["offer_title"],
                &["offer_name"],
                &["data", "offer", "name"],
            ],
        );
        (member, offer_id, offer_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::hmac_sha256_hex;
    use serde_json::json;

    fn secret() -> Secret {
        Secret::new("s3cret")
    }

    #[test]
    fn the_seeds_form_submission_reads_its_fields() {
        let event = KajabiEvent::from_json(&json!({
            "event_type": "form.submitted", "event_id": "evt_123456789",
            "created_at": "2024-09-02T10:30:00Z",
            "data": {"form": {"id": "form_123", "name": "Course Completion Form", "site_id": "site_123"},
                "submission": {"id": "sub_123", "fields": {"email": "student@example.com",
                    "course_name": "AI Foundations for Educators", "completion_date": "2024-09-02",
                    "certificate_url": "https://certificates.example/1", "student_name": "John Doe"}}}
        }));
        assert_eq!(event.event_id.as_deref(), Some("evt_123456789"));
        let KajabiAction::FormSubmission(form) = event.action else {
            panic!("{:?}", event.action)
        };
        assert_eq!(form.member.email.as_deref(), Some("student@example.com"));
        assert_eq!(form.member.first_name.as_deref(), Some("John"));
        assert_eq!(form.form_id.as_deref(), Some("form_123"));
        assert_eq!(form.form_title.as_deref(), Some("Course Completion Form"));
        assert_eq!(form.submission_id.as_deref(), Some("sub_123"));
        assert_eq!(
            form.course_name.as_deref(),
            Some("AI Foundations for Educators")
        );
        assert_eq!(
            form.completed_on.map(|d| d.to_rfc3339()),
            Some("2024-09-02T00:00:00+00:00".into())
        );
    }

    #[test]
    fn a_v1_form_submission_hook_reads_its_resources() {
        // Kajabi's documented `form_submission` sample, in the hook envelope.
        let event = KajabiEvent::from_json(
            &json!({"id": "hash_id", "event": "form_submission", "payload": [
                {"id": "0", "type": "form_submissions",
                 "attributes": {"name": "John Doe", "email": "john.doe@example.com", "address_line_1": null,
                    "phone_number": null, "business_number": null, "mobile_phone_number": null},
                 "relationships": {"site": {"data": {"id": "2", "type": "sites"}},
                    "form": {"data": {"id": "15", "type": "forms"}}}},
                {"id": "15", "type": "forms",
                 "attributes": {"url": "https://site.example/forms/15", "title": "Sample Form", "default": false,
                    "webhook_url": null, "created_at": null, "updated_at": null},
                 "relationships": {"site": {"data": {"id": "2", "type": "sites"}},
                    "fields": {"data": []}, "contact_tags": {"data": []}}}
            ]}),
        );
        assert_eq!(event.event_type, "form_submission");
        assert_eq!(event.event_id.as_deref(), Some("hash_id:0"));
        let KajabiAction::FormSubmission(form) = event.action else {
            panic!("{:?}", event.action)
        };
        assert_eq!(form.member.email.as_deref(), Some("john.doe@example.com"));
        assert_eq!(form.form_id.as_deref(), Some("15"));
        assert_eq!(form.form_title.as_deref(), Some("Sample Form"));
        assert_eq!(form.submission_id.as_deref(), Some("0"));
        assert_eq!((form.course_name, form.completed_on), (None, None));
    }

    #[test]
    fn signature_authenticates() {
        let body = br#"{"type":"offer.purchased"}"#;
        let sig = hmac_sha256_hex(b"s3cret", body);
        assert_eq!(
            authenticate(Some(&sig), &[], body, Some(&secret()), &[]),
            Ok(AuthMethod::Signature)
        );
        assert_eq!(
            authenticate(Some(&sig), &[], b"tampered", Some(&secret()), &[]),
            Err(KajabiAuthError::SignatureMismatch)
        );
        assert_eq!(
            authenticate(Some(&sig), &[], body, None, &[]),
            Err(KajabiAuthError::SignatureNotConfigured)
        );
    }

    #[test]
    fn bad_signature_is_not_rescued_by_a_good_token() {
        let tokens = [Secret::new("tok-1")];
        assert_eq!(
            authenticate(
                Some("00"),
                &["tok-1".into()],
                b"{}",
                Some(&secret()),
                &tokens
            ),
            Err(KajabiAuthError::SignatureMismatch)
        );
    }

    #[test]
    fn oversized_credentials_are_refused_by_their_limit() {
        let tokens = [Secret::new("tok-1")];
        let many: Vec<String> = (0..17).map(|_| "tok-1".to_string()).collect();
        assert_eq!(
            authenticate(None, &many, b"{}", None, &tokens),
            Err(KajabiAuthError::TooManyTokens(17))
        );
        assert_eq!(
            authenticate(None, &many[..16], b"{}", None, &tokens),
            Ok(AuthMethod::UrlToken)
        );
        let long = vec!["x".repeat(2049)];
        assert_eq!(
            authenticate(None, &long, b"{}", None, &tokens),
            Err(KajabiAuthError::TokensTooLong(2049))
        );
        let signature = "a".repeat(257);
        assert_eq!(
            authenticate(Some(&signature), &[], b"{}", Some(&tokens[0]), &tokens),
            Err(KajabiAuthError::SignatureTooLong(257))
        );
        assert_eq!(
            KajabiAuthError::TooManyTokens(17).to_string(),
            "17 token query parameters; the limit is 16"
        );
    }

    #[test]
    fn url_tokens_rotate() {
        let tokens = [Secret::new("old-token"), Secret::new("new-token")];
        assert_eq!(
            authenticate(None, &["old-token".into()], b"{}", None, &tokens),
            Ok(AuthMethod::UrlToken)
        );
        assert_eq!(
            authenticate(None, &["new-token".into()], b"{}", None, &tokens),
            Ok(AuthMethod::UrlToken)
        );
        assert_eq!(
            authenticate(None, &["nope".into()], b"{}", None, &tokens),
            Err(KajabiAuthError::TokenMismatch)
        );
        assert_eq!(
            authenticate(None, &[], b"{}", None, &tokens),
            Err(KajabiAuthError::Missing)
        );
    }

    #[test]
    fn seed_dialect_purchase() {
        let ev = KajabiEvent::from_json(&json!({
            "type": "offer.purchased", "id": "evt_123456",
            "member": {"id": "mem_789", "email": "User@Example.com", "first_name": "John", "last_name": "Doe"},
            "offer": {"id": "off_456", "name": "NSSA Annual Membership"}
        }));
        assert_eq!(ev.event_id.as_deref(), Some("evt_123456"));
        assert_eq!(ev.event_type, "offer.purchased");
        let KajabiAction::Purchase {
            member,
            offer_id,
            offer_name,
        } = ev.action
        else {
            panic!("not a purchase")
        };
        assert_eq!(member.email.as_deref(), Some("User@Example.com"));
        assert_eq!(member.member_id.as_deref(), Some("mem_789"));
        assert_eq!(member.first_name.as_deref(), Some("John"));
        assert_eq!(offer_id.as_deref(), Some("off_456"));
        assert_eq!(offer_name.as_deref(), Some("NSSA Annual Membership"));
    }

    #[test]
    fn a_v1_tag_hook_reads_its_contact_and_tag() {
        // Kajabi's documented `tag_added` sample, in the hook envelope.
        let ev = KajabiEvent::from_json(
            &json!({"id": "hash_id", "event": "tag_removed", "payload": [
                {"id": "41", "type": "contacts", "attributes": {"name": "Sample Recipient", "email": "sample@example.com",
                    "address_line_1": "123 Kajabi Ln", "address_line_2": "Kajabi Suite 4", "address_city": "Kajabiwood",
                    "address_country": "United Sites of Kajabi", "address_state": "Kajabifornia", "address_zip": "99999",
                    "phone_number": "5555555555", "business_number": null, "subscribed": false, "external_user_id": null,
                    "created_at": "2025-07-31T16:51:04.010Z", "updated_at": "2025-07-31T16:51:04.010Z"},
                 "links": {"customer": ""}, "relationships": {"site": {"data": {"id": "2", "type": "sites"}}}},
                {"id": "7", "type": "contact_tags", "attributes": {"name": "VIP"},
                 "relationships": {"site": {"data": {"id": "2", "type": "sites"}}}}
            ]}),
        );
        let KajabiAction::Tag(change) = &ev.action else {
            panic!("not a tag change: {:?}", ev.action)
        };
        assert!(!change.added);
        assert_eq!(change.tag.as_deref(), Some("VIP"));
        assert_eq!(change.member.email.as_deref(), Some("sample@example.com"));
        assert_eq!(change.member.member_id.as_deref(), Some("41"));
        assert_eq!(
            change.updated_at.map(|t| t.timestamp_millis()),
            Some(1_753_980_664_010)
        );
        assert_eq!(ev.event_id.as_deref(), Some("hash_id:41:7:1753980664010"));
    }

    #[test]
    fn a_payment_names_its_offer_by_relationship() {
        // Kajabi's documented `payment_succeeded` sample, its offer relationship filled in.
        let ev = KajabiEvent::from_json(
            &json!({"id": "hash_id", "event": "payment_succeeded", "payload": [
                {"id": "5001", "type": "transactions", "attributes": {"action": "charge", "state": "succeeded",
                    "payment_type": "charge", "amount_in_cents": 1000, "sales_tax_in_cents": 0, "currency": "USD",
                    "currency_symbol": "$", "formatted_amount": "$10.00", "created_at": "2025-07-31T17:10:19.285Z"},
                 "relationships": {"customer": {"data": {"id": "12", "type": "customers"}},
                    "offer": {"data": {"id": "off_456", "type": "offers"}}}},
                {"id": "12", "type": "customers", "attributes": {"name": "John Doe", "email": "john.doe@example.com"}}
            ]}),
        );
        let KajabiAction::Purchase {
            member, offer_id, ..
        } = &ev.action
        else {
            panic!("not a purchase")
        };
        assert_eq!(offer_id.as_deref(), Some("off_456"));
        assert_eq!(member.email.as_deref(), Some("john.doe@example.com"));
        assert_eq!(ev.event_id.as_deref(), Some("hash_id:5001"));
        // The envelope has no time: the transaction's own orders it.
        assert_eq!(
            ev.occurred_at.map(|t| t.timestamp_millis()),
            Some(1_753_981_819_285)
        );
    }

    #[test]
    fn v1_hooks_dialect_purchase() {
        let ev = KajabiEvent::from_json(&json!({
            "id": "a1b2c3", "event": "purchase",
            "payload": [
                {"id": "9001", "type": "purchases", "attributes": {"amount_in_cents": 29900}},
                {"id": "77", "type": "customers", "attributes": {"email": "jane@example.com", "name": "Jane Q Public"}},
                {"id": 2150, "type": "offers", "attributes": {"title": "NSSA Annual"}}
            ]
        }));
        // The hook's id and the purchase's own: one hook delivers every purchase.
        assert_eq!(ev.event_id.as_deref(), Some("a1b2c3:9001"));
        let KajabiAction::Purchase {
            member, offer_id, ..
        } = ev.action
        else {
            panic!("not a purchase")
        };
        assert_eq!(member.email.as_deref(), Some("jane@example.com"));
        assert_eq!(member.member_id.as_deref(), Some("77"));
        assert_eq!(member.first_name.as_deref(), Some("Jane"));
        assert_eq!(member.last_name.as_deref(), Some("Q Public"));
        assert_eq!(offer_id.as_deref(), Some("2150"));
    }

    #[test]
    fn legacy_dialect_purchase() {
        let ev = KajabiEvent::from_json(&json!({
            "id": 555, "event": "purchase.created", "member_email": "old@example.com",
            "member_name": "Old Timer", "offer_id": "off_456", "offer_title": "NSSA"
        }));
        assert_eq!(ev.event_id.as_deref(), Some("555"));
        let KajabiAction::Purchase {
            member, offer_id, ..
        } = ev.action
        else {
            panic!("not a purchase")
        };
        assert_eq!(member.email.as_deref(), Some("old@example.com"));
        assert_eq!(member.first_name.as_deref(), Some("Old"));
        assert_eq!(offer_id.as_deref(), Some("off_456"));
    }

    #[test]
    fn lifecycle_events_and_end_dates() {
        let ev = KajabiEvent::from_json(&json!({
            "type": "member.subscription.canceled", "id": "evt_c",
            "member": {"email": "a@example.com"}, "offer": {"id": "off_456"},
            "subscription": {"end_date": "2027-01-20T00:00:00Z"}
        }));
        let KajabiAction::Lifecycle {
            change, ends_at, ..
        } = ev.action
        else {
            panic!()
        };
        assert_eq!(change, LifecycleChange::Canceled);
        assert_eq!(
            ends_at,
            Some(Utc.with_ymd_and_hms(2027, 1, 20, 0, 0, 0).unwrap())
        );
        for (ty, want) in [
            ("member.subscription.renewed", LifecycleChange::Renewed),
            ("member.subscription.expired", LifecycleChange::Expired),
            ("purchase.refunded", LifecycleChange::Refunded),
        ] {
            let ev = KajabiEvent::from_json(&json!({"type": ty, "id": "x"}));
            assert!(matches!(ev.action, KajabiAction::Lifecycle { change, .. } if change == want));
        }
        // The `purchase.*` dialect's refund carries its member and offer flat.
        let ev = KajabiEvent::from_json(&json!({"id": "r1", "event": "purchase.refunded",
            "member_email": "a@example.com", "offer_id": "off_456"}));
        let KajabiAction::Lifecycle {
            change,
            member,
            offer_id,
            ..
        } = ev.action
        else {
            panic!("a refund is a lifecycle change");
        };
        assert_eq!(change, LifecycleChange::Refunded);
        assert_eq!(member.email.as_deref(), Some("a@example.com"));
        assert_eq!(offer_id.as_deref(), Some("off_456"));
    }

    #[test]
    fn unknown_and_odd_shapes_never_fail() {
        for body in [
            json!({}),
            json!([]),
            json!("text"),
            json!({"type": 5}),
            json!({"payload": "x", "event": "purchase"}),
            json!({"type":"tag_added","id":"t1"}),
        ] {
            let ev = KajabiEvent::from_json(&body);
            assert!(!ev.event_type.is_empty());
        }
        let ev = KajabiEvent::from_json(&json!({"type": "affiliate.signup", "id": "t1"}));
        assert_eq!(ev.action, KajabiAction::Unsupported);
        // A tag hook without its resources is still a tag change, naming no tag.
        let ev = KajabiEvent::from_json(&json!({"type": "tag_added", "id": "t1"}));
        assert!(matches!(
            ev.action,
            KajabiAction::Tag(TagChange { tag: None, .. })
        ));
        let ev = KajabiEvent::from_json(
            &json!({"event_type": "form.submitted", "event_id": "evt_9", "created_at": "2024-09-02T10:30:00Z"}),
        );
        assert_eq!(ev.event_id.as_deref(), Some("evt_9"));
        assert!(ev.occurred_at.is_some());
    }

    #[test]
    fn timestamps() {
        assert!(parse_timestamp(&json!("2026-01-20")).is_some());
        assert!(parse_timestamp(&json!(1_700_000_000)).is_some());
        assert!(parse_timestamp(&json!("next tuesday")).is_none());
    }
}
