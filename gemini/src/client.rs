//! The HTTP client, its configuration, and the mapping of Gemini's error envelope.

use std::{fmt, time::Duration};

use reqwest::{header::HeaderValue, Response};
use serde::Deserialize;
use url::Url;

use crate::{
    error::{Error, Result},
    types::{File, FileList},
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

impl ApiKey {
    /// The key to use, by precedence: `explicit`, else `configured`, else the
    /// `GEMINI_API_KEY` environment variable (`docs/gemini-protocol.md`:
    /// "explicit api_key arg > resolved project config > GEMINI_API_KEY"). Blank keys count
    /// as absent.
    ///
    /// # Errors
    /// [`Error::MissingCredentials`] when none of the three holds a key.
    pub fn resolve(explicit: Option<&str>, configured: Option<&str>) -> Result<ApiKey> {
        explicit
            .and_then(ApiKey::new)
            .or_else(|| configured.and_then(ApiKey::new))
            .or_else(|| std::env::var("GEMINI_API_KEY").ok().and_then(ApiKey::new))
            .ok_or(Error::MissingCredentials)
    }
}

/// Which kind of endpoint the client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Gemini itself (or the emulator): the key goes in `x-goog-api-key`, the resumable
    /// start in `upload/{version}/files`, and chunks follow `x-goog-upload-url` as given,
    /// without a key.
    Direct,
    /// An Azure API Management gateway in front of Gemini (ChatSphere's format,
    /// `docs/export-format.md`): the key is a subscription key in `Ocp-Apim-Subscription-Key` on
    /// every request, chunks included; the resumable start goes to `{base}/files`, and chunks go
    /// there too with only the query string of `x-goog-upload-url` (which still names
    /// googleapis.com).
    Gateway,
}

impl Mode {
    /// The header that carries the key.
    pub fn key_header(self) -> &'static str {
        match self {
            Mode::Direct => "x-goog-api-key",
            Mode::Gateway => "Ocp-Apim-Subscription-Key",
        }
    }
}

/// Retry policy for transient failures (429, 500, 502, 503, 504, connection failures and
/// timeouts). Defaults follow the Python SDK's `HttpRetryOptions` (1 s initial delay,
/// doubling, jittered; `docs/gemini-protocol.md`), capped lower for interactive use.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (4); zero disables retrying.
    pub max_retries: usize,
    /// First delay (1 s).
    pub min_delay: Duration,
    /// Cap on one delay (30 s). A server that asks for a longer wait (`RetryInfo`,
    /// `Retry-After`) is not retried: its error is returned at once.
    pub max_delay: Duration,
    /// Multiplier between delays (2).
    pub factor: f32,
    /// Randomise delays (full jitter on top of each delay, as backon does).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// The backon schedule of this policy.
    pub(crate) fn backoff(&self) -> backon::ExponentialBuilder {
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(if self.factor.is_finite() && self.factor >= 1.0 {
                self.factor
            } else {
                1.0
            })
            .with_max_times(self.max_retries);
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }

    /// The delay before retrying after `err`: the server's own delay when it gave one (or
    /// `None` when that exceeds `max_delay`), else the schedule's next one.
    pub(crate) fn delay_after(&self, err: &Error, scheduled: Option<Duration>) -> Option<Duration> {
        let scheduled = scheduled?;
        match err.retry_after() {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(asked),
            None => Some(scheduled),
        }
    }
}

/// Time limits on calls to Gemini.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// Establishing a connection (10 s).
    pub connect: Duration,
    /// A whole short call: `files.get` / `list` / `delete`, upload `start` and `query`, and a
    /// non-streamed `generateContent` up to its answer's headers (60 s).
    pub request: Duration,
    /// One upload chunk, up to 8 MiB (10 min: at least 14 kB/s).
    pub chunk: Duration,
    /// Silence between two reads of any answer, streamed ones included (5 min).
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: CONNECT_TIMEOUT,
            request: Duration::from_secs(60),
            chunk: Duration::from_secs(600),
            read: Duration::from_secs(300),
        }
    }
}

