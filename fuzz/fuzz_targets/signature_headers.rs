//! Any header and body through every signature check: Stripe's
//! `Stripe-Signature`, Kajabi's HMAC header and `?token=` values, Paystack's
//! `x-paystack-signature`. The first line is the header, the second the
//! `&`-separated tokens, the rest the body.
#![no_main]

use gatehouse::config::Secret;
use gatehouse::providers::{kajabi, paystack, stripe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let header = parts.next().map(String::from_utf8_lossy);
    let tokens: Vec<String> = parts
        .next()
        .map(|t| {
            String::from_utf8_lossy(t)
                .split('&')
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let secrets = [Secret::new("whsec_test"), Secret::new("whsec_old")];
    let header = header.as_deref();
    let _ = stripe::verify(header, body, &secrets, 300, 1_700_000_000);
    let _ = kajabi::authenticate(header, &tokens, body, Some(&secrets[0]), &secrets);
    let _ = kajabi::authenticate(None, &tokens, body, None, &secrets);
    let _ = paystack::authenticate(header, body, Some(&secrets[0]));
});
