//! Payment records: what a refund looks up to find what the payment granted.

use super::*;
use crate::domain::{BoundPayment, Money, PaymentReference};

/// A payment as the provider reported it; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub provider: Provider,
    pub reference: String,
    pub status: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// What it granted, when it paid for a plan.
    pub user_id: Option<UserId>,
    pub plan_id: Option<String>,
    /// A pass queued behind another of its plan: when its days start.
    pub starts_at: Option<DateTime<Utc>>,
    /// The checkout this record is listed under (a Stripe checkout's payment
    /// intent): the admin listing shows that one, and this one not.
    pub listed_as: Option<String>,
}

impl Payment {
    fn from_item(item: &Item) -> Option<Self> {
        Some(Self {
            provider: Provider::parse(get_s(item, "provider")?)?,
            reference: get_s(item, "reference")?.to_string(),
            status: get_s(item, "status").unwrap_or("unknown").to_string(),
            amount: get_n(item, "amount"),
            currency: get_s(item, "currency").map(str::to_string),
            user_id: get_s(item, "user_id").map(UserId::from_stored),
            plan_id: get_s(item, "plan_id").map(str::to_string),
            starts_at: get_ts(item, "starts_at"),
            listed_as: get_s(item, "listed_as").map(str::to_string),
        })
    }
}

impl Tx {
    /// Creates or updates a payment record, keeping its first-seen time and
    /// what it granted, in one update (a transaction may touch an item once):
    /// listed for admins (`GET /admin/payments`), or naming the checkout it
    /// is listed under (`listed_as`).
    pub fn upsert_payment(
        &mut self,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Every name is aliased: several (status, provider, reference, ...) are DynamoDB reserved words.
        let mut fields: Vec<(&str, AttributeValue)> = vec![
            ("kind", s("PAYMENT")),
            ("provider", s(payment.provider.as_str())),
            ("reference", s(payment.reference.clone())),
            ("status", s(payment.status.clone())),
            ("updated_at", s(ts(now))),
        ];
        if let Some(amount) = payment.amount {
            fields.push(("amount", n(amount)));
        }
        if let Some(currency) = &payment.currency {
            fields.push(("currency", s(currency.to_ascii_lowercase())));
        }
        if let Some(user) = &payment.user_id {
            fields.push(("user_id", s(user.as_str())));
        }
        if let Some(plan) = &payment.plan_id {
            fields.push(("plan_id", s(plan.clone())));
        }
        if let Some(start) = payment.starts_at {
            fields.push(("starts_at", s(ts(start))));
        }
        let mut sets: Vec<String> = Vec::new();
        let mut attr_names = std::collections::HashMap::new();
        let mut vals = Item::new();
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#f{i} = :f{i}"));
            attr_names.insert(format!("#f{i}"), name.to_string());
            vals.insert(format!(":f{i}"), value);
        }
        attr_names.insert("#created".into(), "created_at".into());
        vals.insert(":now".into(), s(ts(now)));
        sets.push("#created = if_not_exists(#created, :now)".into());
        if let Some(checkout) = &payment.listed_as {
            vals.insert(":checkout".into(), s(checkout.clone()));
            sets.push("listed_as = :checkout".into());
        } else {
            // Every payment by first-seen time, and each member's.
            vals.insert(":lpk".into(), s(admin::PAYMENTS_PARTITION));
            vals.insert(
                ":lsk".into(),
                s(format!(
                    "{}#{}#{}",
                    ts(now),
                    payment.provider,
                    payment.reference
                )),
            );
            sets.push("gsi4pk = if_not_exists(gsi4pk, :lpk)".into());
            sets.push("gsi4sk = if_not_exists(gsi4sk, :lsk)".into());
            if let Some(user) = &payment.user_id {
                vals.insert(":upk".into(), s(admin::user_payments_partition(user)));
                sets.push("gsi5pk = :upk".into());
                sets.push("gsi5sk = if_not_exists(gsi5sk, :now)".into());
            }
        }
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::payment(payment.provider, &payment.reference),
                    keys::PAYMENT,
                )))
                .update_expression(format!("SET {}", sets.join(", ")))
                .set_expression_attribute_names(Some(attr_names))
                .set_expression_attribute_values(Some(vals)),
        )
    }
}

impl Store {
    pub async fn get_payment(
        &self,
        provider: Provider,
        reference: &str,
    ) -> Result<Option<Payment>, StoreError> {
        Ok(self
            .get(keys::payment(provider, reference), keys::PAYMENT)
            .await?
            .and_then(|item| Payment::from_item(&item)))
    }
}

