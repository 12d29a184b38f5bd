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
