//! The sign-in routes:
//!
//! * `GET /auth/login/<name>?return=/path` — starts an OpenID Connect sign-in at provider
//!   `<name>`: the flow kept in the store under its `state`, bound to this browser by a random
//!   value in a short-lived cookie (`parley_sign_in`, `__Host-` over HTTPS, 10 minutes), then a
//!   303 to the provider;
//! * `GET /auth/callback/<name>?code&state[&iss]` — finishes it: the flow taken once, the
//!   browser checked, the code exchanged and the ID token verified ([`super::oidc`]), the person
//!   admitted ([`super::policy`]), their account found or made, a **new** session id signed in
//!   (the anonymous session's Files and caches moved to the account in the same transaction),
//!   and a 303 back to the local path the sign-in started from;
//! * `POST /auth/sign-out`, `POST /auth/sign-out-everywhere` — end this sign-in, or all of the
//!   account's, and give the browser a new anonymous session.
//!
//! A sign-in that fails returns to `/?sign_in_error=<code>` ([`SignInFailure`]), where the page
//! shows its sentence; the reason is logged, never shown.

use std::sync::Arc;

use app::account::SignInFailure;
use axum::{
    extract::{Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use parley_store::{SessionId, SignInFlow};
use serde::Deserialize;

use parley_files::time::now_ms;

use super::{Auth, Resolved};
use crate::session::Sessions;

/// The flow cookie's name over plain HTTP, and over HTTPS.
const FLOW_COOKIE: &str = "parley_sign_in";
const SECURE_FLOW_COOKIE: &str = "__Host-parley_sign_in";

/// How long a sign-in may take at the provider, ms.
const FLOW_MS: i64 = 10 * 60 * 1000;

/// Longest `state`, `code` or `return` taken, bytes (a provider's are far shorter).
const MAX_PARAM_BYTES: usize = 2048;

/// The routes, answering for `sessions`.
pub fn routes<S>(sessions: Arc<Sessions>) -> Router<S> {
    Router::new()
        .route("/auth/login/{name}", get(login))
        .route("/auth/callback/{name}", get(callback))
        .route("/auth/sign-out", post(sign_out))
        .route("/auth/sign-out-everywhere", post(sign_out_everywhere))
        .with_state(sessions)
}

/// `{public}/auth/callback/{name}`.
///
/// # Errors
/// A sentence when that is not a URL.
pub fn callback_url(public: &url::Url, name: &str) -> Result<openidconnect::RedirectUrl, String> {
    let base = public.as_str().trim_end_matches('/');
    openidconnect::RedirectUrl::new(format!("{base}/auth/callback/{name}"))
        .map_err(|e| format!("PARLEY_PUBLIC_URL: {e}"))
}

/// A local path to return to: `text` when it is an absolute path on this site (`/…`, not
/// `//host` or `/\host`, no control characters), else `/`.
fn local_path(text: Option<&str>) -> String {
    match text {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= MAX_PARAM_BYTES
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

/// A 303 to `location`.
fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// Back to the page, which says why the sign-in failed.
fn failed(failure: SignInFailure) -> Response {
    see_other(&format!("/?sign_in_error={}", failure.code()))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn flow_cookie_name(sessions: &Sessions, headers: &HeaderMap) -> &'static str {
    sessions.named(headers, FLOW_COOKIE, SECURE_FLOW_COOKIE)
}

fn flow_cookie(
    sessions: &Sessions,
    headers: &HeaderMap,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = crate::guard::is_https(headers, sessions.trust_proxy);
    crate::session::cookie_header(flow_cookie_name(sessions, headers), secure, value, max_age)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
}

async fn login(
    State(sessions): State<Arc<Sessions>>,
    Path(name): Path<String>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let auth = &sessions.auth;
    let Some(provider) = auth.provider(&name) else {
        return (StatusCode::NOT_FOUND, "There is no such sign-in provider.").into_response();
    };
    let started = match provider.start().await {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(provider = %name, error = %e, "a sign-in could not start");
            return failed(SignInFailure::ProviderDown);
        }
    };
    let browser = hex::encode(rand::random::<[u8; 32]>());
    let now = now_ms();
    let flow = SignInFlow {
        browser_hash: sha256_hex(&browser),
        provider: name.clone(),
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        return_to: local_path(query.return_to.as_deref()),
        expires_ms: now + FLOW_MS,
    };
    match auth.store().put_sign_in_flow(&started.state, flow, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("too many sign-ins under way; one was refused");
            return failed(SignInFailure::Unavailable);
        }
        Err(e) => {
            tracing::error!(error = %e, "a sign-in could not be recorded");
            return failed(SignInFailure::Unavailable);
        }
    }
    let mut res = see_other(started.url.as_str());
    if let Some(cookie) = flow_cookie(&sessions, &headers, &browser, FLOW_MS as u64 / 1000) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(sessions): State<Arc<Sessions>>,
    Path(name): Path<String>,
    Query(query): Query<CallbackQuery>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let headers = parts.headers.clone();
    let outcome = finish(&sessions, &name, query, &parts).await;
    let mut res = match outcome {
        Ok((session, return_to)) => {
            let mut res = see_other(&return_to);
            let value = sessions.key.sign_signed_in(session.as_str());
            if let Some(cookie) = sessions.set_cookie(&headers, &value) {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(failure) => failed(failure),
    };
    // The flow is over either way: its cookie goes.
    if let Some(cookie) = flow_cookie(&sessions, &headers, "", 0) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

/// The callback's work: the new signed-in session and where to return, or why not.
async fn finish(
    sessions: &Sessions,
    name: &str,
    query: CallbackQuery,
    req: &axum::http::request::Parts,
) -> Result<(SessionId, String), SignInFailure> {
    let auth = &sessions.auth;
    let now = now_ms();
    let state = query.state.filter(|s| s.len() <= MAX_PARAM_BYTES).ok_or(SignInFailure::Expired)?;
    let flow = auth
        .store()
        .take_sign_in_flow(&state, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a sign-in could not be read");
            SignInFailure::Unavailable
        })?
        .ok_or_else(|| {
            tracing::warn!(provider = %name, "a sign-in callback with an unknown, used or lapsed state");
            SignInFailure::Expired
        })?;
    let cookie_name = flow_cookie_name(sessions, &req.headers);
    let browser = crate::session::from_cookies(&req.headers, cookie_name).next().map(sha256_hex);
    if browser.as_deref() != Some(flow.browser_hash.as_str()) || flow.provider != name {
        tracing::warn!(provider = %name, "a sign-in callback from another browser than the one that started it");
        return Err(SignInFailure::Expired);
    }
    if let Some(error) = query.error {
        tracing::info!(provider = %name, error = %error.chars().take(64).collect::<String>(), "the provider refused a sign-in");
        return Err(SignInFailure::Refused);
    }
    let provider = auth.provider(name).ok_or(SignInFailure::Expired)?;
    // RFC 9207: an `iss` in the response must be this provider's (no mix-up).
    if query.iss.as_deref().is_some_and(|iss| iss != provider.issuer()) {
        tracing::warn!(provider = %name, "a sign-in callback carried another issuer");
        return Err(SignInFailure::Invalid);
    }
    let code = query.code.filter(|c| c.len() <= MAX_PARAM_BYTES).ok_or(SignInFailure::Invalid)?;
    let identity = provider.finish(code, flow.pkce_verifier, flow.nonce).await.map_err(|e| {
        tracing::warn!(provider = %name, error = %e, "a sign-in did not complete");
        match e {
            super::oidc::OidcError::Unreachable(_) => SignInFailure::ProviderDown,
            super::oidc::OidcError::Refused(_) | super::oidc::OidcError::Invalid(_) => {
                SignInFailure::Invalid
            }
        }
    })?;
    auth.policy().admit(&identity).inspect_err(|f| {
        tracing::info!(provider = %name, reason = f.code(), "a sign-in was not admitted");
    })?;
    let unavailable = |e: parley_store::StoreError| {
        tracing::error!(error = %e, "a sign-in could not be recorded");
        SignInFailure::Unavailable
    };
    let account = auth.store().account_for(&identity, now).await.map_err(unavailable)?;
    if account.disabled {
        tracing::info!(account = %account.id, "a disabled account tried to sign in");
        return Err(SignInFailure::Disabled);
    }
    let current = req.extensions.get::<Arc<Resolved>>();
    let mut adopt = None;
    if let Some(current) = current {
        if current.account.is_some() && !current.via_proxy {
            // Signing in again (as the same person or another): the old sign-in ends.
            auth.store().end_sign_in(&current.principal.session).await.map_err(unavailable)?;
        } else if current.account.is_none() && !current.ended {
            adopt = Some(current.principal.owner());
        }
    }
    let session = SessionId::random();
    let agent = req.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let adopted = auth
        .store()
        .start_sign_in(
            &session,
            &account.id,
            agent,
            now,
            now.saturating_add(auth.ttl_ms()),
            adopt.as_ref(),
        )
        .await
        .map_err(unavailable)?;
    tracing::info!(account = %account.id, provider = %name, files = adopted.files, caches = adopted.caches, "signed in");
    Ok((session, flow.return_to))
}

/// The account's sign-in on this request, when it is one of Parley's (not a proxy's).
fn signed_in(req: &Request) -> Option<Arc<Resolved>> {
    req.extensions().get::<Arc<Resolved>>().filter(|r| r.account.is_some() && !r.via_proxy).cloned()
}

/// A 303 home with a new anonymous session.
fn signed_out(sessions: &Sessions, headers: &HeaderMap) -> Response {
    let mut res = see_other("/");
    let fresh = sessions.key.sign(SessionId::random().as_str());
    if let Some(cookie) = sessions.set_cookie(headers, &fresh) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

async fn sign_out(State(sessions): State<Arc<Sessions>>, req: Request) -> Response {
    if let Some(current) = signed_in(&req) {
        if let Err(e) = sessions.auth.store().end_sign_in(&current.principal.session).await {
            tracing::error!(error = %e, "a sign-out could not be recorded");
            return (StatusCode::SERVICE_UNAVAILABLE, "Signing out failed; please try again.")
                .into_response();
        }
        tracing::info!(account = ?current.principal.account.as_ref().map(|a| a.to_string()), "signed out");
    }
    signed_out(&sessions, req.headers())
}

async fn sign_out_everywhere(State(sessions): State<Arc<Sessions>>, req: Request) -> Response {
    if let Some(account) = signed_in(&req).and_then(|c| c.principal.account.clone()) {
        match sessions.auth.store().end_sign_ins(&account).await {
            Ok(ended) => tracing::info!(account = %account, ended, "signed out everywhere"),
            Err(e) => {
                tracing::error!(error = %e, "a sign-out could not be recorded");
                return (StatusCode::SERVICE_UNAVAILABLE, "Signing out failed; please try again.")
                    .into_response();
            }
        }
    }
    signed_out(&sessions, req.headers())
}

/// The page a signed-out visitor gets when signing in is required (401): a link per provider
/// ("Continue with `label`"), and why the last sign-in failed when `query` says so.
pub fn sign_in_page(auth: &Auth, query: Option<&str>) -> Response {
    let failure = query.and_then(SignInFailure::in_query);
    let alert = failure
        .map(|f| format!("<p role=\"alert\">{}</p>", escape(&f.to_string())))
        .unwrap_or_default();
    let links: String = auth
        .choices()
        .iter()
        .map(|p| {
            format!(
                "<li><a class=\"button\" href=\"/auth/login/{}\">Continue with {}</a></li>",
                escape(&p.name),
                escape(&p.label)
            )
        })
        .collect();
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Sign in · Parley</title></head><body>\
         <main><h1>Sign in to Parley</h1>{alert}<ul>{links}</ul></main></body></html>"
    );
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
        .into_response()
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/?c=1#x")), "/?c=1#x");
        for hostile in
            ["//evil.example", "/\\evil.example", "https://evil.example", "evil", "/a\nb", "/a\\b"]
        {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(local_path(None), "/");
    }
}
