use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::checkout::{Money, PaystackPrice, Sale, StripePrice};
use super::{CheckoutProvider, ChoiceError, Provider};

/// A plan that exists in the catalog. Only `PlanCatalog` hands these out, so
/// holding a `&Plan` means the plan is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub partner: Option<String>,
    /// Length of one paid period. `None` together with `lifetime` means access never ends.
    pub period_days: Option<u32>,
    pub lifetime: bool,
    pub roles: Vec<String>,
    /// How the plan is sold through Gatehouse's checkout; `None` is not for sale.
    pub sale: Option<Sale>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plans file is not valid JSON: {0}")]
    Json(String),
    #[error("plan {0} needs period_days or lifetime: true")]
    NoPeriod(String),
    #[error("{provider} product {product} maps to unknown plan {plan}")]
    UnknownPlan {
        provider: String,
        product: String,
        plan: String,
    },
    #[error("unknown provider {0} in plans file")]
    UnknownProvider(String),
    #[error("plan {plan} grants role {role}, which the roles table does not define")]
    UnknownRole { plan: String, role: String },
    #[error("the roles table must define the base role {0}")]
    NoBaseRole(&'static str),
    #[error("kajabi_tags: tag {tag} maps to unknown plan {plan}")]
    UnknownTagPlan { tag: String, plan: String },
    #[error("kajabi_tags: tag {0} is listed twice (names compare without case and extra spaces)")]
    RepeatedTag(String),
    #[error("plan {plan} is for sale but {reason}")]
    BadSale { plan: String, reason: String },
}

