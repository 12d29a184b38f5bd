//! Payment records: what a refund looks up to find what the payment granted.

use super::*;

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
        })
    }
}

impl Tx {
    /// Creates or updates a payment record, keeping its first-seen time and what it granted.
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
