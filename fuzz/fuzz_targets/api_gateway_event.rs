//! Any bytes as an API Gateway HTTP API (payload 2.0) event: decoded and
//! turned into the request every HTTP function reads.
#![no_main]

use gatehouse::http::ApiGatewayV2Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|event: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<ApiGatewayV2Request>(event) {
        if let Ok(request) = event.into_api_request() {
            let _ = (
                request.query_values("token"),
                request.cookie("gatehouse_session"),
                request.bearer_token(),
                request.has_json_content_type(),
                request.header("stripe-signature"),
            );
        }
    }
});