/// A Kajabi tag's name as Gatehouse compares it: trimmed, inner spaces
/// collapsed, lower case.
pub fn normalize_tag(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The role every user holds, subscribed or not.
pub const BASE_ROLE: &str = "free-user";

#[derive(Deserialize)]
struct PlansFile {
    plans: BTreeMap<String, PlanSpec>,
    #[serde(default)]
    products: BTreeMap<String, BTreeMap<String, String>>,
    /// Role -> the permissions it grants.
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    /// Kajabi tag name -> the plan a contact holds while tagged.
    #[serde(default)]
    kajabi_tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PlanSpec {
    name: String,
    #[serde(default)]
    partner: Option<String>,
    /// `duration_days` reads better for one-time plans; both mean the same.
    #[serde(default, alias = "duration_days")]
    period_days: Option<u32>,
    #[serde(default)]
    lifetime: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    sale: Option<SaleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaleSpec {
    /// A subscription that renews (Stripe `mode=subscription`, a Paystack plan
    /// code); otherwise a one-time payment.
    recurring: bool,
    #[serde(default)]
    stripe: Option<StripeSpec>,
    #[serde(default)]
    paystack: Option<PaystackSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StripeSpec {
    price: String,
    /// What to show on the plans page; Stripe's price is what is charged.
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaystackSpec {
    #[serde(default)]
    plan_code: Option<String>,
    amount: i64,
    currency: String,
}

/// Plans and the provider product ids that map to them (`infra/plans.json`).
#[derive(Debug, Clone)]
pub struct PlanCatalog {
    plans: BTreeMap<String, Plan>,
    products: HashMap<(Provider, String), String>,
    roles: BTreeMap<String, Vec<String>>,
    /// Normalized tag name -> plan id.
    kajabi_tags: BTreeMap<String, String>,
}

impl PlanCatalog {
    pub fn from_json(raw: &str) -> Result<Self, PlanError> {
        let file: PlansFile =
            serde_json::from_str(raw).map_err(|e| PlanError::Json(e.to_string()))?;
        let mut plans = BTreeMap::new();
        let mut sales = Vec::new();
        for (id, spec) in file.plans {
            if spec.period_days.is_none() && !spec.lifetime {
                return Err(PlanError::NoPeriod(id));
            }
            if let Some(sale) = spec.sale {
                sales.push((id.clone(), sale));
            }
            plans.insert(
                id.clone(),
                Plan {
                    id,
                    name: spec.name,
                    partner: spec.partner,
                    period_days: spec.period_days,
                    lifetime: spec.lifetime,
                    roles: spec.roles,
                    sale: None,
                },
            );
        }
        if !file.roles.is_empty() && !file.roles.contains_key(BASE_ROLE) {
            return Err(PlanError::NoBaseRole(BASE_ROLE));
        }
        for plan in plans.values() {
            for role in &plan.roles {
                if !file.roles.contains_key(role) {
                    return Err(PlanError::UnknownRole {
                        plan: plan.id.clone(),
                        role: role.clone(),
                    });
                }
            }
        }
        let mut products = HashMap::new();
        for (provider_name, map) in file.products {
            let provider = Provider::parse(&provider_name)
                .ok_or_else(|| PlanError::UnknownProvider(provider_name.clone()))?;
            for (product, plan) in map {
                if !plans.contains_key(&plan) {
                    return Err(PlanError::UnknownPlan {
                        provider: provider_name.clone(),
                        product,
                        plan,
                    });
                }
                products.insert((provider, product), plan);
            }
        }
        for (id, spec) in sales {
            let sale = sale_of(&id, spec, &plans, &products)?;
            if let Some(plan) = plans.get_mut(&id) {
                plan.sale = Some(sale);
            }
        }
        let mut kajabi_tags = BTreeMap::new();
        for (tag, plan) in file.kajabi_tags {
            if !plans.contains_key(&plan) {
                return Err(PlanError::UnknownTagPlan { tag, plan });
            }
            if kajabi_tags.insert(normalize_tag(&tag), plan).is_some() {
                return Err(PlanError::RepeatedTag(tag));
            }
        }
        Ok(Self {
            plans,
            products,
            roles: file.roles,
            kajabi_tags,
        })
    }

    /// The plans for sale, by id.
    pub fn for_sale(&self) -> impl Iterator<Item = (&Plan, &Sale)> {
        self.plans
            .values()
            .filter_map(|plan| plan.sale.as_ref().map(|sale| (plan, sale)))
    }

    /// The plan a buyer chose, with how it is sold through `provider`.
    pub fn choose(
        &self,
        plan_id: &str,
        provider: &str,
    ) -> Result<(&Plan, &Sale, CheckoutProvider), ChoiceError> {
        let (plan, sale) = self
            .plans
            .get(plan_id)
            .and_then(|plan| plan.sale.as_ref().map(|sale| (plan, sale)))
            .ok_or_else(|| ChoiceError::UnknownPlan(plan_id.to_string()))?;
        let provider = CheckoutProvider::parse(provider)
            .ok_or_else(|| ChoiceError::UnknownProvider(provider.to_string()))?;
        let priced = match provider {
            CheckoutProvider::Stripe => sale.stripe.is_some(),
            CheckoutProvider::Paystack => sale.paystack.is_some(),
        };
        if !priced {
            return Err(ChoiceError::NoPrice {
                plan: plan.id.clone(),
                provider: provider.as_str().to_string(),
            });
        }
        Ok((plan, sale, provider))
    }

    /// The plan a Kajabi tag grants while a member carries it, if configured.
    pub fn plan_for_tag(&self, tag: &str) -> Option<&Plan> {
        self.kajabi_tags
            .get(&normalize_tag(tag))
            .and_then(|id| self.plans.get(id))
    }

    /// The plan a provider's product (offer, price, plan code) grants, if configured.
    pub fn for_product(&self, provider: Provider, product_id: &str) -> Option<&Plan> {
        self.products
            .get(&(provider, product_id.to_string()))
            .and_then(|id| self.plans.get(id))
    }

    pub fn get(&self, plan_id: &str) -> Option<&Plan> {
        self.plans.get(plan_id)
    }

    /// The provider product ids that grant `plan_id`, sorted.
    pub fn products_for(&self, provider: Provider, plan_id: &str) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .products
            .iter()
            .filter(|((p, _), plan)| *p == provider && plan.as_str() == plan_id)
            .map(|((_, id), _)| id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The permissions a role grants (none for a role the table does not define).
    pub fn permissions(&self, role: &str) -> &[String] {
        self.roles.get(role).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Whether some role in the table grants `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.roles
            .values()
            .any(|granted| granted.iter().any(|p| p == permission))
    }
}

/// A plan's sale, checked against the catalog: the price and plan code it
/// sells must map back to the plan, so the provider's events find it.
fn sale_of(
    id: &str,
    spec: SaleSpec,
    plans: &BTreeMap<String, Plan>,
    products: &HashMap<(Provider, String), String>,
) -> Result<Sale, PlanError> {
    let bad = |reason: String| PlanError::BadSale {
        plan: id.to_string(),
        reason,
    };
    let maps_here = |provider: Provider, product: &str| {
        products
            .get(&(provider, product.to_string()))
            .map(String::as_str)
            == Some(id)
    };
    if spec.recurring && plans.get(id).is_some_and(|p| p.lifetime) {
        return Err(bad("a lifetime plan cannot be recurring".into()));
    }
    if spec.stripe.is_none() && spec.paystack.is_none() {
        return Err(bad("has no stripe or paystack price".into()));
    }
    let money = |amount: i64, currency: String| -> Result<Money, PlanError> {
        let currency = currency.trim().to_ascii_lowercase();
        if amount <= 0 || currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(bad(format!(
                "its amount {amount} {currency} is not a positive amount in a three-letter currency"
            )));
        }
        Ok(Money { amount, currency })
    };
    let stripe = match spec.stripe {
        None => None,
        Some(s) => {
            if !maps_here(Provider::Stripe, &s.price) {
                return Err(bad(format!(
                    "its Stripe price {} is not mapped to it under products.stripe",
                    s.price
                )));
            }
            let shown = match (s.amount, s.currency) {
                (Some(amount), Some(currency)) => Some(money(amount, currency)?),
                (None, None) => None,
                _ => {
                    return Err(bad(
                        "its Stripe amount needs a currency, and the other way round".into(),
                    ))
                }
            };
            Some(StripePrice {
                price: s.price,
                shown,
            })
        }
    };
    let paystack = match spec.paystack {
        None => None,
        Some(p) => {
            match (&p.plan_code, spec.recurring) {
                (None, true) => {
                    return Err(bad(
                        "it is recurring and its Paystack price has no plan_code".into(),
                    ))
                }
                (Some(code), false) => {
                    return Err(bad(format!(
                        "it is one-time and its Paystack price names plan code {code}"
                    )))
                }
                (Some(code), true) if !maps_here(Provider::Paystack, code) => {
                    return Err(bad(format!(
                        "its Paystack plan code {code} is not mapped to it under products.paystack"
                    )))
                }
                _ => {}
            }
            Some(PaystackPrice {
                plan_code: p.plan_code,
                price: money(p.amount, p.currency)?,
            })
        }
    };
    Ok(Sale {
        recurring: spec.recurring,
        stripe,
        paystack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "plans": {
            "nssa_annual": {"name": "NSSA Annual", "partner": "NSSA", "period_days": 365, "roles": ["premium-member"]},
            "forever": {"name": "Forever", "lifetime": true}
        },
        "products": {"kajabi": {"off_456": "nssa_annual", "2150": "nssa_annual"}},
        "roles": {"free-user": ["read:basic-content"], "premium-member": ["read:premium-content"]}
    }"#;

    #[test]
    fn maps_products_to_plans() {
        let catalog = PlanCatalog::from_json(SAMPLE).unwrap();
        let plan = catalog.for_product(Provider::Kajabi, "off_456").unwrap();
        assert_eq!(plan.id, "nssa_annual");
        assert_eq!(plan.partner.as_deref(), Some("NSSA"));
        assert_eq!(plan.period_days, Some(365));
        assert!(catalog
            .for_product(Provider::Kajabi, "off_unknown")
            .is_none());
        assert!(catalog.for_product(Provider::Stripe, "off_456").is_none());
        assert!(catalog.get("forever").unwrap().lifetime);
    }

    #[test]
    fn rejects_dangling_and_periodless_plans() {
        let dangling = r#"{"plans": {}, "products": {"kajabi": {"x": "nope"}}}"#;
        assert!(matches!(
            PlanCatalog::from_json(dangling),
            Err(PlanError::UnknownPlan { .. })
        ));
        let periodless = r#"{"plans": {"p": {"name": "P"}}}"#;
        assert_eq!(
            PlanCatalog::from_json(periodless).err(),
            Some(PlanError::NoPeriod("p".into()))
        );
        let provider = r#"{"plans": {}, "products": {"paypal": {}}}"#;
        assert!(matches!(
            PlanCatalog::from_json(provider),
            Err(PlanError::UnknownProvider(_))
        ));
    }

    #[test]
    fn one_time_plans_take_duration_days() {
        let raw = r#"{"plans": {"pass": {"name": "90-day pass", "duration_days": 90}}}"#;
        let catalog = PlanCatalog::from_json(raw).unwrap();
        assert_eq!(catalog.get("pass").unwrap().period_days, Some(90));
    }

    #[test]
    fn roles_must_be_defined() {
        let catalog = PlanCatalog::from_json(SAMPLE).unwrap();
        assert_eq!(
            catalog.permissions("premium-member"),
            ["read:premium-content"]
        );
        assert!(catalog.permissions("nobody").is_empty());
        let undefined = r#"{"plans": {"p": {"name": "P", "lifetime": true, "roles": ["ghost"]}}, "roles": {"free-user": []}}"#;
        assert!(matches!(
            PlanCatalog::from_json(undefined),
            Err(PlanError::UnknownRole { .. })
        ));
        let no_base = r#"{"plans": {}, "roles": {"admin": []}}"#;
        assert_eq!(
            PlanCatalog::from_json(no_base).err(),
            Some(PlanError::NoBaseRole(BASE_ROLE))
        );
    }

    #[test]
    fn plans_for_sale_are_chosen_by_id_and_provider() {
        let catalog = PlanCatalog::from_json(include_str!("../../../infra/plans.json")).unwrap();
        let ids: Vec<&str> = catalog.for_sale().map(|(p, _)| p.id.as_str()).collect();
        assert!(ids.contains(&"premium_monthly"));
        assert!(
            !ids.contains(&"nssa_annual"),
            "a plan with no sale is not listed"
        );
        let (plan, sale, provider) = catalog.choose("premium_monthly", "paystack").unwrap();
        assert_eq!(plan.id, "premium_monthly");
        assert!(sale.recurring);
        assert_eq!(provider, CheckoutProvider::Paystack);
        assert_eq!(
            catalog.choose("nssa_annual", "stripe").err(),
            Some(ChoiceError::UnknownPlan("nssa_annual".into()))
        );
        assert_eq!(
            catalog.choose("premium_monthly", "paypal").err(),
            Some(ChoiceError::UnknownProvider("paypal".into()))
        );
        assert!(matches!(
            catalog.choose("premium_lifetime", "paystack"),
            Err(ChoiceError::NoPrice { .. })
        ));
    }

    #[test]
    fn a_sale_must_map_back_to_its_plan() {
        let with = |sale: &str| {
            format!(
                r#"{{"plans": {{"m": {{"name": "M", "period_days": 30, "sale": {sale}}},
                    "l": {{"name": "L", "lifetime": true}}}},
                    "products": {{"stripe": {{"price_m": "m", "price_l": "l"}}, "paystack": {{"PLN_m": "m"}}}}}}"#
            )
        };
        let ok = with(
            r#"{"recurring": true, "stripe": {"price": "price_m"}, "paystack": {"plan_code": "PLN_m", "amount": 500000, "currency": "NGN"}}"#,
        );
        let catalog = PlanCatalog::from_json(&ok).unwrap();
        let sale = catalog.get("m").unwrap().sale.clone().unwrap();
        assert_eq!(sale.paystack.unwrap().price.currency, "ngn");
        for (bad, why) in [
            (
                r#"{"recurring": true, "stripe": {"price": "price_l"}}"#,
                "not mapped to it",
            ),
            (
                r#"{"recurring": true, "stripe": {"price": "price_nowhere"}}"#,
                "not mapped to it",
            ),
            (
                r#"{"recurring": true, "paystack": {"amount": 5, "currency": "NGN"}}"#,
                "no plan_code",
            ),
            (
                r#"{"recurring": false, "paystack": {"plan_code": "PLN_m", "amount": 5, "currency": "NGN"}}"#,
                "one-time",
            ),
            (
                r#"{"recurring": false, "paystack": {"amount": 0, "currency": "NGN"}}"#,
                "positive amount",
            ),
            (
                r#"{"recurring": false, "stripe": {"price": "price_m", "amount": 5}}"#,
                "needs a currency",
            ),
            (r#"{"recurring": false}"#, "no stripe or paystack price"),
            (
                r#"{"recurring": false, "stripe": {"price": "price_m", "colour": "red"}}"#,
                "unknown field",
            ),
        ] {
            let err = PlanCatalog::from_json(&with(bad)).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn shipped_plans_file_parses() {
        let raw = include_str!("../../../infra/plans.json");
        let catalog = PlanCatalog::from_json(raw).unwrap();
        assert!(catalog.get("nssa_annual").is_some());
    }
}
