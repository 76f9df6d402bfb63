//! What every request goes through before the application: same-origin checks for
//! state-changing calls (CSRF), request-body limits and rates (`body`), the multipart check,
//! security headers and `Cache-Control` on every response. The page's own
//! Content-Security-Policy, which needs the response's nonce, is set while it renders
//! (`app::server::set_content_security_policy`).

mod body;

pub use body::{guard_bodies, BodyLimits, JSON_BODY_LIMIT, MULTIPART_HEAD_LIMIT};

use std::future::Future;

use app::{api::UploadFile, error::AppError};
use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use leptos::server_fn::ServerFn;
use tower_http::set_header::SetResponseHeaderLayer;

/// Server functions whose input is `multipart/form-data` (uploads).
pub const MULTIPART_ENDPOINTS: [&str; 1] = [UploadFile::PATH];

/// `parley`'s own refusal of a request, before or around the application: the
/// [`AppError`] as JSON with its status (and `Retry-After` with a 429's wait). The server
/// functions answer their errors the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub AppError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.0.http_status();
        let body = serde_json::to_string(&self.0).unwrap_or_default();
        let mut res = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let AppError::TooManyRequests { retry_after_secs } = self.0 {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}

/// True when a request plainly comes from another site: `Sec-Fetch-Site` other than
/// `same-origin`/`none`, or else an `Origin` whose host is not this one (`Host`, or
/// `X-Forwarded-Host` when `trust_proxy`). Requests with neither header (not from a browser
/// page) are not cross-site: CSRF needs a browser, and browsers send them.
pub fn is_cross_site(headers: &HeaderMap, trust_proxy: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = trust_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(',').next().unwrap_or_default().trim().to_ascii_lowercase());
    let origin_host = url::Url::parse(origin).ok().and_then(|u| {
        let host = u.host_str()?.to_ascii_lowercase();
        Some(match u.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    });
    match (origin_host, host) {
        (Some(origin), Some(host)) => origin != host,
        // `Origin: null` (sandboxed frames, some redirects) or no Host: refuse.
        _ => true,
    }
}

/// Whether `parley` runs behind a reverse proxy it trusts (`--trust-proxy`): only then are
/// `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto` believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustProxy(pub bool);

/// Refuses cross-site state-changing calls to the server functions, the sign-in routes and
/// `/admin`'s forms with 403 and
/// [`AppError::CrossSite`].
pub async fn same_origin<F: Future<Output = Response>>(
    trust_proxy: bool,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state
        && (req.uri().path().starts_with(app::api::API_PREFIX)
            || req.uri().path().starts_with(crate::auth::AUTH_PREFIX)
            || req.uri().path().starts_with(crate::budgets::admin::ADMIN_PREFIX))
        && is_cross_site(req.headers(), trust_proxy)
    {
        tracing::warn!(path = %req.uri().path(), "cross-site request refused");
        return Refusal(AppError::CrossSite).into_response();
    }
    next(req).await
}

/// True when a request came over HTTPS as far as `parley` can tell: behind a trusted proxy,
/// its `X-Forwarded-Proto`.
pub fn is_https(headers: &HeaderMap, trust_proxy: bool) -> bool {
    trust_proxy
        && headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// `Cache-Control` of what is not a static file, unless the response set its own: the server
/// functions' answers `no-store` (they carry a person's data); HTML pages `no-cache, private`
/// (revalidated on every visit, so a new release is seen at once, and never kept by a shared
/// cache: a page may set the session cookie).
pub async fn cache_control<F: Future<Output = Response>>(
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let api = req.uri().path().starts_with(app::api::API_PREFIX);
    let mut res = next(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    if !res.headers().contains_key(header::CACHE_CONTROL) {
        let policy = match (api, html) {
            (true, _) => "no-store",
            (false, true) => "no-cache, private",
            (false, false) => return res,
        };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    res
}

/// Refuses a request to a multipart server function that has no multipart boundary, with
/// 415 and an [`AppError`] body, before `server_fn` sets up its multipart parser (which
/// panics on such requests).
pub async fn require_multipart<F: Future<Output = Response>>(
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    if MULTIPART_ENDPOINTS.contains(&req.uri().path()) {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_multipart = content_type.to_ascii_lowercase().starts_with("multipart/form-data")
            && content_type.contains("boundary=");
        if !is_multipart {
            let error = AppError::BadUpload("the body must be multipart/form-data".into());
            let mut res = Refusal(error).into_response();
            *res.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            return res;
        }
    }
    next(req).await
}

/// Security headers on every response: no MIME sniffing, no referrer, no framing, and —
/// for responses that set none of their own (everything but the page) — a policy that
/// allows nothing.
pub fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    fn is_cross_site_(headers: &HeaderMap) -> bool {
        is_cross_site(headers, true)
    }

    #[test]
    fn forwarded_headers_count_only_behind_a_trusted_proxy() {
        let behind = headers(&[
            ("origin", "https://chat.example.org"),
            ("host", "10.0.0.5:3000"),
            ("x-forwarded-host", "chat.example.org"),
        ]);
        assert!(!is_cross_site(&behind, true));
        assert!(is_cross_site(&behind, false), "X-Forwarded-Host is anyone's to send");
        let https = headers(&[("x-forwarded-proto", "https")]);
        assert!(is_https(&https, true) && !is_https(&https, false));
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        assert!(!is_cross_site_(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_site_(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site_(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://a:1"),
            ("host", "a:1")
        ])));
        assert!(is_cross_site_(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site_(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!is_cross_site_(&headers(&[
            ("origin", "https://Chat.Example.org"),
            ("host", "chat.example.org")
        ])));
        assert!(!is_cross_site_(&headers(&[
            ("origin", "https://chat.example.org"),
            ("host", "10.0.0.5:3000"),
            ("x-forwarded-host", "chat.example.org")
        ])));
        assert!(is_cross_site_(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "chat.example.org")
        ])));
        assert!(is_cross_site_(&headers(&[("origin", "null"), ("host", "chat.example.org")])));
        assert!(
            !is_cross_site_(&headers(&[("host", "chat.example.org")])),
            "no browser headers: not a page"
        );
    }
}