/// A payment Gatehouse's checkout started: bound to a member and a plan
/// before the buyer pays, under the reference it sends the provider. It is
/// the same `PAYMENT#` item the provider's payment events update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutPayment {
    pub provider: Provider,
    pub reference: PaymentReference,
    pub user_id: UserId,
    pub email: Email,
    pub plan_id: String,
    /// `pending`, then `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// What Gatehouse asked the buyer to pay (Paystack); Stripe's price decides its own.
    pub price: Option<Money>,
    /// The Paystack plan a subscription was started on.
    pub plan_code: Option<String>,
    /// The Stripe Checkout Session it was opened as.
    pub session_id: Option<String>,
    /// Why it failed or was cancelled, and the provider's answer where there was one.
    pub reason: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// The longest provider answer kept on a failed payment.
const GATEWAY_RESPONSE_CHARS: usize = 2_000;

impl CheckoutPayment {
    fn from_item(item: &Item) -> Option<Self> {
        if get_s(item, "origin") != Some("checkout") {
            return None;
        }
        let price = match (get_n(item, "asked_amount"), get_s(item, "asked_currency")) {
            (Some(amount), Some(currency)) => Some(Money {
                amount,
                currency: currency.to_string(),
            }),
            _ => None,
        };
        Some(Self {
            provider: Provider::parse(get_s(item, "provider")?)?,
            reference: PaymentReference::parse(get_s(item, "reference")?)?,
            user_id: UserId::from_stored(get_s(item, "user_id")?),
            email: Email::parse(get_s(item, "email")?).ok()?,
            plan_id: get_s(item, "plan_id")?.to_string(),
            status: get_s(item, "status").unwrap_or("unknown").to_string(),
            price,
            plan_code: get_s(item, "asked_plan_code").map(str::to_string),
            session_id: get_s(item, "session_id").map(str::to_string),
            reason: get_s(item, "reason").map(str::to_string),
            created_at: get_ts(item, "created_at"),
        })
    }

    /// The payment as the return judges it.
    pub fn bound(&self) -> BoundPayment {
        BoundPayment {
            reference: self.reference.clone(),
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            price: self.price.clone(),
            plan_code: self.plan_code.clone(),
            session_id: self.session_id.clone(),
        }
    }
}

impl Tx {
    /// A new checkout's payment, `pending`; its reference is new, so it never overwrites.
    pub fn start_checkout(
        &mut self,
        payment: &CheckoutPayment,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(
            keys::payment(payment.provider, payment.reference.as_str()),
            keys::PAYMENT,
        );
        item.insert("kind".into(), s("PAYMENT"));
        item.insert("origin".into(), s("checkout"));
        item.insert("provider".into(), s(payment.provider.as_str()));
        item.insert("reference".into(), s(payment.reference.as_str()));
        item.insert("status".into(), s("pending"));
        item.insert("user_id".into(), s(payment.user_id.as_str()));
        item.insert("email".into(), s(payment.email.as_str()));
        item.insert("plan_id".into(), s(payment.plan_id.clone()));
        // What was asked, apart from `amount`/`currency`, which hold what the provider reports paid.
        if let Some(price) = &payment.price {
            item.insert("asked_amount".into(), n(price.amount));
            item.insert("asked_currency".into(), s(price.currency.clone()));
        }
        if let Some(code) = &payment.plan_code {
            item.insert("asked_plan_code".into(), s(code.clone()));
        }
        item.insert("created_at".into(), s(ts(now)));
        item.insert("updated_at".into(), s(ts(now)));
        item.insert("gsi4pk".into(), s(admin::PAYMENTS_PARTITION));
        item.insert(
            "gsi4sk".into(),
            s(format!(
                "{}#{}#{}",
                ts(now),
                payment.provider,
                payment.reference
            )),
        );
        item.insert(
            "gsi5pk".into(),
            s(admin::user_payments_partition(&payment.user_id)),
        );
        item.insert("gsi5sk".into(), s(ts(now)));
        self.push_put(item, Some(("attribute_not_exists(pk)", None, None)))
    }
}

impl Tx {
    /// Closes a pending checkout payment (`failed` or `cancelled`) with the
    /// event that closed it; the condition fails if it is no longer pending.
    pub fn close_checkout(
        &mut self,
        provider: Provider,
        reference: &PaymentReference,
        status: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(GATEWAY_RESPONSE_CHARS).collect();
        self.push_update(
            Update::builder()
                .set_key(Some(key(
                    keys::payment(provider, reference.as_str()),
                    keys::PAYMENT,
                )))
                .update_expression("SET #status = :closed, reason = :reason, updated_at = :now")
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":closed", s(status))
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":now", s(ts(now))),
        )
    }
}

