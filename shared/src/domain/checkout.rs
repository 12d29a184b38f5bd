//! Selling plans: what a plan costs with each provider, the reference a
//! checkout is bound by, and the rule that judges a verified return.

use std::fmt;

use serde::Deserialize;

use super::{Email, Provider, UserId};

/// A provider Gatehouse can start a checkout with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutProvider {
    Stripe,
    Paystack,
}

impl CheckoutProvider {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "stripe" => Some(Self::Stripe),
            "paystack" => Some(Self::Paystack),
            _ => None,
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            Self::Stripe => Provider::Stripe,
            Self::Paystack => Provider::Paystack,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.provider().as_str()
    }
}

/// An amount in a currency's minor units (kobo, cents; yen are whole).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Money {
    pub amount: i64,
    /// ISO 4217, stored lower case as Stripe writes it.
    #[serde(deserialize_with = "lower")]
    pub currency: String,
}

fn lower<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_ascii_lowercase())
}

/// Currencies whose minor unit is the unit itself (Stripe's zero-decimal list).
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Currencies with three decimals.
const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// Digits after the decimal point in `currency`'s major unit.
pub fn currency_exponent(currency: &str) -> u32 {
    let c = currency.to_ascii_lowercase();
    if ZERO_DECIMAL.contains(&c.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&c.as_str()) {
        3
    } else {
        2
    }
}

/// `amount` minor units as decimal money: 500000 NGN is "5000.00", 1500 JPY "1500".
pub fn decimal_amount(amount: i64, currency: &str) -> String {
    let exponent = currency_exponent(currency);
    if exponent == 0 {
        return amount.to_string();
    }
    let scale = 10i64.pow(exponent);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let scale = scale as u64;
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

impl Money {
    pub fn decimal(&self) -> String {
        decimal_amount(self.amount, &self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency.to_uppercase())
    }
}

/// A plan's Stripe price: the price id Checkout charges, and optionally the
/// amount to show (Stripe owns the real amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePrice {
    pub price: String,
    pub shown: Option<Money>,
}

/// A plan's Paystack price: the amount to initialize with, and for a
/// subscription the plan code (whose own amount Paystack then charges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaystackPrice {
    pub plan_code: Option<String>,
    pub price: Money,
}

/// How a plan is sold: a subscription that renews, or a one-time payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub recurring: bool,
    pub stripe: Option<StripePrice>,
    pub paystack: Option<PaystackPrice>,
}

/// What a buyer chose, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("unknown plan: {0}")]
    UnknownPlan(String),
    #[error("unknown provider: {0} (stripe or paystack)")]
    UnknownProvider(String),
    #[error("plan {plan} has no {provider} price")]
    NoPrice { plan: String, provider: String },
}

/// A checkout's reference: 128 random bits, in the characters Paystack
/// allows (`-`, `.`, `=` and alphanumerics) and Stripe keeps verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentReference(String);

const REFERENCE_PREFIX: &str = "gh-";

impl PaymentReference {
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{REFERENCE_PREFIX}{}", hex::encode(bytes)))
    }

    /// Only references Gatehouse could have made: anything else is not one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex_part = raw.strip_prefix(REFERENCE_PREFIX)?;
        (hex_part.len() == 32
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checkout's payment as Gatehouse wrote it when the buyer started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPayment {
    pub reference: PaymentReference,
    pub user_id: UserId,
    /// The address the checkout was started for.
    pub email: Email,
    /// Set where Gatehouse fixed the amount (Paystack); Stripe's price decides its own.
    pub price: Option<Money>,
    /// The Paystack plan a subscription was started on: its own amount is charged.
    pub plan_code: Option<String>,
    /// The Stripe Checkout Session the payment was started as.
    pub session_id: Option<String>,
}

/// What the provider's API said of the payment on the buyer's return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// The provider's word for its state (`success`, `abandoned`, `paid`, `unpaid`, ...).
    pub status: String,
    pub paid: bool,
    /// The provider is still settling it (Stripe's delayed methods): not a failure.
    pub processing: bool,
    /// The reference the provider holds the payment under.
    pub reference: Option<String>,
    pub session_id: Option<String>,
    pub email: Option<String>,
    /// What was asked of the buyer (Paystack's `requested_amount`), before any fees.
    pub price: Option<Money>,
    /// The Paystack plan the transaction was on.
    pub plan_code: Option<String>,
    /// The gateway's own words (Paystack's `gateway_response`), for a failure.
    pub gateway_answer: Option<String>,
}

/// What a verified return does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnVerdict {
    /// Paid as started: apply it (through the runner, with the webhook's key).
    Apply,
    /// The provider has not settled it yet; the webhook will apply it.
    Processing,
    /// Not paid: the payment is marked failed with the provider's answer.
    Unpaid(String),
    /// Grants nothing and changes nothing, for the reason given.
    Refused(Refusal),
}