/// Where and how to reach Gemini.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://generativelanguage.googleapis.com`, or a gateway's
    /// `https://<name>.azure-api.net/gemini` (a path prefix is kept).
    pub base_url: Url,
    /// The key: a Gemini API key in direct mode, a subscription key in gateway mode.
    pub api_key: ApiKey,
    /// Direct or gateway.
    pub mode: Mode,
    /// API version path segment: `v1beta` (the docs' default) or `v1`.
    pub api_version: String,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl ClientConfig {
    /// Direct mode against `base_url` with `v1beta`.
    pub fn new(base_url: Url, api_key: ApiKey) -> Self {
        ClientConfig {
            base_url,
            api_key,
            mode: Mode::Direct,
            api_version: "v1beta".into(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Gateway mode: `gateway_url` such as `https://<name>.azure-api.net/gemini` and its
    /// subscription key.
    pub fn gateway(gateway_url: Url, subscription_key: ApiKey) -> Self {
        ClientConfig { mode: Mode::Gateway, ..ClientConfig::new(gateway_url, subscription_key) }
    }
}

/// How long establishing a connection to Gemini may take: 10 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Gemini REST client. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) config: ClientConfig,
}

impl Client {
    /// A client for `config`, with its connect and read timeouts.
    ///
    /// # Errors
    /// [`Error::Transport`] when the TLS backend cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("parley-gemini/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeouts.connect)
            .read_timeout(config.timeouts.read)
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

    /// `{base}/{version}/{collection}/{item}{suffix}`, `item` percent-encoded as one path
    /// segment (a `/` or `?` in it cannot reach another resource).
    pub(crate) fn item_url(&self, collection: &str, item: &str, suffix: &str) -> Result<Url> {
        let mut url = self.api_url(collection)?;
        url.path_segments_mut()
            .map_err(|()| Error::Protocol(format!("bad URL for {collection}")))?
            .push(&format!("{item}{suffix}"));
        Ok(url)
    }

    /// A request with the key header (and the short-call timeout unless `long`).
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder> {
        let mut value = HeaderValue::from_str(self.config.api_key.expose())
            .map_err(|_| Error::MissingCredentials)?;
        value.set_sensitive(true);
        Ok(self.http.request(method, url).header(self.config.mode.key_header(), value))
    }

    /// Runs `call` with the retry policy: transient failures ([`Error::is_transient`]) are
    /// retried after the schedule's delay or the server's `RetryInfo` / `Retry-After`.
    pub(crate) async fn with_retries<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        use backon::Retryable;
        let policy = &self.config.retry;
        let started = std::time::Instant::now();
        let outcome = call
            .retry(policy.backoff())
            .when(Error::is_transient)
            .adjust(|err, scheduled| policy.delay_after(err, scheduled))
            .notify(|err, delay| tracing::warn!(call = what, error = %err, ?delay, "retrying a Gemini call"))
            .await;
        // One line a call (never its URL or key), in the span of the request that made it.
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &outcome {
            Ok(_) => tracing::info!(call = what, ms, "gemini call answered"),
            Err(e) => tracing::info!(call = what, ms, error = %e, "gemini call failed"),
        }
        outcome
    }

    /// One JSON call: `method url` with `body` as JSON (when given), the client's request
    /// timeout, transient failures retried ([`Client::with_retries`]; `what` names the call in
    /// logs), the answer decoded as `T`.
    pub(crate) async fn call_json<T, B>(
        &self,
        what: &'static str,
        method: reqwest::Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T>
    where
        T: serde::de::DeserializeOwned,
        B: serde::Serialize + ?Sized,
    {
        self.with_retries(what, || async {
            let mut request =
                self.request(method.clone(), url.clone())?.timeout(self.config.timeouts.request);
            if let Some(body) = body {
                request = request.json(body);
            }
            json(check(request.send().await?).await?).await
        })
        .await
    }

    /// `DELETE url` (Gemini answers `{}`), with the client's request timeout, transient
    /// failures retried as [`Client::call_json`]'s are.
    pub(crate) async fn delete_item(&self, what: &'static str, url: Url) -> Result<()> {
        self.with_retries(what, || async {
            let res = self
                .request(reqwest::Method::DELETE, url.clone())?
                .timeout(self.config.timeouts.request)
                .send()
                .await?;
            check(res).await.map(drop)
        })
        .await
    }

    /// `files.get`: the File resource, unwrapped
    /// (<https://ai.google.dev/api/files#method:-files.get>).
    ///
    /// `name` may be `files/abc`, `abc`, or the File's full `uri`. Transient failures are
    /// retried.
    ///
    /// # Errors
    /// [`Error::Api`] — 403 `PERMISSION_DENIED` for a missing, expired or foreign File.
    pub async fn get_file(&self, name: &str) -> Result<File> {
        let url = self.api_url(&format!("files/{}", bare_id(name)))?;
        self.call_json("files.get", reqwest::Method::GET, url, None::<&()>).await
    }

    /// `files.delete` (200 with `{}` on Gemini). Transient failures are retried.
    ///
    /// # Errors
    /// [`Error::Api`] as for [`Client::get_file`].
    pub async fn delete_file(&self, name: &str) -> Result<()> {
        let url = self.api_url(&format!("files/{}", bare_id(name)))?;
        self.delete_item("files.delete", url).await
    }

    /// `files.list`: one page of the caller's Files
    /// (<https://ai.google.dev/api/files#method:-files.list>). `page_size` is 1–100 (Gemini's
    /// default when `None`: 10).
    ///
    /// # Errors
    /// [`Error::Api`] for a bad page token or key.
    pub async fn list_files(
        &self,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<FileList> {
        let mut url = self.api_url("files")?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(n) = page_size {
                query.append_pair("pageSize", &n.to_string());
            }
            if let Some(t) = page_token.filter(|t| !t.is_empty()) {
                query.append_pair("pageToken", t);
            }
        }
        let url = Url::parse(url.as_str().trim_end_matches('?'))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        self.call_json("files.list", reqwest::Method::GET, url, None::<&()>).await
    }

    /// Every File of the caller, following `nextPageToken` through all pages (100 per page).
    ///
    /// # Errors
    /// As [`Client::list_files`].
    pub async fn list_all_files(&self) -> Result<Vec<File>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_files(Some(100), token.as_deref()).await?;
            all.extend(page.files);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(all),
            }
        }
    }
}

