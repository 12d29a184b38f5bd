//! Lambda runtime glue. `main.rs` of each function calls one of these; the
//! handlers themselves never see Lambda types.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::http::{to_api_gateway_v2, ApiGatewayV2Request, ApiRequest, ApiResponse};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type Error = lambda_runtime::Error;

/// An HTTP function: the local stack, the tests and Lambda all call it this way.
pub trait HttpFunction: Send + Sync {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse>;
}

/// One API Gateway v2 event in, one API Gateway v2 response out. The envelope
/// is parsed here, so a malformed event or base64 body is a 400, never a panic.
pub async fn handle_api_gateway_event<F: HttpFunction + ?Sized>(
    function: &F,
    payload: Value,
) -> Value {
    let response = match serde_json::from_value::<ApiGatewayV2Request>(payload) {
        Ok(raw) => match raw.into_api_request() {
            Ok(request) => function.handle(request).await,
            Err(rejection) => rejection,
        },
        Err(e) => ApiResponse::problem(
            400,
            "invalid-event",
            "Invalid API Gateway event",
            format!("event is not an API Gateway v2 request: {e}"),
        ),
    };
    to_api_gateway_v2(response)
}

/// Serves an HTTP function behind API Gateway (HTTP API, payload v2).
pub async fn run_http<F: HttpFunction + 'static>(function: F) -> Result<(), Error> {
    let function = Arc::new(function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            Ok::<Value, Error>(handle_api_gateway_event(function.as_ref(), event.payload).await)
        }
    }))
    .await
}

/// Serves a function fed by a non-HTTP source (SQS, a schedule).
pub async fn run_events<E, R, F, Fut>(handler: F) -> Result<(), Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send,
{
    let handler = Arc::new(handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| {
        let handler = Arc::clone(&handler);
        async move { handler(event.payload).await }
    }))
    .await
}
