//! Pure domain values and rules. Nothing here performs I/O or reads the clock:
//! time is always passed in.

mod checkout;
mod course;
mod email;
mod entitlements;
mod hooks;
mod ids;
mod password;
mod plan;
pub mod rank;
mod secret;
mod subscription;
mod tags;
mod template;
mod text;

pub use checkout::{
    currency_exponent, decimal_amount, judge_return, BoundPayment, CheckoutProvider, ChoiceError,
    Money, PaymentReference, PaystackPrice, Refusal, ReturnVerdict, Sale, StripePrice,
    VerifiedPayment,
};
pub use course::{Course, CourseCatalog, CourseError, DEFAULT_COURSE_POINTS};
pub use email::{redact_emails, Email, EmailError};
pub use entitlements::{entitlements, Entitlements, Holding, Revocation};
pub use hooks::{plan_hooks, points_at, HookPlan, HookRef, KAJABI_HOOK_EVENTS};
pub use ids::{EventKey, JobId, Provider, UserId};
pub use password::{Password, PasswordError};
pub use plan::{normalize_tag, Plan, PlanCatalog, PlanError, BASE_ROLE};
pub use secret::Secret;
pub use subscription::{
    concerns_replaced_subscription, disable_keeps_paid_period, has_access, leaves_unchanged,
    lifetime_keeps_access, notice_for, pass_starts_at, queued_pass, refunded_queued_view,
    refunded_view, reopens_ended, reported_view, stale_payment_extends, Notice, SubscriptionState,
    SubscriptionView, Transition, Unchanged, Watermark, ENDED_STAYS_ENDED, LIFETIME_KEEPS_ACCESS,
};
pub use tags::{tag_step, TagStamp, TagStep};
pub use template::{notice_text, Template};
pub use text::bounded;
