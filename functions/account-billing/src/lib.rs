//! The signed-in member's billing: `GET /account/payments` lists their
//! payments (newest first, 50), and where they fix their card. `POST /account/billing`
//! (`{subscription?}`) answers `{url}`: a Stripe Billing Portal session for
//! their Stripe customer, or Paystack's manage link for their Paystack
//! subscription. `GET /account/billing` redirects (303) to the same place,
//! for the link in a payment-failed email: the portal's URL is short-lived,
//! so the email carries this stable one.

use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::member_http::{refused, signed_in};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
struct Body {
    #[serde(default)]
    subscription: Option<String>,
}

pub struct AccountBilling {
    services: Services,
}

impl AccountBilling {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let member = match signed_in(&self.services, &request) {
            Ok(member) => member,
            Err(answer) => return answer,
        };
        // The member's own payments, for the account page.
        if request
            .path
            .trim_end_matches('/')
            .ends_with("/account/payments")
        {
            return match self.services.member_payments(&member.user_id, 50).await {
                Ok(items) => ApiResponse::json(200, &json!({ "items": items }))
                    .with_header("cache-control", "no-store"),
                Err(e) => gatehouse::http::reject::unavailable_after(
                    &request,
                    "listing the member's payments failed",
                    &e,
                    "could not list payments right now; try again",
                ),
            };
        }
        let body: Body = if request.method == "POST" && !request.body.is_empty() {
            if request.body.len() > 4096 {
                return gatehouse::http::reject::too_large(request.body.len());
            }
            match serde_json::from_slice(&request.body) {
                Ok(body) => body,
                Err(e) => return gatehouse::http::reject::invalid_json(&e),
            }
        } else {
            Body {
                subscription: request.query("subscription"),
            }
        };
        match self
            .services
            .billing_link(&member.user_id, body.subscription.as_deref())
            .await
        {
            Ok(url) if request.method == "GET" => ApiResponse::see_other(url),
            Ok(url) => ApiResponse::json(200, &json!({ "url": url }))
                .with_header("cache-control", "no-store"),
            Err(e) => refused(&request, e),
        }
    }
}

impl HttpFunction for AccountBilling {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountBilling::handle(self, request))
    }
}