/// `url` with the given query pairs appended, those whose value is `None` or empty left
/// out (and no bare `?` when none is left).
pub(crate) fn with_query(mut url: Url, pairs: &[(&str, Option<&str>)]) -> Url {
    let present: Vec<(&str, &str)> =
        pairs.iter().filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v))).collect();
    if !present.is_empty() {
        url.query_pairs_mut().extend_pairs(present);
    }
    url
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
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// Passes a 2xx response through; turns anything else into [`Error::Api`].
pub(crate) async fn check(res: Response) -> Result<Response> {
    let code = res.status();
    if code.is_success() {
        return Ok(res);
    }
    let retry_after = retry_after_header(&res);
    let body = res.text().await.unwrap_or_default();
    Err(api_error(code.as_u16(), &body, retry_after))
}

/// `Retry-After` in its delay-seconds form (RFC 9110 §10.2.3).
pub(crate) fn retry_after_header(res: &Response) -> Option<Duration> {
    let value = res.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// [`Error::Api`] from a status code, an error body (Gemini's envelope or a gateway's) and
/// a `Retry-After` header. A `google.rpc.RetryInfo` detail (`"retryDelay": "15s"`) wins over
/// the header.
pub(crate) fn api_error(code: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed: Option<Envelope> = serde_json::from_str(body).ok();
    let (status, message, details) = match parsed {
        Some(Envelope { error: Some(e), .. }) => (e.status, e.message, e.details),
        Some(Envelope { message: Some(m), .. }) => (String::new(), m, Vec::new()),
        _ => (String::new(), body.chars().take(300).collect(), Vec::new()),
    };
    let retry_info = details.iter().find_map(|d| {
        let delay = d.get("retryDelay")?.as_str()?;
        proto_duration(delay)
    });
    Error::Api { code, status, message, retry_after: retry_info.or(retry_after) }
}

/// A proto Duration's JSON text, `"15s"` or `"0.5s"`.
fn proto_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (0.0..1e9).contains(&secs).then(|| Duration::from_secs_f64(secs))
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
        let gemini = api_error(
            403,
            r#"{"error":{"code":403,"message":"nope","status":"PERMISSION_DENIED"}}"#,
            None,
        );
        assert!(
            matches!(gemini, Error::Api { code: 403, ref status, ref message, .. } if status == "PERMISSION_DENIED" && message == "nope")
        );
        let apim = api_error(401, r#"{"statusCode":401,"message":"Access denied"}"#, None);
        assert!(
            matches!(apim, Error::Api { code: 401, ref message, .. } if message == "Access denied")
        );
    }

    #[test]
    fn retry_info_wins_over_retry_after() {
        let body = r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.25s"}]}}"#;
        let err = api_error(429, body, Some(Duration::from_secs(9)));
        assert_eq!(err.retry_after(), Some(Duration::from_millis(250)));
        let bare = api_error(503, "overloaded", Some(Duration::from_secs(2)));
        assert_eq!(bare.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(proto_duration("-1s"), None);
    }
}
