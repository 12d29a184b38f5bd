//! The signed-in member's in-app notices (payment successful, canceled,
//! payment failed, expired, refunded), one per member email, written with it:
//! - `GET /account/notifications[?after=<id>&limit=N]`: newest first,
//!   `{items: [{id, kind, title, text, created_at, read}], next}`;
//! - `POST /account/notifications/{id}/read`: marks one read (204; 404 if
//!   the member has no such notice).

use gatehouse::domain::notice_text;
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::member_http::signed_in;
use gatehouse::service::Services;
use gatehouse::store::NoticeRecord;
use serde_json::{json, Value};

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;

/// One notice as the member sees it.
pub fn notice_json(notice: &NoticeRecord) -> Option<Value> {
    let (kind, title, text) = notice_text(notice.template, &notice.data)?;
    Some(json!({
        "id": notice.id,
        "kind": kind,
        "title": title,
        "text": text,
        "created_at": notice.created_at.map(|t| t.to_rfc3339()),
        "read": notice.read_at.is_some(),
    }))
}

/// A notice id as Gatehouse makes them (a job id); anything else names none.
fn valid_id(raw: &str) -> bool {
    raw.starts_with("job_")
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub struct AccountNotifications {
    services: Services,
}

impl AccountNotifications {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let member = match signed_in(&self.services, &request) {
            Ok(member) => member,
            Err(answer) => return answer,
        };
        if request.method == "POST" {
            let Some(id) = request.path_params.get("id").filter(|id| valid_id(id)) else {
                return ApiResponse::problem(
                    404,
                    "no-such-notice",
                    "No such notice",
                    "no such notice",
                );
            };
            return match self
                .services
                .store
                .mark_notice_read(&member.user_id, id, self.services.now())
                .await
            {
                Ok(true) => ApiResponse {
                    status: 204,
                    headers: vec![("cache-control".into(), "no-store".into())],
                    body: String::new(),
                    cookies: vec![],
                },
                Ok(false) => {
                    ApiResponse::problem(404, "no-such-notice", "No such notice", "no such notice")
                }
                Err(e) => reject::unavailable_after(
                    &request,
                    "marking a notice failed",
                    &e,
                    "could not mark the notice right now; try again",
                ),
            };
        }
        let limit = match request.query("limit").map(|l| l.parse::<i32>()) {
            None => DEFAULT_PAGE,
            Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
            Some(_) => {
                return ApiResponse::problem(
                    400,
                    "bad-limit",
                    "Bad limit",
                    format!("limit must be 1 to {MAX_PAGE}"),
                )
            }
        };
        let after = request.query("after");
        if after.as_deref().is_some_and(|a| !valid_id(a)) {
            return ApiResponse::problem(
                400,
                "bad-cursor",
                "Bad cursor",
                "after must be a notice id",
            );
        }
        match self
            .services
            .store
            .notices(&member.user_id, after.as_deref(), limit)
            .await
        {
            Ok(page) => {
                let items: Vec<Value> = page.notices.iter().filter_map(notice_json).collect();
                ApiResponse::json(200, &json!({"items": items, "next": page.next}))
                    .with_header("cache-control", "no-store")
            }
            Err(e) => reject::unavailable_after(
                &request,
                "listing notices failed",
                &e,
                "could not list notices right now; try again",
            ),
        }
    }
}

impl HttpFunction for AccountNotifications {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountNotifications::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_job_ids_name_notices() {
        assert!(valid_id("job_01JAB3CDEF"));
        assert!(!valid_id("NOTICE#job_1"));
        assert!(!valid_id("usr_1"));
        assert!(!valid_id(&format!("job_{}", "a".repeat(80))));
    }
}
