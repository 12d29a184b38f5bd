//! The embedded local stack. Neither Docker nor `sam local` runs here, so this
//! crate stands in for API Gateway, the SQS event source and the scheduler, in
//! one process, against moto server. AWS resources are created from the SAM
//! template's own definitions so local and cloud cannot drift.

pub mod bootstrap;
pub mod demo;
pub mod env;
pub mod events;
pub mod fake_payments;
pub mod glue;
pub mod iam;
pub mod inspect;
pub mod moto;
pub mod secrets;
pub mod server;
pub mod sigv4;
pub mod stack;
pub mod template;

pub use stack::{LocalStack, StackConfig};