impl Store {
    /// A payment Gatehouse's checkout started, `None` for any other.
    pub async fn get_checkout(
        &self,
        provider: Provider,
        reference: &PaymentReference,
    ) -> Result<Option<CheckoutPayment>, StoreError> {
        Ok(self
            .get(keys::payment(provider, reference.as_str()), keys::PAYMENT)
            .await?
            .and_then(|item| CheckoutPayment::from_item(&item)))
    }

    /// Notes the Stripe Checkout Session a pending payment was opened as.
    pub async fn checkout_opened(
        &self,
        provider: Provider,
        reference: &PaymentReference,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::payment(provider, reference.as_str()),
                keys::PAYMENT,
            )))
            .update_expression("SET session_id = :sid, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":sid", s(session_id))
            .expression_attribute_values(":now", s(ts(now)))
            .send()
            .await
            .map_err(request_error)?;
        Ok(())
    }

    /// Closes a pending checkout payment as `failed` or `cancelled`, with the
    /// reason (the provider's answer, cut short). One that has already
    /// succeeded or closed is left as it is: `false`.
    pub async fn close_checkout(
        &self,
        provider: Provider,
        reference: &PaymentReference,
        status: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let reason: String = reason.chars().take(GATEWAY_RESPONSE_CHARS).collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::payment(provider, reference.as_str()),
                keys::PAYMENT,
            )))
            .update_expression("SET #status = :closed, reason = :reason, updated_at = :now")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":closed", s(status))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(ts(now)))
            .send()
            .await;
        condition_held(result)
    }
}

/// A payment as the admin listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub provider: Provider,
    pub reference: String,
    pub status: String,
    /// What was paid, else (a checkout not paid yet) what was asked: minor units.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub plan_id: Option<String>,
    pub user_id: Option<String>,
    /// `checkout` for a payment Gatehouse's checkout started.
    pub origin: Option<String>,
    pub reason: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// A pass queued behind another of its plan: when its days start.
    pub starts_at: Option<DateTime<Utc>>,
}

impl PaymentRow {
    /// `None` for a record listed under another (a checkout's payment intent).
    fn from_item(item: &Item) -> Option<Self> {
        if get_s(item, "listed_as").is_some() {
            return None;
        }
        Some(Self {
            provider: Provider::parse(get_s(item, "provider")?)?,
            reference: get_s(item, "reference")?.to_string(),
            status: get_s(item, "status").unwrap_or("unknown").to_string(),
            amount: get_n(item, "amount").or_else(|| get_n(item, "asked_amount")),
            currency: get_s(item, "currency")
                .or_else(|| get_s(item, "asked_currency"))
                .map(str::to_string),
            plan_id: get_s(item, "plan_id").map(str::to_string),
            user_id: get_s(item, "user_id").map(str::to_string),
            origin: get_s(item, "origin").map(str::to_string),
            reason: get_s(item, "reason").map(str::to_string),
            created_at: get_s(item, "created_at").map(str::to_string),
            updated_at: get_s(item, "updated_at").map(str::to_string),
            starts_at: get_ts(item, "starts_at"),
        })
    }
}

impl Store {
    /// The whole payments these index rows point at, in their order, in one
    /// consistent `BatchGetItem`.
    pub async fn payment_rows(
        &self,
        rows: &[admin::IndexRow],
    ) -> Result<Vec<PaymentRow>, StoreError> {
        let keys: Vec<(String, String)> =
            rows.iter().filter_map(admin::IndexRow::table_key).collect();
        let wanted: Vec<Item> = keys.iter().map(|(pk, sk)| key(pk.clone(), sk)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.batch_get(wanted).await?;
        let by_pk: std::collections::HashMap<&str, &Item> = found
            .iter()
            .filter_map(|item| Some((get_s(item, "pk")?, item)))
            .collect();
        Ok(keys
            .iter()
            .filter_map(|(pk, _)| by_pk.get(pk.as_str()))
            .filter_map(|item| PaymentRow::from_item(item))
            .collect())
    }

    /// The whole payment an index row points at (the index projects only part of it).
    pub async fn payment_row(
        &self,
        row: &admin::IndexRow,
    ) -> Result<Option<PaymentRow>, StoreError> {
        let Some((pk, sk)) = row.table_key() else {
            return Ok(None);
        };
        Ok(self
            .get(pk, &sk)
            .await?
            .and_then(|item| PaymentRow::from_item(&item)))
    }
}
