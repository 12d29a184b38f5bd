//! The member's pages, served by Gatehouse like the setup page: static HTML
//! whose inline script and style are pinned by hash in a strict
//! Content-Security-Policy (nothing else may load or run, no third-party
//! script), talking to the JSON routes with the session cookie:
//! - `GET /account/plans`: the plans for sale; "Choose plan" starts a checkout;
//! - `GET /account/sign-in`: email and password, then on to `?next=` (a page
//!   of this site only);
//! - `GET /account/overview`: subscriptions with their access, points,
//!   payments, notices, cancel and resume, and the card update.
//!
//! Their changes are `fetch` calls with a JSON body from this origin: the
//! cookie is `SameSite=Lax`, and the member routes refuse another `Origin`,
//! so a cross-site form can do nothing with the member's session.

use gatehouse::http::{reject, ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;
use gatehouse::session::csp_hash;

const STYLE: &str = include_str!("../assets/pages.css");

/// One page: its HTML (script and style inlined) and its CSP.
#[derive(Debug, Clone)]
pub struct Page {
    pub html: String,
    pub csp: String,
}

fn page(template: &str, script: &str) -> Page {
    let html = template
        .replace("{{STYLE}}", STYLE)
        .replace("{{SCRIPT}}", script);
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(script),
        csp_hash(STYLE)
    );
    Page { html, csp }
}

/// The page a path names.
pub fn page_for(path: &str) -> Option<Page> {
    let path = path.trim_end_matches('/');
    Some(if path.ends_with("/account/plans") {
        page(
            include_str!("../assets/plans.html"),
            include_str!("../assets/plans.js"),
        )
    } else if path.ends_with("/account/sign-in") {
        page(
            include_str!("../assets/sign-in.html"),
            include_str!("../assets/sign-in.js"),
        )
    } else if path.ends_with("/account/overview") {
        page(
            include_str!("../assets/overview.html"),
            include_str!("../assets/overview.js"),
        )
    } else {
        return None;
    })
}

pub struct AccountPages {
    plans: Page,
    sign_in: Page,
    overview: Page,
}

impl AccountPages {
    pub fn new(_services: Services) -> Self {
        let get = |path| page_for(path).expect("every page renders");
        Self {
            plans: get("/account/plans"),
            sign_in: get("/account/sign-in"),
            overview: get("/account/overview"),
        }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let path = request.path.trim_end_matches('/');
        let page = if path.ends_with("/account/plans") {
            &self.plans
        } else if path.ends_with("/account/sign-in") {
            &self.sign_in
        } else if path.ends_with("/account/overview") {
            &self.overview
        } else {
            return reject::not_found(&request.path);
        };
        ApiResponse::html(200, page.html.clone(), &page.csp)
    }
}

impl HttpFunction for AccountPages {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(AccountPages::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_pins_its_inline_code_and_fills_every_placeholder() {
        for path in ["/account/plans", "/account/sign-in", "/account/overview"] {
            let page = page_for(path).unwrap();
            assert!(!page.html.contains("{{"), "{path}");
            assert!(page.csp.starts_with("default-src 'none'"), "{path}");
            assert!(!page.csp.contains("unsafe"), "{path}");
            assert!(page.csp.contains(&csp_hash(STYLE)));
            assert_eq!(page.html.matches("<script>").count(), 1, "{path}");
        }
        assert!(page_for("/account/elsewhere").is_none());
    }
}
