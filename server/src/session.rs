//! Anonymous browser sessions: a random id in the `parley_session` cookie, signed with
//! HMAC-SHA-256 (`{id}.{mac}`, both hex; HttpOnly, SameSite=Lax), put in every request's
//! extensions as the [`app::server::Principal`] it acts for. It is what owns uploads: a
//! principal can only use its own Files. A cookie whose signature does not verify is replaced
//! by a new session, so an id cannot be guessed or forged into someone else's. Over HTTPS (behind a trusted proxy saying
//! so) the cookie is `__Host-parley_session`, `Secure`: the prefix keeps a sibling subdomain
//! from planting its own session cookie on this site.
//!
//! A session starts (its cookie is set) only on a page or a server function that answered
//! (2xx) a `GET`, `HEAD` or `POST`: static files, error pages, refusals, preflights
//! (`OPTIONS`) and shared links' pages (`/s/…`) get none.
//!
//! The signing key comes from `PARLEY_SESSION_SECRET`, or is generated once into
//! `{data dir}/session.key` (mode 0600), so that sessions survive restarts.

use std::{future::Future, path::Path, sync::Arc};

use std::net::SocketAddr;

use app::error::AppError;
use axum::{
    extract::{ConnectInfo, Request},
    http::{header, HeaderValue, Method},
    response::{IntoResponse, Response},
};
use hmac::{Hmac, Mac};
use parley_store::SessionId;

use crate::{auth::Auth, guard::Refusal};
use rand::Rng;
use sha2::Sha256;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "parley_session";

/// The cookie's name over HTTPS (browsers take it only `Secure`, for `/`, without `Domain`).
pub const SECURE_COOKIE: &str = "__Host-parley_session";

/// The prefix of a signed-in session's cookie payload.
const SIGNED_IN: &str = "in.";

/// A year, seconds: how long the browser keeps the cookie.
const MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// Shortest `PARLEY_SESSION_SECRET` accepted, bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The key that signs session cookies. `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

/// Why the session key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    /// `PARLEY_SESSION_SECRET` is too short to be a key.
    #[error("PARLEY_SESSION_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    /// The generated key could not be read or written in the data directory.
    #[error("the session key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

impl SessionKey {
    /// The configured secret, else the one in `{data_dir}/session.key` (generated there, 32
    /// random bytes as hex, on first start).
    ///
    /// # Errors
    /// [`SessionKeyError`] for a short secret or an unreadable/unwritable key file.
    pub fn load(secret: Option<&str>, data_dir: &Path) -> Result<Self, SessionKeyError> {
        if let Some(secret) = secret.filter(|s| !s.trim().is_empty()) {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(SessionKeyError::TooShort);
            }
            return Ok(SessionKey(Arc::from(secret.as_bytes())));
        }
        let path = data_dir.join("session.key");
        let failed = |source| SessionKeyError::File { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().len() >= 2 * MIN_SECRET_BYTES => {
                return Ok(SessionKey(Arc::from(text.trim().as_bytes())))
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "the session key file is too short; making a new one")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
        std::fs::create_dir_all(data_dir).map_err(failed)?;
        let key = hex::encode(rand::rng().random::<[u8; 32]>());
        write_private(&path, &key).map_err(failed)?;
        Ok(SessionKey(Arc::from(key.as_bytes())))
    }

