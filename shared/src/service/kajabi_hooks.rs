//! Kajabi hooks, managed through Kajabi's public API (`/v1/hooks`, OAuth
//! client credentials): list, create, delete, and `ensure` exactly one hook
//! per event Gatehouse reads, pointing at this deployment's
//! `/webhooks/kajabi?token=…`. The URL token never leaves in an answer or
//! a log: every target URL shown has its token masked.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::admin_change::{problem, AdminChange, ChangeAnswer};
use super::{ServiceError, Services};
use crate::domain::{plan_hooks, points_at, HookRef, KAJABI_HOOK_EVENTS};
use crate::providers::api::{ApiError, KajabiApi, KajabiHook};

/// Why a hooks call could not be made, as the admin sees it.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("Kajabi API credentials are not set (KajabiClientId and KajabiClientSecret)")]
    NotConfigured,
    #[error("KAJABI_URL_TOKENS is empty: there is no URL to point hooks at")]
    NoUrlToken,
    #[error(transparent)]
    Kajabi(#[from] ApiError),
}

impl HookError {
    /// A specific answer for each of Kajabi's errors, with `tokens` masked
    /// out of every detail.
    pub fn into_answer(self, tokens: &[String]) -> ChangeAnswer {
        let answer = |status: u16, slug: &str, title: &str, detail: String| ChangeAnswer {
            status,
            body: problem(status, slug, title, &redact_tokens(&detail, tokens)),
            replayed: false,
        };
        match self {
            HookError::NotConfigured | HookError::NoUrlToken => {
                answer(409, "kajabi-not-configured", "Kajabi API not configured", self.to_string())
            }
            HookError::Kajabi(e) => match e.status() {
                Some(401) => answer(502, "kajabi-unauthorized", "Kajabi refused the credentials",
                    format!("Kajabi refused the API credentials ({e}): check KajabiClientId and KajabiClientSecret, or rotate the key")),
                Some(403) => answer(502, "kajabi-forbidden", "Kajabi API key lacks a permission",
                    format!("Kajabi's API key may not manage hooks ({e}): give the key the webhooks (hooks) permission in Kajabi's User API Keys")),
                Some(404) => answer(502, "kajabi-error", "Kajabi API error",
                    format!("{e}: check KAJABI_API_BASE")),
                Some(429) => answer(503, "kajabi-throttled", "Kajabi is rate limiting",
                    format!("Kajabi kept answering 429 after retries ({e}): try again in a minute")),
                Some(status) if status >= 500 => answer(502, "kajabi-unavailable", "Kajabi is unavailable",
                    format!("Kajabi answered {status} after retries ({e}): try again later")),
                _ => answer(502, "kajabi-error", "Kajabi API error", e.to_string()),
            },
        }
    }
}

