//! Property tests: no input panics the code that reads what the outside
//! world sends. Every provider parser, every signature check and the API
//! Gateway glue take arbitrary JSON, headers and bodies, and the parsers
//! also get payloads shaped like each provider's envelope with arbitrary
//! contents, so their deeper paths are reached. Run by `make test`; the
//! inputs are generated, with a fixed number of cases per property.

use gatehouse::config::Secret;
use gatehouse::http::ApiGatewayV2Request;
use gatehouse::providers::{kajabi, paystack, stripe};
use gatehouse::service::source::{self, WebhookSource};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        // Strings that look like the values parsers read: times, ids, emails.
        prop_oneof![
            Just("2026-01-20T00:00:00Z".to_string()),
            Just("1700000000".to_string()),
            Just("a@example.com".to_string()),
            Just("sub_1".to_string()),
            Just("price_premium_monthly".to_string()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Field names the parsers look for, and any others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "type",
            "event",
            "event_type",
            "event_id",
            "data",
            "object",
            "created",
            "created_at",
            "member",
            "email",
            "offer",
            "payload",
            "customer",
            "subscription",
            "items",
            "lines",
            "price",
            "product",
            "plan",
            "plan_code",
            "status",
            "amount",
            "reference",
            "paid_at",
            "next_payment_date",
            "metadata",
            "parent",
            "subscription_details",
            "current_period_end",
            "period",
            "end",
            "cancel_at_period_end",
            "customer_details",
            "mode",
            "payment_status",
            "attributes",
            "relationships",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
    ]
}

/// An envelope of one of the event types the providers send, around anything.
fn provider_shaped() -> impl Strategy<Value = Value> {
    let types = prop::sample::select(vec![
        "offer.purchased",
        "purchase",
        "purchase.created",
        "member.subscription.canceled",
        "member.subscription.renewed",
        "member.subscription.expired",
        "form.submitted",
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.refunded",
        "payment_intent.succeeded",
        "charge.success",
        "subscription.create",
        "subscription.not_renew",
        "subscription.disable",
        "invoice.update",
        "refund.processed",
    ]);
    (types, any_json(), any_json()).prop_map(|(kind, object, extra)| {
        json!({"type": kind, "event": kind, "id": "evt_1", "created": 1_700_000_000,
            "data": {"object": object.clone(), "id": 1, "customer": extra.clone(), "plan": extra},
            "member": object.clone(), "payload": [object]})
    })
}

fn parse_all(json: &Value) {
    for (id, kind) in [
        source::Kajabi::identify(&source::Kajabi::parse(json)),
        source::Stripe::identify(&source::Stripe::parse(json)),
        source::Paystack::identify(&source::Paystack::parse(json)),
    ] {
        // What goes into a key and a record is text; no parser invents control of it.
        let _ = (id.map(|i| i.len()), kind.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn provider_parsers_take_any_json(json in any_json()) {
        parse_all(&json);
    }

    #[test]
    fn provider_parsers_take_any_contents_in_their_own_envelopes(json in provider_shaped()) {
        parse_all(&json);
    }

    #[test]
    fn signature_checks_take_any_header_and_body(
        header in prop::option::of(".{0,300}"),
        entries in prop::collection::vec("(t|v1|v0|x)=[0-9a-f]{0,70}", 0..40),
        body in prop::collection::vec(any::<u8>(), 0..512),
        tokens in prop::collection::vec(".{0,40}", 0..20),
    ) {
        let secrets = [Secret::new("whsec_test"), Secret::new("whsec_old")];
        let joined = entries.join(",");
        for candidate in [header.as_deref(), Some(joined.as_str())] {
            let _ = stripe::verify(candidate, &body, &secrets, 300, 1_700_000_000);
            let _ = kajabi::authenticate(candidate, &tokens, &body, Some(&secrets[0]), &secrets);
            let _ = kajabi::authenticate(None, &tokens, &body, None, &secrets);
            let _ = paystack::authenticate(candidate, &body, Some(&secrets[0]));
        }
    }

    #[test]
    fn the_api_gateway_glue_takes_any_event(json in any_json(), body in ".{0,200}", base64 in any::<bool>()) {
        // Any JSON either is not an event (an error), or converts.
        if let Ok(event) = serde_json::from_value::<ApiGatewayV2Request>(json) {
            if let Ok(request) = event.into_api_request() {
                let _ = (request.query_values("token"), request.cookie("x"), request.bearer_token());
            }
        }
        let event = json!({"rawPath": "/webhooks/kajabi", "rawQueryString": body,
            "headers": {"cookie": body, "authorization": body, "content-type": body},
            "body": body, "isBase64Encoded": base64,
            "requestContext": {"requestId": "r", "http": {"method": "POST", "path": "/"}}});
        if let Ok(event) = serde_json::from_value::<ApiGatewayV2Request>(event) {
            if let Ok(request) = event.into_api_request() {
                let _ = (request.query_values("token"), request.cookie("gatehouse_session"),
                    request.bearer_token(), request.has_json_content_type());
            }
        }
    }
}