    /// A key from bytes (tests).
    #[cfg(test)]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SessionKey(Arc::from(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// A key for another `purpose` (e.g. signing summaries), derived from this one:
    /// HMAC-SHA-256 of the purpose under the secret. The secret itself signs only cookies.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"parley derived key\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for session `id`: `{id}.{hex HMAC-SHA-256 of id}`.
    pub fn sign(&self, id: &str) -> String {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        format!("{id}.{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The cookie value of a signed-in session `id`: `in.{id}.{mac}`, the MAC covering
    /// `in.{id}` (so an anonymous cookie cannot be turned into one that claims a sign-in).
    pub fn sign_signed_in(&self, id: &str) -> String {
        self.sign(&format!("{SIGNED_IN}{id}"))
    }

    /// The session id of a cookie value, when it is well formed (32 hex digits) and its
    /// signature verifies (compared in constant time); the flag says whether it claims a
    /// sign-in (`in.` form — the store decides whether that sign-in is live).
    pub fn verify(&self, value: &str) -> Option<(SessionId, bool)> {
        let (payload, signature) = value.rsplit_once('.')?;
        let (id, signed_in) = match payload.strip_prefix(SIGNED_IN) {
            Some(id) => (id, true),
            None => (payload, false),
        };
        let session = SessionId::parse(id).filter(|s| s.as_str() == id)?;
        let signature = hex::decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        Some((session, signed_in))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The values of the `name` cookies of a request, in order.
pub(crate) fn from_cookies<'a>(
    headers: &'a axum::http::HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for one of the site's cookies: `name=value`, for the whole site,
/// `max_age` seconds (0 removes it), HttpOnly, SameSite=Lax, and `Secure` over HTTPS.
pub(crate) fn cookie_header(
    name: &str,
    secure: bool,
    value: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let flag = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{flag}"
    ))
    .ok()
}

/// How sessions are kept: the signing key, whether `X-Forwarded-Proto` is believed, and who
/// is signed in ([`Auth`]).
#[derive(Debug, Clone)]
pub struct Sessions {
    /// Signs and verifies the cookie.
    pub key: SessionKey,
    /// Behind a trusted proxy (`--trust-proxy`).
    pub trust_proxy: bool,
    /// Sign-ins.
    pub auth: Arc<Auth>,
}

impl Sessions {
    /// The cookie's name on this request (`__Host-` over HTTPS).
    pub fn cookie_name(&self, headers: &axum::http::HeaderMap) -> &'static str {
        self.named(headers, COOKIE, SECURE_COOKIE)
    }

    /// `plain` over HTTP, `secure` (a `__Host-` name) over HTTPS: the name of one of the site's
    /// cookies on a request with `headers`.
    pub fn named(
        &self,
        headers: &axum::http::HeaderMap,
        plain: &'static str,
        secure: &'static str,
    ) -> &'static str {
        if crate::guard::is_https(headers, self.trust_proxy) {
            secure
        } else {
            plain
        }
    }

    /// The `Set-Cookie` value giving the browser `value` as its session cookie, on a request
    /// with `headers`.
    pub fn set_cookie(&self, headers: &axum::http::HeaderMap, value: &str) -> Option<HeaderValue> {
        self.set_cookie_on(crate::guard::is_https(headers, self.trust_proxy), value)
    }

    /// [`Sessions::set_cookie`] for a request known to be over HTTPS (`secure`) or not.
    fn set_cookie_on(&self, secure: bool, value: &str) -> Option<HeaderValue> {
        let name = if secure { SECURE_COOKIE } else { COOKIE };
        cookie_header(name, secure, value, MAX_AGE_SECS)
    }

    /// The request's session cookie, verified: its id, and whether it claims a sign-in.
    pub fn cookie(&self, req: &Request) -> Option<(SessionId, bool)> {
        let name = self.cookie_name(req.headers());
        from_cookies(req.headers(), name).find_map(|value| self.key.verify(value))
    }
}

/// Paths a signed-out request may reach when signing in is required: the sign-in routes, the
/// static files the sign-in page uses, and the health probes.
fn open_when_required(path: &str) -> bool {
    path.starts_with(crate::auth::AUTH_PREFIX)
        || path.starts_with("/pkg/")
        || matches!(path, "/healthz" | "/readyz" | "/favicon.ico" | "/favicon.svg")
}

