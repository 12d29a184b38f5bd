//! `POST /account/subscriptions/{id}/cancel` and `/resume`: the signed-in
//! member turns a subscription's renewal off (access runs to the end of the
//! paid period) or back on. `id` is the one `/account/me` gives each
//! subscription. Stripe: `cancel_at_period_end`; Paystack: disable or enable
//! with the subscription's email token; Kajabi has no such API (409 saying
//! where to cancel). The answer is 202: the stored state changes when the
//! provider's webhook arrives, so both paths agree.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::member_http::{refused, signed_in};
use gatehouse::service::self_service::Renewal;
use gatehouse::service::Services;
use serde_json::json;

pub struct AccountRenewal {
    services: Services,
}

/// The change a path asks for.
pub fn renewal_of(path: &str) -> Option<Renewal> {
    if path.ends_with("/cancel") {
        Some(Renewal::Cancel)
    } else if path.ends_with("/resume") {
        Some(Renewal::Resume)
    } else {
        None
    }
}

impl AccountRenewal {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let member = match signed_in(&self.services, &request) {
            Ok(member) => member,
            Err(answer) => return answer,
        };
        let (Some(change), Some(id)) = (renewal_of(&request.path), request.path_params.get("id"))
        else {
            return reject::not_found(&request.path);
        };
        match self
            .services
            .change_renewal(&member.user_id, id, change)
            .await
        {
            Ok(answer) => ApiResponse::json(
                202,
                &json!({
                    "status": answer.status,
                    "access_until": answer.access_until.map(|t| t.to_rfc3339()),
                    "message": answer.message,
                }),
            )
            .with_header("cache-control", "no-store"),
            Err(e) => refused(&request, e),
        }
    }
}

impl HttpFunction for AccountRenewal {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountRenewal::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_the_change() {
        assert_eq!(
            renewal_of("/account/subscriptions/stripe:sub_1/cancel"),
            Some(Renewal::Cancel)
        );
        assert_eq!(
            renewal_of("/account/subscriptions/stripe:sub_1/resume"),
            Some(Renewal::Resume)
        );
        assert_eq!(renewal_of("/account/subscriptions/stripe:sub_1"), None);
    }
}
