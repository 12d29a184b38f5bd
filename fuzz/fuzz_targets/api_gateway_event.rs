//! Any bytes as an API Gateway HTTP API (payload 2.0) event: decoded into the
//! request every HTTP function reads, its JSON body read as the account
//! functions read theirs, and an answer turned back into API Gateway's shape.
#![no_main]

use gatehouse::http::{json_body, to_api_gateway_v2, ApiGatewayV2Request, ApiResponse};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Login {
    email: String,
    password: String,
}

fuzz_target!(|event: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<ApiGatewayV2Request>(event) {
        match event.into_api_request() {
            Ok(request) => {
                let _ = (
                    request.query_values("token"),
                    request.cookie("gatehouse_session"),
                    request.bearer_token(),
                    request.has_json_content_type(),
                    request.header("stripe-signature"),
                );
                let answer = match json_body::<Login>(&request, 16 * 1024) {
                    Ok(login) => ApiResponse::json(200, &serde_json::json!({"email": login.email})),
                    Err(rejection) => rejection,
                };
                let _ = to_api_gateway_v2(answer);
            }
            Err(rejection) => {
                let _ = to_api_gateway_v2(rejection);
            }
        }
    }
});
