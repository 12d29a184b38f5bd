//! Gatehouse: membership provisioning from payment and course platform webhooks.
//!
//! `domain` is pure (no I/O). `providers` turn raw authenticated bytes into
//! provider-neutral events. `store`, `outbox` and `service` do the I/O against
//! DynamoDB, SQS and SES. `http` and `lambda` are the thin glue to API Gateway.

pub mod admin;
pub mod aws;
pub mod config;
pub mod domain;
pub mod email;
pub mod http;
pub mod lambda;
pub mod member_http;
pub mod metrics;
pub mod outbox;
pub mod providers;
pub mod secrets;
pub mod service;
pub mod session;
pub mod setup_token;
pub mod signature;
pub mod store;
pub mod telemetry;

pub use config::Settings;
