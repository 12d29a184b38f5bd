//! `POST /admin/users/{id}/roles` `{"grant": role, "reason": …}` or
//! `{"revoke": role, "reason": …}` (with `Idempotency-Key`). A grant survives
//! webhook processing until revoked; a revoke of a plan role holds until the
//! next provider event that changes that plan. Audited with the principal.

use gatehouse::domain::BASE_ROLE;
use gatehouse::http::{json_body, reject, ApiRequest, ApiResponse, MAX_FORM_BYTES};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::{required_reason, user_change, RoleChange};
use gatehouse::service::Services;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    grant: Option<String>,
    revoke: Option<String>,
    reason: Option<String>,
}

fn bad(detail: impl Into<String>) -> ApiResponse {
    ApiResponse::problem(400, "invalid-role-change", "Invalid role change", detail)
}

pub struct AdminRoles {
    services: Services,
}

impl AdminRoles {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut audit = match user_change(
            &self.services.settings.admin_principals,
            &request,
            "roles",
            json!({}),
        ) {
            Ok(audit) => audit,
            Err(refused) => return refused,
        };
        let body: RolesRequest = match json_body(&request, MAX_FORM_BYTES) {
            Ok(b) => b,
            Err(rejection) => return rejection,
        };
        let (change, verb) = match (body.grant, body.revoke) {
            (Some(role), None) => (RoleChange::Grant(role.trim().to_string()), "grant"),
            (None, Some(role)) => (RoleChange::Revoke(role.trim().to_string()), "revoke"),
            _ => return bad("give exactly one of `grant` or `revoke`"),
        };
        if !self.services.settings.plans.has_role(change.role()) {
            return bad(format!(
                "`{}` is not a role in the plans file",
                change.role()
            ));
        }
        if matches!(&change, RoleChange::Revoke(r) if r == BASE_ROLE) {
            return bad(format!(
                "`{BASE_ROLE}` is every member's base role and cannot be revoked"
            ));
        }
        let reason = match required_reason(body.reason) {
            Ok(reason) => reason,
            Err(detail) => return bad(detail),
        };
        audit.request = json!({"change": verb, "role": change.role(), "reason": reason});
        match self
            .services
            .admin_change_roles(&audit, &change, &reason)
            .await
        {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "role change failed",
                &e,
                "could not change roles right now; retry with the same Idempotency-Key",
            ),
        }
    }
}

impl HttpFunction for AdminRoles {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminRoles::handle(self, request))
    }
}
