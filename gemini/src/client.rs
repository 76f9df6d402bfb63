//! The HTTP client, its configuration, and the mapping of Gemini's error envelope.

use std::fmt;

use reqwest::{header::HeaderValue, Response};
use serde::Deserialize;
use url::Url;

use crate::{
    error::{Error, Result},
    types::File,
};

/// An API key. `Debug` and `Display` print `[redacted]`, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; `None` when it is empty or only whitespace.
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into();
        (!key.trim().is_empty()).then(|| ApiKey(key.trim().to_string()))
    }

    /// The key itself, for the one place that puts it in a header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Where and how to reach Gemini.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://generativelanguage.googleapis.com` (a path prefix is kept).
    pub base_url: Url,
    /// Sent as `x-goog-api-key` on every call except upload chunks.
    pub api_key: ApiKey,
    /// API version path segment: `v1beta` (the docs' default) or `v1`.
    pub api_version: String,
}

impl ClientConfig {
    /// Direct mode against `base_url` with `v1beta`.
    pub fn new(base_url: Url, api_key: ApiKey) -> Self {
        ClientConfig { base_url, api_key, api_version: "v1beta".into() }
    }
}

/// How long establishing a connection to Gemini may take: 10 s.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A Gemini REST client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) config: ClientConfig,
}

impl Client {
    /// A client for `config`. Connections time out after [`CONNECT_TIMEOUT`]; a request
    /// that is under way is not cut short (uploads and streamed answers can be long).
    ///
    /// # Errors
    /// [`Error::Transport`] when the TLS backend cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("parley-gemini/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Client { http, config })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `{base}/{path}`, keeping any path prefix of the base URL.
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        let base = self.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{}", path.trim_start_matches('/')))
            .map_err(|e| Error::Protocol(format!("bad URL for {path}: {e}")))
    }

    /// `{base}/{version}/{path}`.
    pub(crate) fn api_url(&self, path: &str) -> Result<Url> {
        self.url(&format!("{}/{}", self.config.api_version, path))
    }

    pub(crate) fn key_header(&self) -> Result<HeaderValue> {
        let mut value = HeaderValue::from_str(self.config.api_key.expose())
            .map_err(|_| Error::MissingCredentials)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `files.get`: the File resource, unwrapped (<https://ai.google.dev/api/files#method:-files.get>).
    ///
    /// `name` may be `files/abc`, `abc`, or the File's full `uri`.
    ///
    /// # Errors
    /// [`Error::Api`] — 403 `PERMISSION_DENIED` for a missing, expired or foreign File.
    pub async fn get_file(&self, name: &str) -> Result<File> {
        let url = self.api_url(&format!("files/{}", bare_id(name)))?;
        let res = self.http.get(url).header("x-goog-api-key", self.key_header()?).send().await?;
        json(check(res).await?).await
    }

    /// `files.delete` (200 with `{}` on Gemini).
    ///
    /// # Errors
    /// [`Error::Api`] as for [`Client::get_file`].
    pub async fn delete_file(&self, name: &str) -> Result<()> {
        let url = self.api_url(&format!("files/{}", bare_id(name)))?;
        let res = self.http.delete(url).header("x-goog-api-key", self.key_header()?).send().await?;
        check(res).await.map(drop)
    }
}

/// `abc` from `files/abc`, `abc` or `https://…/files/abc`.
fn bare_id(name: &str) -> &str {
    let tail = name.rsplit_once("/files/").map(|(_, t)| t).unwrap_or(name);
    tail.strip_prefix("files/").unwrap_or(tail)
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<EnvelopeError>,
    /// API gateways (Azure APIM) answer `{"statusCode", "message"}` instead.
    message: Option<String>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// Passes a 2xx response through; turns anything else into [`Error::Api`].
pub(crate) async fn check(res: Response) -> Result<Response> {
    let code = res.status();
    if code.is_success() {
        return Ok(res);
    }
    let body = res.text().await.unwrap_or_default();
    Err(api_error(code.as_u16(), &body))
}

/// [`Error::Api`] from a status code and an error body (Gemini's envelope or a gateway's).
pub(crate) fn api_error(code: u16, body: &str) -> Error {
    let parsed: Option<Envelope> = serde_json::from_str(body).ok();
    let (status, message) = match parsed {
        Some(Envelope { error: Some(e), .. }) => (e.status, e.message),
        Some(Envelope { message: Some(m), .. }) => (String::new(), m),
        _ => (String::new(), body.chars().take(300).collect()),
    };
    Error::Api { code, status, message }
}

pub(crate) async fn json<T: serde::de::DeserializeOwned>(res: Response) -> Result<T> {
    let bytes = res.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("  sk-secret ").unwrap();
        assert_eq!(key.expose(), "sk-secret");
        assert!(!format!("{key:?}").contains("secret"));
        assert!(ApiKey::new("   ").is_none());
    }

    #[test]
    fn bare_id_accepts_every_form() {
        assert_eq!(bare_id("files/abc"), "abc");
        assert_eq!(bare_id("abc"), "abc");
        assert_eq!(bare_id("https://generativelanguage.googleapis.com/v1beta/files/abc"), "abc");
    }

    #[test]
    fn error_bodies_of_gemini_and_gateways() {
        let gemini = api_error(403, r#"{"error":{"code":403,"message":"nope","status":"PERMISSION_DENIED"}}"#);
        assert!(matches!(gemini, Error::Api { code: 403, ref status, ref message } if status == "PERMISSION_DENIED" && message == "nope"));
        let apim = api_error(401, r#"{"statusCode":401,"message":"Access denied"}"#);
        assert!(matches!(apim, Error::Api { code: 401, ref message, .. } if message == "Access denied"));
    }
}