/// Gives the request its [`parley_store::Principal`] (and what the page shows of signing in), creating a
/// session when it has none, its cookie does not verify, or its sign-in has ended; a new
/// session's signed cookie is set on a page or a server function's answer. With sign-in
/// required, a signed-out request for anything but signing in is refused: a page gets the
/// sign-in page, a server function 401.
pub async fn sessions<F: Future<Output = Response>>(
    sessions: &Sessions,
    mut req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let existing = sessions.cookie(&req);
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let auth = &sessions.auth;
    let resolved = match auth.resolve(existing.clone(), peer, req.headers()).await {
        Ok(resolved) => resolved,
        Err(e) => return Refusal(e).into_response(),
    };
    let path = req.uri().path();
    let api = path.starts_with(app::api::API_PREFIX);
    if auth.required() && resolved.account.is_none() && !open_when_required(path) {
        return if api {
            Refusal(AppError::SignInRequired).into_response()
        } else {
            crate::auth::routes::sign_in_page(auth, req.uri().query())
        };
    }
    // A preflight, or any method a page or server function does not answer, starts nothing.
    // A shared link's page (`/s/…`) is read by anyone with the link: it keeps nothing for them.
    let starts = matches!(*req.method(), Method::GET | Method::HEAD | Method::POST)
        && !req.uri().path().starts_with("/s/");
    let fresh = existing.is_none() || resolved.ended;
    let id = resolved.principal.session.clone();
    let secure = crate::guard::is_https(req.headers(), sessions.trust_proxy);
    req.extensions_mut().insert(auth.view(&resolved));
    req.extensions_mut().insert(resolved.principal.clone());
    req.extensions_mut().insert(Arc::new(resolved));
    let mut res = next(req).await;
    let page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    // Only an answer starts a session: a refusal (a rate limit, a bad request, a failure) keeps
    // nothing for the browser, so it gets no cookie to keep. The sign-in routes set their own.
    if fresh && starts && res.status().is_success() && (api || page) {
        if let Some(value) = sessions.set_cookie_on(secure, &sessions.key.sign(id.as_str())) {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signed_ids_are_accepted() {
        let key = SessionKey::from_bytes(&[7; 32]);
        let id = "0123456789abcdef0123456789abcdef";
        let cookie = key.sign(id);
        assert_eq!(key.verify(&cookie), SessionId::parse(id).map(|s| (s, false)));
        let signed_in = key.sign_signed_in(id);
        assert_eq!(key.verify(&signed_in), SessionId::parse(id).map(|s| (s, true)));
        let claimed = format!("in.{cookie}");
        assert_eq!(key.verify(&claimed), None, "an anonymous cookie cannot claim a sign-in");
        assert_eq!(key.verify(id), None, "an unsigned id (the old cookie form)");
        let forged = format!("fedcba9876543210fedcba9876543210{}", &cookie[32..]);
        assert_eq!(key.verify(&forged), None, "another id with this signature");
        assert_eq!(SessionKey::from_bytes(&[8; 32]).verify(&cookie), None, "another key");
        assert_eq!(key.verify(&format!("{id}.zz")), None);
        assert_eq!(key.verify(""), None);
        assert!(!format!("{key:?}").contains('7'));
        let derived = key.derive("parley:summaries");
        assert_eq!(derived, key.derive("parley:summaries"));
        assert_ne!(derived, key.derive("parley:other"));
        assert_ne!(derived, SessionKey::from_bytes(&[8; 32]).derive("parley:summaries"));
    }

    #[test]
    fn the_key_is_configured_or_generated_once_into_the_data_dir() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        assert!(matches!(SessionKey::load(Some("short"), &dir), Err(SessionKeyError::TooShort)));
        let configured = SessionKey::load(Some(&"s".repeat(32)), &dir).unwrap();
        assert!(!dir.join("session.key").exists(), "a configured secret writes nothing");
        let generated = SessionKey::load(None, &dir).unwrap();
        let again = SessionKey::load(None, &dir).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            again.verify(&generated.sign(id)).map(|(s, _)| s.to_string()).as_deref(),
            Some(id),
            "the same key after a restart"
        );
        assert_eq!(configured.verify(&generated.sign(id)), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("session.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