/// What a query value keeps as is; everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` with every configured token, raw or encoded, and every `token=`
/// value masked: Kajabi's error details may quote a target URL.
pub fn redact_tokens(text: &str, tokens: &[String]) -> String {
    let mut out = text.to_string();
    for token in tokens.iter().filter(|t| !t.is_empty()) {
        let encoded = utf8_percent_encode(token, QUERY_VALUE).to_string();
        out = out.replace(&encoded, "***").replace(token.as_str(), "***");
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.to_ascii_lowercase().find("token=") {
        masked.push_str(&rest[..at + "token=".len()]);
        rest = &rest[at + "token=".len()..];
        let end = rest
            .find(|c: char| {
                c == '&' || c == '"' || c == '\'' || c.is_whitespace() || c == '<' || c == '>'
            })
            .unwrap_or(rest.len());
        if end > 0 && !rest[..end].starts_with("***") {
            masked.push_str("***");
        } else {
            masked.push_str(&rest[..end]);
        }
        rest = &rest[end..];
    }
    masked.push_str(rest);
    masked
}

/// `url` with any `token=` value masked.
pub fn masked(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_string(),
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("token") => format!("{name}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
    }
}

impl Services {
    /// The URL tokens, to mask out of anything Kajabi says.
    pub fn kajabi_url_token_values(&self) -> Vec<String> {
        self.settings
            .kajabi_url_tokens
            .iter()
            .map(|t| t.expose().to_string())
            .collect()
    }

    fn kajabi_hooks_api(&self) -> Result<&KajabiApi, HookError> {
        self.kajabi_api.as_ref().ok_or(HookError::NotConfigured)
    }

    /// This deployment's Kajabi endpoint, without its token.
    fn kajabi_endpoint(&self) -> String {
        format!(
            "{}/webhooks/kajabi",
            self.settings.frontend_url.trim_end_matches('/')
        )
    }

    /// Where hooks should point: the endpoint with the newest URL token
    /// (the last: rotation deploys `old,new`).
    fn kajabi_hook_target(&self) -> Result<String, HookError> {
        let token = self
            .settings
            .kajabi_url_tokens
            .last()
            .ok_or(HookError::NoUrlToken)?;
        Ok(format!(
            "{}?token={}",
            self.kajabi_endpoint(),
            utf8_percent_encode(token.expose(), QUERY_VALUE)
        ))
    }

    fn hook_json(&self, hook: &KajabiHook, target: Option<&str>) -> Value {
        json!({
            "id": hook.id,
            "event": hook.event,
            "target_url": masked(&hook.target_url),
            "points_here": points_at(&hook.target_url, &self.kajabi_endpoint()),
            "current_token": target.map(|t| t == hook.target_url),
        })
    }

    /// `GET /admin/kajabi/hooks`: every hook of the site, tokens masked.
    pub async fn admin_list_kajabi_hooks(&self) -> Result<Value, HookError> {
        let hooks = self.kajabi_hooks_api()?.list_hooks().await?;
        let target = self.kajabi_hook_target().ok();
        Ok(json!({
            "endpoint": self.kajabi_endpoint(),
            "items": hooks.iter().map(|h| self.hook_json(h, target.as_deref())).collect::<Vec<_>>(),
        }))
    }

    /// `POST /admin/kajabi/hooks {"event"}`: one hook for `event` at this
    /// deployment; an identical one already there is answered, not doubled.
    pub async fn admin_create_kajabi_hook(
        &self,
        change: &AdminChange,
        event: &str,
    ) -> Result<ChangeAnswer, ServiceError> {
        self.hook_change(change, || async {
            let api = self.kajabi_hooks_api()?;
            let target = self.kajabi_hook_target()?;
            let existing = api.list_hooks().await?;
            if let Some(hook) = existing
                .iter()
                .find(|h| h.event == event && h.target_url == target)
            {
                return Ok((
                    200,
                    json!({"status": "exists", "hook": self.hook_json(hook, Some(&target))}),
                ));
            }
            let hook = api.create_hook(event, &target).await?;
            Ok::<_, HookError>((
                201,
                json!({"status": "created", "hook": self.hook_json(&hook, Some(&target))}),
            ))
        })
        .await
    }

    /// `DELETE /admin/kajabi/hooks/{id}`.
    pub async fn admin_delete_kajabi_hook(
        &self,
        change: &AdminChange,
        id: &str,
    ) -> Result<ChangeAnswer, ServiceError> {
        self.hook_change(change, || async {
            // Gone already (a retry whose first attempt landed, or by hand):
            // the end the admin asked for.
            let status = match self.kajabi_hooks_api()?.delete_hook(id).await {
                Ok(()) => "deleted",
                Err(ApiError::NotFound { .. }) => "absent",
                Err(e) => return Err(e.into()),
            };
            Ok::<_, HookError>((200, json!({"status": status, "id": id})))
        })
        .await
    }

    /// `POST /admin/kajabi/hooks/ensure`: exactly one hook per needed event
    /// at this deployment's current URL; stale and duplicate hooks pointing
    /// here are deleted; hooks pointing elsewhere are left alone.
    pub async fn admin_ensure_kajabi_hooks(
        &self,
        change: &AdminChange,
    ) -> Result<ChangeAnswer, ServiceError> {
        self.hook_change(change, || async {
            let api = self.kajabi_hooks_api()?;
            let target = self.kajabi_hook_target()?;
            let existing = api.list_hooks().await?;
            let refs: Vec<HookRef<'_>> = existing
                .iter()
                .map(|h| HookRef {
                    id: &h.id,
                    event: &h.event,
                    target_url: &h.target_url,
                })
                .collect();
            let plan = plan_hooks(&refs, &target, &self.kajabi_endpoint());
            let by_id = |id: &str| existing.iter().find(|h| h.id == id);
            // New hooks first: no moment without one for an event.
            let mut created = Vec::new();
            for event in &plan.create {
                let hook = api.create_hook(event, &target).await?;
                // Logged as it happens: a run that stops halfway is not audited.
                tracing::info!(principal = %change.principal, hook_id = %hook.id, event = %hook.event, "kajabi hook created");
                created.push(self.hook_json(&hook, Some(&target)));
            }
            let mut deleted = Vec::new();
            for id in &plan.delete {
                match api.delete_hook(id).await {
                    // Gone already (another ensure, or by hand): the same end.
                    Ok(()) | Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(principal = %change.principal, hook_id = %id, "kajabi hook deleted");
                if let Some(hook) = by_id(id) {
                    deleted.push(self.hook_json(hook, Some(&target)));
                }
            }
            let kept: Vec<Value> = plan
                .keep
                .iter()
                .filter_map(|id| by_id(id))
                .map(|h| self.hook_json(h, Some(&target)))
                .collect();
            Ok::<_, HookError>((
                200,
                json!({
                    "status": if created.is_empty() && deleted.is_empty() { "unchanged" } else { "changed" },
                    "events": KAJABI_HOOK_EVENTS,
                    "created": created, "deleted": deleted, "kept": kept,
                }),
            ))
        })
        .await
    }

    /// A hooks change: a retry with the same key gets the first answer;
    /// otherwise `call` runs and what it did is audited, so the retry
    /// repeats the answer, not the call.
    async fn hook_change<Fut>(
        &self,
        change: &AdminChange,
        call: impl FnOnce() -> Fut,
    ) -> Result<ChangeAnswer, ServiceError>
    where
        Fut: std::future::Future<Output = Result<(u16, Value), HookError>>,
    {
        if let Some(answer) = self.earlier_answer(change).await? {
            return Ok(answer);
        }
        let (status, body) = match call().await {
            Ok(done) => done,
            // A refusal is answered, not stored: fixing the cause and
            // retrying with the same key must make the call.
            Err(e) => return Ok(e.into_answer(&self.kajabi_url_token_values())),
        };
        let answer = self
            .commit_admin_change(change, |_| Ok(()), &[], status, body.clone())
            .await?;
        Ok(answer.unwrap_or(ChangeAnswer {
            status,
            body,
            replayed: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked_wherever_they_sit() {
        assert_eq!(
            masked("https://a.example/webhooks/kajabi?token=s3cret"),
            "https://a.example/webhooks/kajabi?token=***"
        );
        assert_eq!(
            masked("https://a.example/x?a=1&TOKEN=s3cret&b=2"),
            "https://a.example/x?a=1&TOKEN=***&b=2"
        );
        assert_eq!(masked("https://a.example/x"), "https://a.example/x");
    }

    #[test]
    fn kajabi_error_details_never_carry_a_token() {
        let tokens = vec!["ab+c&d".to_string()];
        let detail = "target_url https://a.example/webhooks/kajabi?token=ab%2Bc%26d is taken; \"ab+c&d\" token=zzz";
        let redacted = redact_tokens(detail, &tokens);
        assert!(
            !redacted.contains("ab%2Bc%26d")
                && !redacted.contains("ab+c")
                && !redacted.contains("zzz"),
            "{redacted}"
        );
        assert_eq!(redact_tokens("nothing here", &tokens), "nothing here");
    }
}
