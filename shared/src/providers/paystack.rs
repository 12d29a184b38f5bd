//! Paystack: `X-Paystack-Signature` (hex HMAC-SHA512 of the body, keyed with the
//! secret key) and the events Gatehouse acts on. Paystack sends no timestamp, so
//! replay protection comes from the event record.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::Secret;
use crate::providers::kajabi::parse_timestamp;
use crate::signature::verify_hmac_sha512_hex;

pub const SIGNATURE_HEADER: &str = "x-paystack-signature";

/// `X-Paystack-Signature` is one hex HMAC-SHA512 (128 characters).
pub const SIGNATURE_MAX_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaystackAuthError {
    #[error("missing X-Paystack-Signature header")]
    MissingHeader,
    #[error("X-Paystack-Signature does not match the HMAC-SHA512 of the body")]
    Mismatch,
    #[error("no Paystack secret key is configured")]
    NotConfigured,
    #[error("X-Paystack-Signature is {0} bytes; the limit is {max} bytes", max = SIGNATURE_MAX_BYTES)]
    TooLong(usize),
}

pub fn authenticate(
    header: Option<&str>,
    body: &[u8],
    secret: Option<&Secret>,
) -> Result<(), PaystackAuthError> {
    let header = header.ok_or(PaystackAuthError::MissingHeader)?;
    if header.len() > SIGNATURE_MAX_BYTES {
        return Err(PaystackAuthError::TooLong(header.len()));
    }
    let secret = secret.ok_or(PaystackAuthError::NotConfigured)?;
    if verify_hmac_sha512_hex(secret.expose().as_bytes(), body, header) {
        Ok(())
    } else {
        Err(PaystackAuthError::Mismatch)
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn at<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(root, |node, key| node.get(key))
}

fn time(root: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    at(root, path).and_then(parse_timestamp)
}

/// Who and what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    pub email: Option<String>,
    pub customer_code: Option<String>,
    /// `data.subscription_code` (`SUB_…`) on subscription events.
    pub subscription_code: Option<String>,
    pub first_name: Option<String>,
    pub plan_code: Option<String>,
    /// `metadata.plan` on a one-time charge.
    pub plan_hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaystackAction {
    ChargeSuccess {
        reference: Option<String>,
        amount: Option<i64>,
        currency: Option<String>,
    },
    SubscriptionCreate {
        next_payment_date: Option<DateTime<Utc>>,
    },
    SubscriptionNotRenew {
        next_payment_date: Option<DateTime<Utc>>,
    },
    SubscriptionDisable,
    InvoicePaymentFailed,
    InvoiceUpdate {
        paid: bool,
        period_end: Option<DateTime<Utc>>,
    },
    RefundProcessed {
        reference: Option<String>,
        amount: Option<i64>,
    },
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaystackEvent {
    pub event: String,
    /// `data.id`, else `data.reference`: with the event name, the event key.
    pub data_id: Option<String>,
    /// Paystack's own time for the change, when it sends one.
    pub occurred_at: Option<DateTime<Utc>>,
    pub subject: Subject,
    pub action: PaystackAction,
}

impl PaystackEvent {
    /// The event id Gatehouse keys on: the name plus `data.id` or `data.reference`.
    pub fn key_id(&self) -> Option<String> {
        self.data_id
            .as_ref()
            .map(|id| format!("{}:{id}", self.event))
    }

    pub fn from_json(root: &Value) -> Self {
        let event = text(root.get("event")).unwrap_or_else(|| "unknown".into());
        let data = root.get("data").cloned().unwrap_or(Value::Null);
        let subject = Subject {
            email: text(at(&data, &["customer", "email"]))
                .or_else(|| text(at(&data, &["subscription", "customer", "email"]))),
            customer_code: text(at(&data, &["customer", "customer_code"])),
            subscription_code: text(at(&data, &["subscription_code"]))
                .or_else(|| text(at(&data, &["subscription", "subscription_code"]))),
            first_name: text(at(&data, &["customer", "first_name"])),
            // Verify answers `plan` as a code with the details in `plan_object`.
            plan_code: text(at(&data, &["plan", "plan_code"]))
                .or_else(|| text(at(&data, &["plan_object", "plan_code"])))
                .or_else(|| text(at(&data, &["subscription", "plan", "plan_code"]))),
            plan_hint: text(at(&metadata(&data), &["plan"])),
        };
        let action = match event.as_str() {
            "charge.success" => PaystackAction::ChargeSuccess {
                reference: text(data.get("reference")),
                amount: data.get("amount").and_then(Value::as_i64),
                currency: text(data.get("currency")),
            },
            "subscription.create" => PaystackAction::SubscriptionCreate {
                next_payment_date: time(&data, &["next_payment_date"]),
            },
            "subscription.not_renew" => PaystackAction::SubscriptionNotRenew {
                next_payment_date: time(&data, &["next_payment_date"]),
            },
            "subscription.disable" => PaystackAction::SubscriptionDisable,
            "invoice.payment_failed" => PaystackAction::InvoicePaymentFailed,
            "invoice.update" => PaystackAction::InvoiceUpdate {
                paid: data.get("paid").and_then(Value::as_bool).unwrap_or(false)
                    || data.get("status").and_then(Value::as_str) == Some("success"),
                period_end: time(&data, &["subscription", "next_payment_date"])
                    .or_else(|| time(&data, &["period_end"])),
            },
            "refund.processed" => PaystackAction::RefundProcessed {
                reference: text(data.get("transaction_reference"))
                    .or_else(|| text(at(&data, &["transaction", "reference"]))),
                amount: data.get("amount").and_then(Value::as_i64),
            },
            _ => PaystackAction::Unsupported,
        };
        Self {
            data_id: text(data.get("id")).or_else(|| text(data.get("reference"))),
            occurred_at: event_time(&event, &data),
            event,
            subject,
            action,
        }
    }
}

/// `data.metadata` as an object: Paystack returns it as the object sent, as
/// that object stringified, as `""` or as `0`.
fn metadata(data: &Value) -> Value {
    match data.get("metadata") {
        Some(Value::String(raw)) => serde_json::from_str(raw).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// Paystack's time for the change an event reports, where its payload has one.
///
/// A charge has `paid_at`, an invoice `paid_at` or its `created_at`, and
/// `subscription.create` the subscription's `createdAt`/`created_at`. Every
/// other subscription event carries only that same creation time, which is
/// not when it was disabled or set not to renew; those have no time here, and
/// the time they are received orders them.
fn event_time(event: &str, data: &Value) -> Option<DateTime<Utc>> {
    let fields: &[&str] = match event {
        "charge.success" => &["paid_at"],
        "subscription.create" => &["createdAt", "created_at"],
        e if e.starts_with("invoice.") => &["paid_at", "created_at", "createdAt"],
        e if e.starts_with("subscription.") => &[],
        _ => &["paid_at", "created_at", "createdAt"],
    };
    fields.iter().find_map(|field| time(data, &[field]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::hmac_sha512_hex;
    use serde_json::json;

    #[test]
    fn subscription_events_after_the_create_carry_no_time_of_their_own() {
        let created = "2026-01-01T10:00:00.000Z";
        let body = |event: &str| {
            json!({"event": event, "data": {"id": 7, "subscription_code": "SUB_1", "status": "non-renewing",
                "created_at": created, "createdAt": created, "next_payment_date": null,
                "customer": {"email": "a@example.com", "customer_code": "CUS_1"},
                "plan": {"plan_code": "PLN_1"}}})
        };
        let create = PaystackEvent::from_json(&body("subscription.create"));
        assert_eq!(create.occurred_at, time(&json!({"t": created}), &["t"]));
        for event in ["subscription.not_renew", "subscription.disable"] {
            let ev = PaystackEvent::from_json(&body(event));
            assert_eq!(ev.occurred_at, None, "{event}: created_at is not its time");
        }
        let not_renew = PaystackEvent::from_json(&body("subscription.not_renew"));
        assert_eq!(
            not_renew.action,
            PaystackAction::SubscriptionNotRenew {
                next_payment_date: None
            },
            "a null next_payment_date is no date"
        );
    }
    #[test]
    fn signature() {
        let secret = Secret::new("sk_test_x");
        let body = br#"{"event":"charge.success"}"#;
        let sig = hmac_sha512_hex(b"sk_test_x", body);
        assert_eq!(authenticate(Some(&sig), body, Some(&secret)), Ok(()));
        assert_eq!(
            authenticate(Some(&sig), b"{}", Some(&secret)),
            Err(PaystackAuthError::Mismatch)
        );
        assert_eq!(
            authenticate(None, body, Some(&secret)),
            Err(PaystackAuthError::MissingHeader)
        );
        assert_eq!(
            authenticate(Some(&sig), body, None),
            Err(PaystackAuthError::NotConfigured)
        );
        let long = "a".repeat(SIGNATURE_MAX_BYTES + 1);
        assert_eq!(
            authenticate(Some(&long), body, Some(&secret)),
            Err(PaystackAuthError::TooLong(SIGNATURE_MAX_BYTES + 1))
        );
    }

    #[test]
    fn charge_success_and_key() {
        let ev = PaystackEvent::from_json(&json!({"event": "charge.success", "data": {
            "id": 302961, "reference": "qTPrJoy9Bx", "amount": 1000000, "currency": "NGN", "paid_at": "2026-01-02T10:00:00.000Z",
            "customer": {"email": "Kola@Example.com", "customer_code": "CUS_x", "first_name": "Kola"},
            "plan": {"plan_code": "PLN_premium_monthly"}}}));
        assert_eq!(ev.key_id().as_deref(), Some("charge.success:302961"));
        assert_eq!(ev.subject.email.as_deref(), Some("Kola@Example.com"));
        assert_eq!(ev.subject.plan_code.as_deref(), Some("PLN_premium_monthly"));
        assert!(ev.occurred_at.is_some());
        assert_eq!(
            ev.action,
            PaystackAction::ChargeSuccess {
                reference: Some("qTPrJoy9Bx".into()),
                amount: Some(1000000),
                currency: Some("NGN".into())
            }
        );
        let by_reference = PaystackEvent::from_json(
            &json!({"event": "charge.success", "data": {"reference": "ref_1"}}),
        );
        assert_eq!(
            by_reference.key_id().as_deref(),
            Some("charge.success:ref_1")
        );
        assert_eq!(
            PaystackEvent::from_json(&json!({"event": "x"})).key_id(),
            None
        );
    }

    #[test]
    fn subscription_events() {
        let ev = PaystackEvent::from_json(&json!({"event": "subscription.not_renew", "data": {
            "subscription_code": "SUB_1", "next_payment_date": "2026-03-01T00:00:00.000Z",
            "customer": {"email": "a@example.com"}, "plan": {"plan_code": "PLN_premium_monthly"}}}));
        assert!(matches!(
            ev.action,
            PaystackAction::SubscriptionNotRenew {
                next_payment_date: Some(_)
            }
        ));
        let refund = PaystackEvent::from_json(
            &json!({"event": "refund.processed", "data": {"id": 9, "transaction_reference": "ref_1", "amount": 500}}),
        );
        assert_eq!(
            refund.action,
            PaystackAction::RefundProcessed {
                reference: Some("ref_1".into()),
                amount: Some(500)
            }
        );
        assert_eq!(
            PaystackEvent::from_json(&json!({"event": "transfer.success"})).action,
            PaystackAction::Unsupported
        );
    }
}
