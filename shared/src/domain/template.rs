//! Which email a job sends: the names stored on jobs. Rendering lives in `email`.

/// Which email a job sends. Stored by name on the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Welcome,
    AdminNewSignup,
    AdminExistingLinked,
    CancelNotice,
    ExpiryNotice,
    PaymentSuccessful,
    PaymentFailed,
    RefundNotice,
    /// The admin's daily list of course completions waiting for review.
    CompletionsDigest,
}

impl Template {
    /// The email that carries a lifecycle notice.
    pub fn for_notice(notice: super::Notice) -> Self {
        match notice {
            super::Notice::Cancel => Template::CancelNotice,
            super::Notice::Expiry => Template::ExpiryNotice,
            super::Notice::PaymentFailed => Template::PaymentFailed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Template::Welcome => "welcome",
            Template::AdminNewSignup => "admin_new_signup",
            Template::AdminExistingLinked => "admin_existing_linked",
            Template::CancelNotice => "cancel_notice",
            Template::ExpiryNotice => "expiry_notice",
            Template::PaymentSuccessful => "payment_successful",
            Template::PaymentFailed => "payment_failed",
            Template::RefundNotice => "refund_notice",
            Template::CompletionsDigest => "completions_digest",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "welcome" => Template::Welcome,
            "admin_new_signup" => Template::AdminNewSignup,
            "admin_existing_linked" => Template::AdminExistingLinked,
            "cancel_notice" => Template::CancelNotice,
            "expiry_notice" => Template::ExpiryNotice,
            "payment_successful" => Template::PaymentSuccessful,
            "payment_failed" => Template::PaymentFailed,
            "refund_notice" => Template::RefundNotice,
            "completions_digest" => Template::CompletionsDigest,
            _ => return None,
        })
    }
}

/// What an in-app notice says: its kind, title and text, from the job it
/// goes with. `None` for emails that are no notice to the member (the
/// setup link, the admin's).
pub fn notice_text(
    template: Template,
    data: &std::collections::BTreeMap<String, String>,
) -> Option<(&'static str, String, String)> {
    let plan = data
        .get("plan_name")
        .map(String::as_str)
        .unwrap_or("your membership");
    let until = data.get("access_until").map(String::as_str);
    Some(match template {
        Template::PaymentSuccessful => (
            "payment_successful",
            "Payment successful".to_string(),
            match (data.get("starts_at"), until) {
                (Some(start), Some(until)) => format!(
                    "Your payment for {plan} was successful. It starts on {start}, when your current one ends, and runs until {until}."
                ),
                (None, Some(until)) => format!(
                    "Your payment for {plan} was successful. Your membership is active until {until}."
                ),
                _ => format!("Your payment for {plan} was successful. Your membership is now active!"),
            },
        ),
        Template::CancelNotice => (
            "canceled",
            format!("{plan} canceled"),
            format!(
                "Your {plan} subscription was canceled. You keep access until {}.",
                until.unwrap_or("the end of the paid period")
            ),
        ),
        Template::PaymentFailed => (
            "payment_failed",
            "Payment failed".to_string(),
            format!(
                "We could not take the payment for {plan}. Update your card; your access continues until {}.",
                until.unwrap_or("a few days from now")
            ),
        ),
        Template::ExpiryNotice => (
            "expired",
            format!("{plan} ended"),
            format!("Your access to {plan} has ended."),
        ),
        Template::RefundNotice => (
            "refunded",
            "Payment refunded".to_string(),
            format!("Your payment for {plan} was refunded, and the access it gave has ended."),
        ),
        Template::Welcome
        | Template::AdminNewSignup
        | Template::AdminExistingLinked
        | Template::CompletionsDigest => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn member_emails_are_notices_and_the_others_are_not() {
        let data = BTreeMap::from([
            ("plan_name".to_string(), "Premium".to_string()),
            ("access_until".to_string(), "January 7, 2027".to_string()),
        ]);
        let (kind, title, text) = notice_text(Template::PaymentSuccessful, &data).unwrap();
        assert_eq!(kind, "payment_successful");
        assert_eq!(title, "Payment successful");
        assert_eq!(
            text,
            "Your payment for Premium was successful. Your membership is active until January 7, 2027."
        );
        for (template, kind) in [
            (Template::CancelNotice, "canceled"),
            (Template::PaymentFailed, "payment_failed"),
            (Template::ExpiryNotice, "expired"),
            (Template::RefundNotice, "refunded"),
        ] {
            assert_eq!(notice_text(template, &data).unwrap().0, kind);
        }
        for quiet in [
            Template::Welcome,
            Template::AdminNewSignup,
            Template::AdminExistingLinked,
            Template::CompletionsDigest,
        ] {
            assert!(notice_text(quiet, &data).is_none());
        }
    }
}