/// Why a return grants nothing. Each has a fixed code the return page shows text for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No checkout Gatehouse started has this reference.
    UnknownReference,
    /// The provider knows no such payment, or holds it under another reference.
    NotAtProvider,
    /// The signed-in member is not the one the checkout was started for.
    OtherAccount,
    /// The provider's payment differs from the one started (amount, currency, email).
    Mismatch,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownReference => "unknown-reference",
            Self::NotAtProvider => "not-at-provider",
            Self::OtherAccount => "other-account",
            Self::Mismatch => "mismatch",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::UnknownReference,
            Self::NotAtProvider,
            Self::OtherAccount,
            Self::Mismatch,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// What the return page tells the buyer.
    pub fn explain(self) -> &'static str {
        match self {
            Self::UnknownReference => "We have no checkout with this reference, so nothing was granted. If you paid, your access arrives as soon as the payment provider confirms it.",
            Self::NotAtProvider => "The payment provider does not know this payment, so nothing was granted.",
            Self::OtherAccount => "This payment was started from another account, so nothing was granted to the account you are signed in to.",
            Self::Mismatch => "The payment does not match the checkout that was started (amount, currency or email), so nothing was granted. Contact support with your receipt.",
        }
    }
}

/// Judges a return: the checkout as started (`None` if the reference is not
/// one of ours), what the provider's API says of it, and who is signed in.
pub fn judge_return(
    bound: Option<&BoundPayment>,
    verified: Option<&VerifiedPayment>,
    signed_in: Option<&UserId>,
) -> ReturnVerdict {
    let Some(bound) = bound else {
        return ReturnVerdict::Refused(Refusal::UnknownReference);
    };
    if signed_in.is_some_and(|user| *user != bound.user_id) {
        return ReturnVerdict::Refused(Refusal::OtherAccount);
    }
    let Some(verified) = verified else {
        return ReturnVerdict::Refused(Refusal::NotAtProvider);
    };
    if verified.reference.as_deref() != Some(bound.reference.as_str()) {
        return ReturnVerdict::Refused(Refusal::NotAtProvider);
    }
    if let (Some(ours), Some(theirs)) = (&bound.session_id, &verified.session_id) {
        if ours != theirs {
            return ReturnVerdict::Refused(Refusal::NotAtProvider);
        }
    }
    if !verified.paid {
        return if verified.processing {
            ReturnVerdict::Processing
        } else {
            ReturnVerdict::Unpaid(match &verified.gateway_answer {
                Some(answer) => format!("not paid: {} ({answer})", verified.status),
                None => format!("not paid: {}", verified.status),
            })
        };
    }
    let email_differs = verified
        .email
        .as_deref()
        .map(Email::parse)
        .is_some_and(|email| email.ok().as_ref() != Some(&bound.email));
    // A subscription is charged its plan's own amount: the plan must match.
    // A one-time payment must be what was asked, in the currency asked.
    let price_differs = match (&bound.plan_code, &bound.price, &verified.price) {
        (Some(code), Some(ours), theirs) => {
            verified.plan_code.as_deref() != Some(code.as_str())
                || theirs.as_ref().is_some_and(|t| t.currency != ours.currency)
        }
        (None, Some(ours), Some(theirs)) => ours != theirs,
        (None, Some(_), None) => true,
        _ => false,
    };
    if email_differs || price_differs {
        return ReturnVerdict::Refused(Refusal::Mismatch);
    }
    ReturnVerdict::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> BoundPayment {
        BoundPayment {
            reference: PaymentReference::parse("gh-0123456789abcdef0123456789abcdef").unwrap(),
            user_id: UserId::from_stored("u1"),
            email: Email::parse("ann@example.com").unwrap(),
            price: Some(Money {
                amount: 500_000,
                currency: "ngn".into(),
            }),
            plan_code: None,
            session_id: None,
        }
    }

    fn paid() -> VerifiedPayment {
        VerifiedPayment {
            status: "success".into(),
            paid: true,
            processing: false,
            reference: Some("gh-0123456789abcdef0123456789abcdef".into()),
            session_id: None,
            email: Some("Ann@Example.com".into()),
            price: Some(Money {
                amount: 500_000,
                currency: "ngn".into(),
            }),
            plan_code: None,
            gateway_answer: None,
        }
    }

    #[test]
    fn a_paid_return_as_started_applies() {
        let user = UserId::from_stored("u1");
        assert_eq!(
            judge_return(Some(&bound()), Some(&paid()), Some(&user)),
            ReturnVerdict::Apply
        );
        assert_eq!(
            judge_return(Some(&bound()), Some(&paid()), None),
            ReturnVerdict::Apply,
            "the provider's redirect may arrive without the session cookie"
        );
    }

    #[test]
    fn unknown_forged_and_foreign_returns_grant_nothing() {
        assert_eq!(
            judge_return(None, Some(&paid()), None),
            ReturnVerdict::Refused(Refusal::UnknownReference)
        );
        assert_eq!(
            judge_return(Some(&bound()), None, None),
            ReturnVerdict::Refused(Refusal::NotAtProvider)
        );
        let other = UserId::from_stored("u2");
        assert_eq!(
            judge_return(Some(&bound()), Some(&paid()), Some(&other)),
            ReturnVerdict::Refused(Refusal::OtherAccount)
        );
        let elsewhere = VerifiedPayment {
            reference: Some("gh-ffffffffffffffffffffffffffffffff".into()),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&bound()), Some(&elsewhere), None),
            ReturnVerdict::Refused(Refusal::NotAtProvider)
        );
        let cheaper = VerifiedPayment {
            price: Some(Money {
                amount: 100,
                currency: "ngn".into(),
            }),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&bound()), Some(&cheaper), None),
            ReturnVerdict::Refused(Refusal::Mismatch)
        );
        let someone_else = VerifiedPayment {
            email: Some("bob@example.com".into()),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&bound()), Some(&someone_else), None),
            ReturnVerdict::Refused(Refusal::Mismatch)
        );
    }

    #[test]
    fn a_session_other_than_the_one_started_is_refused() {
        let stripe = BoundPayment {
            session_id: Some("cs_a".into()),
            price: None,
            ..bound()
        };
        let verified = VerifiedPayment {
            session_id: Some("cs_b".into()),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&stripe), Some(&verified), None),
            ReturnVerdict::Refused(Refusal::NotAtProvider)
        );
        let same = VerifiedPayment {
            session_id: Some("cs_a".into()),
            price: Some(Money {
                amount: 1,
                currency: "usd".into(),
            }),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&stripe), Some(&same), None),
            ReturnVerdict::Apply,
            "Stripe's price decides the amount (tax, coupons)"
        );
    }

    #[test]
    fn a_subscription_is_judged_by_its_plan_not_the_amount_asked() {
        let on_plan = BoundPayment {
            plan_code: Some("PLN_m".into()),
            ..bound()
        };
        let charged_the_plans_amount = VerifiedPayment {
            plan_code: Some("PLN_m".into()),
            price: Some(Money {
                amount: 450_000,
                currency: "ngn".into(),
            }),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&on_plan), Some(&charged_the_plans_amount), None),
            ReturnVerdict::Apply
        );
        let other_plan = VerifiedPayment {
            plan_code: Some("PLN_other".into()),
            ..charged_the_plans_amount.clone()
        };
        assert_eq!(
            judge_return(Some(&on_plan), Some(&other_plan), None),
            ReturnVerdict::Refused(Refusal::Mismatch)
        );
        let other_currency = VerifiedPayment {
            price: Some(Money {
                amount: 500_000,
                currency: "usd".into(),
            }),
            ..charged_the_plans_amount
        };
        assert_eq!(
            judge_return(Some(&on_plan), Some(&other_currency), None),
            ReturnVerdict::Refused(Refusal::Mismatch)
        );
    }

    #[test]
    fn unpaid_fails_with_the_gateways_words_and_processing_waits() {
        let abandoned = VerifiedPayment {
            status: "abandoned".into(),
            paid: false,
            gateway_answer: Some("The transaction was not completed".into()),
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&bound()), Some(&abandoned), None),
            ReturnVerdict::Unpaid("not paid: abandoned (The transaction was not completed)".into())
        );
        let settling = VerifiedPayment {
            status: "unpaid".into(),
            paid: false,
            processing: true,
            ..paid()
        };
        assert_eq!(
            judge_return(Some(&bound()), Some(&settling), None),
            ReturnVerdict::Processing
        );
    }

    #[test]
    fn references_are_random_and_parse_only_our_shape() {
        let a = PaymentReference::generate();
        let b = PaymentReference::generate();
        assert_ne!(a, b);
        assert_eq!(PaymentReference::parse(a.as_str()), Some(a.clone()));
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-'));
        for bad in [
            "",
            "gh-",
            "gh-0123",
            "M7_a1b2c3d4e5f6g7h8",
            "gh-0123456789ABCDEF0123456789ABCDEF",
        ] {
            assert_eq!(PaymentReference::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn money_shows_its_currency_exponent() {
        assert_eq!(decimal_amount(500_000, "NGN"), "5000.00");
        assert_eq!(decimal_amount(1999, "usd"), "19.99");
        assert_eq!(decimal_amount(5, "usd"), "0.05");
        assert_eq!(decimal_amount(1500, "JPY"), "1500");
        assert_eq!(decimal_amount(1234, "kwd"), "1.234");
        assert_eq!(decimal_amount(-250, "eur"), "-2.50");
        let m = Money {
            amount: 1500,
            currency: "usd".into(),
        };
        assert_eq!(m.to_string(), "15.00 USD");
    }

    #[test]
    fn providers_parse() {
        assert_eq!(
            CheckoutProvider::parse("Stripe"),
            Some(CheckoutProvider::Stripe)
        );
        assert_eq!(
            CheckoutProvider::parse("paystack"),
            Some(CheckoutProvider::Paystack)
        );
        assert_eq!(CheckoutProvider::parse("kajabi"), None);
    }
}
