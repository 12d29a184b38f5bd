//! `GET /plans`: the plans for sale, from the plans file. Each plan's id,
//! name, kind, period and price per provider (a Stripe price id with the
//! amount to show, a Paystack amount and plan code). Public: no session, no
//! AWS call. A plan with no `sale` is not listed.

use gatehouse::domain::{Money, Plan, Sale};
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;
use serde_json::{json, Value};

fn money(price: &Money) -> Value {
    json!({"amount": price.amount, "currency": price.currency, "display": price.to_string()})
}

/// One plan as the plans page and the apps see it.
pub fn plan_json(plan: &Plan, sale: &Sale) -> Value {
    let mut prices = serde_json::Map::new();
    if let Some(stripe) = &sale.stripe {
        let mut price = json!({"price": stripe.price});
        if let (Some(shown), Some(fields)) = (&stripe.shown, price.as_object_mut()) {
            if let Value::Object(money) = money(shown) {
                fields.extend(money);
            }
        }
        prices.insert("stripe".into(), price);
    }
    if let Some(paystack) = &sale.paystack {
        let mut price = money(&paystack.price);
        if let Some(code) = &paystack.plan_code {
            price["plan_code"] = json!(code);
        }
        prices.insert("paystack".into(), price);
    }
    json!({
        "id": plan.id,
        "name": plan.name,
        "kind": if sale.recurring { "subscription" } else { "one_time" },
        "period_days": plan.period_days,
        "lifetime": plan.lifetime,
        "prices": prices,
    })
}

pub struct PlansList {
    body: Value,
}

impl PlansList {
    pub fn new(services: Services) -> Self {
        let settings = &services.settings;
        let plans: Vec<Value> = settings
            .plans
            .for_sale()
            .map(|(plan, sale)| plan_json(plan, sale))
            .collect();
        Self {
            body: json!({"plans": plans, "payments_enabled": settings.payments_enabled}),
        }
    }

    pub async fn handle(&self, _request: ApiRequest) -> ApiResponse {
        ApiResponse::json(200, &self.body).with_header("cache-control", "public, max-age=300")
    }
}

impl HttpFunction for PlansList {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(PlansList::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse::domain::PlanCatalog;

    #[test]
    fn a_plan_shows_its_kind_and_each_price() {
        let catalog = PlanCatalog::from_json(gatehouse::config::EMBEDDED_PLANS).unwrap();
        let (plan, sale, _) = catalog.choose("premium_monthly", "stripe").unwrap();
        let view = plan_json(plan, sale);
        assert_eq!(view["kind"], "subscription");
        assert_eq!(view["prices"]["stripe"]["price"], "price_premium_monthly");
        assert_eq!(view["prices"]["stripe"]["display"], "15.00 USD");
        assert_eq!(view["prices"]["paystack"]["amount"], 500000);
        assert_eq!(view["prices"]["paystack"]["display"], "5000.00 NGN");
        assert_eq!(
            view["prices"]["paystack"]["plan_code"],
            "PLN_premium_monthly"
        );
        let (plan, sale, _) = catalog.choose("premium_lifetime", "stripe").unwrap();
        let view = plan_json(plan, sale);
        assert_eq!(view["kind"], "one_time");
        assert!(view["prices"].get("paystack").is_none());
    }
}
