//! `POST /admin/completions/import[?dry_run=true]` with a CSV body
//! (`email,course,completion_date[,points]`, up to 10,000 rows) and an
//! `Idempotency-Key`. Each row goes through the completion rule a webhook
//! uses, keyed by its email and course: a re-import, or a completion the
//! webhook already delivered, awards nothing twice. A malformed file is a 400
//! naming the line, and nothing from it is applied. The answer counts the
//! rows awarded, already awarded, unmatched and invalid, with their lines.

use gatehouse::admin::import::{parse_csv, MAX_IMPORT_ROWS};
use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::admin_change::admin_change;
use gatehouse::service::completion::import_report;
use gatehouse::service::Services;
use serde_json::json;

/// Largest CSV body: 10,000 rows of generous width.
pub const MAX_CSV_BYTES: usize = 4 * 1024 * 1024;

pub struct AdminImportCompletions {
    services: Services,
}

impl AdminImportCompletions {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let mut change = match admin_change(
            &self.services.settings.admin_principals,
            &request,
            "import-completions",
        ) {
            Ok(change) => change,
            Err(refused) => return refused,
        };
        if request.body.len() > MAX_CSV_BYTES {
            return reject::too_large(request.body.len());
        }
        let dry_run = match request.query("dry_run").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return ApiResponse::problem(
                    400,
                    "invalid-parameter",
                    "Invalid parameter",
                    format!("dry_run must be true or false, not `{other}`"),
                )
            }
        };
        let rows = match parse_csv(&request.body) {
            Ok(rows) => rows,
            Err(e) => {
                return ApiResponse::problem(400, "invalid-csv", "Invalid CSV", e.to_string())
            }
        };
        change.request = json!({
            "sha256": gatehouse::signature::sha256_hex(&request.body),
            "rows": rows.len(),
            "dry_run": dry_run,
        });
        let imported = async {
            if let Some(answer) = self.services.earlier_answer(&change).await? {
                return Ok(answer);
            }
            let results = self.services.import_completions(&rows, dry_run).await?;
            let body = import_report(&results, dry_run);
            tracing::info!(rows = rows.len(), dry_run, "completions imported");
            if dry_run {
                // Nothing changed: nothing to audit or to answer again.
                return Ok(gatehouse::service::admin_change::ChangeAnswer {
                    status: 200,
                    body,
                    replayed: false,
                });
            }
            match self
                .services
                .commit_admin_change(&change, |_| Ok(()), &[], 200, body)
                .await?
            {
                Some(answer) => Ok(answer),
                None => Err(gatehouse::service::ServiceError::Contention),
            }
        };
        match imported.await {
            Ok(answer) => answer.into_http(),
            Err(e) => reject::unavailable_after(
                &request,
                "completions import failed",
                &e,
                &format!(
                    "could not import right now; retry with the same Idempotency-Key (rows already applied stay applied, once) — at most {MAX_IMPORT_ROWS} rows a request"
                ),
            ),
        }
    }
}

impl HttpFunction for AdminImportCompletions {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AdminImportCompletions::handle(self, request))
    }
}
