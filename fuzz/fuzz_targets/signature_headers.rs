//! Any header and body through every signature check: Stripe's
//! `Stripe-Signature`, Kajabi's HMAC header and `?token=` values, Paystack's
//! `x-paystack-signature`. The first line is the header, the second the raw
//! query string (its `token` values are what Kajabi's check gets), the rest
//! the body.
#![no_main]

use gatehouse::config::Secret;
use gatehouse::http::parse_query;
use gatehouse::providers::{kajabi, paystack, stripe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let header = parts.next().map(String::from_utf8_lossy);
    let tokens: Vec<String> = parts
        .next()
        .map(|query| {
            parse_query(&String::from_utf8_lossy(query))
                .into_iter()
                .filter(|(name, _)| name == kajabi::TOKEN_QUERY_PARAM)
                .map(|(_, value)| value)
                .collect()
        })
        .unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let secrets = [Secret::new("whsec_test"), Secret::new("whsec_old")];
    let url_tokens = [Secret::new("test-url-token-old"), Secret::new("test-url-token-new")];
    let header = header.as_deref();
    let _ = stripe::verify(header, body, &secrets, 300, 1_700_000_000);
    let _ = kajabi::authenticate(header, &tokens, body, Some(&secrets[0]), &url_tokens);
    let _ = kajabi::authenticate(None, &tokens, body, None, &url_tokens);
    let _ = paystack::authenticate(header, body, Some(&secrets[0]));
});
