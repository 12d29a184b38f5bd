//! Provider adapters: authenticate raw bytes, then parse into provider-neutral events.

pub mod api;
pub mod kajabi;
pub mod paystack;
pub mod stripe;
