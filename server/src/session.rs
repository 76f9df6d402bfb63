//! Anonymous browser sessions: a random id in the `parley_session` cookie (HttpOnly,
//! SameSite=Lax, Secure behind https), put in every request's extensions as
//! [`app::server::Session`]. It is what owns uploads: a session can only use its own Files.

use app::server::Session;
use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};
use rand::Rng;

/// The cookie's name.
pub const COOKIE: &str = "parley_session";

/// A year, seconds: how long the browser keeps the cookie.
const MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// The session id of a `Cookie` header, when it holds a well-formed one (32 hex digits).
fn from_cookies(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Gives the request its session, creating one (and its cookie) when it has none.
pub async fn sessions(mut req: Request, next: Next) -> Response {
    let existing = from_cookies(&req);
    let id = existing.clone().unwrap_or_else(|| hex::encode(rand::rng().random::<[u8; 16]>()));
    let secure = req.headers().get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    req.extensions_mut().insert(Session(id.clone()));
    let mut res = next.run(req).await;
    if existing.is_none() {
        let cookie = format!(
            "{COOKIE}={id}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Lax{}",
            if secure { "; Secure" } else { "" }
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    res
}
