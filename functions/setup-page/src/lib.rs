//! `GET /account/setup`: the small page the emailed setup link opens. It reads
//! the token and email from the URL fragment (never sent to any server), posts
//! the new password to `/account/setup-password`, offers a new link when the
//! old one is dead, and sends the member to `APP_URL` once signed in.
//!
//! The script and style are inline and pinned by hash in a strict
//! Content-Security-Policy; nothing else may load or run.

use gatehouse::email::escape_html;
use gatehouse::http::{ApiRequest, ApiResponse};
use gatehouse::lambda::{BoxFuture, HttpFunction};
use gatehouse::service::Services;
use gatehouse::session::csp_hash;

const TEMPLATE: &str = include_str!("../assets/page.html");
const SCRIPT: &str = include_str!("../assets/page.js");
const STYLE: &str = include_str!("../assets/page.css");

/// The page for `app_url` and its Content-Security-Policy.
pub fn render(app_url: &str) -> (String, String) {
    let html = TEMPLATE
        .replace("{{APP_URL}}", &escape_html(app_url))
        .replace("{{STYLE}}", STYLE)
        .replace("{{SCRIPT}}", SCRIPT);
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    (html, csp)
}

pub struct SetupPage {
    html: String,
    csp: String,
}

impl SetupPage {
    pub fn new(services: Services) -> Self {
        let (html, csp) = render(&services.settings.app_url);
        Self { html, csp }
    }

    pub async fn handle(&self, _request: ApiRequest) -> ApiResponse {
        ApiResponse::html(200, self.html.clone(), &self.csp)
    }
}

impl HttpFunction for SetupPage {
    fn handle(&self, request: ApiRequest) -> BoxFuture<'_, ApiResponse> {
        Box::pin(SetupPage::handle(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_url_is_escaped_and_the_csp_pins_the_inline_code() {
        let (html, csp) = render("https://app.example/?a=1&b=\"x\"");
        assert!(html.contains("data-app-url=\"https://app.example/?a=1&amp;b=&quot;x&quot;\""));
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(csp.contains(&csp_hash(SCRIPT)));
        assert!(csp.contains(&csp_hash(STYLE)));
        assert!(csp.starts_with("default-src 'none'"));
        assert!(!csp.contains("unsafe"));
    }
}
