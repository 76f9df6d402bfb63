//! What every request goes through before the application: same-origin checks for
//! state-changing calls (CSRF), request-body limits, and security headers on every response.
//! The page's own Content-Security-Policy, which needs the response's nonce, is set while it
//! renders (`app::server::set_content_security_policy`).

use app::error::AppError;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// Server functions whose input is `multipart/form-data` (uploads).
pub const MULTIPART_ENDPOINTS: [&str; 1] = ["/api/upload_file"];

/// Largest body of any other request, bytes: a long conversation with its previews.
pub const JSON_BODY_LIMIT: u64 = 32 << 20;

/// Room for the multipart framing and small fields around an upload's bytes.
const MULTIPART_OVERHEAD: u64 = 1 << 20;

/// An [`AppError`] as a JSON response with its status.
pub fn refuse(error: AppError) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_string(&error).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// True when a request plainly comes from another site: `Sec-Fetch-Site` other than
/// `same-origin`/`none`, or else an `Origin` whose host is not this one (`Host`, or
/// `X-Forwarded-Host` behind a proxy). Requests with neither header (not from a browser
/// page) are not cross-site: CSRF needs a browser, and browsers send them.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return false };
    let host = headers
        .get("x-forwarded-host")
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

/// Refuses cross-site state-changing calls to the server functions with 403 and
/// [`AppError::CrossSite`].
pub async fn same_origin(req: Request, next: Next) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && req.uri().path().starts_with("/api/") && is_cross_site(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "cross-site request refused");
        return refuse(AppError::CrossSite);
    }
    next.run(req).await
}

/// The body limits: uploads up to the largest file plus framing, everything else
/// [`JSON_BODY_LIMIT`].
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest upload, bytes.
    pub max_file_bytes: u64,
}

/// Answers 413 to a body announced larger than its limit, and cuts off one that grows past it
/// while streaming (the server function then fails; nothing is stored).
pub async fn limit_bodies(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let upload = MULTIPART_ENDPOINTS.contains(&req.uri().path());
    let limit = if upload { limits.max_file_bytes.saturating_add(MULTIPART_OVERHEAD) } else { JSON_BODY_LIMIT };
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = announced.filter(|&l| l > limit) {
        let name = if upload { "The upload" } else { "The request" };
        return refuse(AppError::TooLarge { name: name.into(), size_bytes: length, limit_bytes: limit });
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    next.run(req.map(|body| Body::new(http_body_util::Limited::new(body, limit)))).await
}

/// Refuses a request to a multipart server function that has no multipart boundary, with
/// 415 and an [`AppError`] body, before `server_fn` sets up its multipart parser (which
/// panics on such requests).
pub async fn require_multipart(req: Request, next: Next) -> Response {
    if MULTIPART_ENDPOINTS.contains(&req.uri().path()) {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_multipart = content_type.to_ascii_lowercase().starts_with("multipart/form-data") && content_type.contains("boundary=");
        if !is_multipart {
            let error = AppError::BadUpload("the body must be multipart/form-data".into());
            let body = serde_json::to_string(&error).unwrap_or_default();
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    next.run(req).await
}

/// Security headers on every response: no MIME sniffing, no referrer, no framing, and —
/// for responses that set none of their own (everything but the page) — a policy that
/// allows nothing.
pub fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = |name: HeaderName, value: &'static str| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://a:1"), ("host", "a:1")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[("origin", "http://127.0.0.1:3000"), ("host", "127.0.0.1:3000")])));
        assert!(!is_cross_site(&headers(&[("origin", "https://Chat.Example.org"), ("host", "chat.example.org")])));
        assert!(!is_cross_site(&headers(&[("origin", "https://chat.example.org"), ("host", "10.0.0.5:3000"), ("x-forwarded-host", "chat.example.org")])));
        assert!(is_cross_site(&headers(&[("origin", "https://evil.example"), ("host", "chat.example.org")])));
        assert!(is_cross_site(&headers(&[("origin", "null"), ("host", "chat.example.org")])));
        assert!(!is_cross_site(&headers(&[("host", "chat.example.org")])), "no browser headers: not a page");
    }
}
