//! The REST routes, under `/{version}` for `v1`, `v1beta` and `v1alpha`; the same routes
//! behind a gateway prefix in gateway mode; the control surface under `/_emulator`.

mod answer;
mod caching;
mod control;
mod files;
mod generate;
mod models;
mod tokens;
mod upload;

pub use upload::is_supported;

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Query},
    http::{request::Parts, HeaderMap, Method},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Router,
};
use serde_json::Value;

use crate::{
    error::{ApiError, GatewayError},
    faults::{FaultKind, Route},
    serve::Connection,
    state::{LoggedRequest, State},
};

/// Largest JSON body of a generate, `countTokens` or cache create (64 MiB: inline data).
const JSON_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// API versions served, as path segments.
const VERSIONS: [&str; 3] = ["v1", "v1beta", "v1alpha"];

/// Where the emulator's gateway mode says Files live, as real Gemini behind Azure API
/// Management does (`docs/gemini-protocol.md`).
pub const GOOGLE_BASE: &str = "https://generativelanguage.googleapis.com";

/// How a request reached the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Gemini's own surface: `x-goog-api-key`.
    Direct,
    /// Through the gateway prefix: `Ocp-Apim-Subscription-Key`.
    Gateway,
}

pub fn router(state: Arc<State>) -> Router {
    let mut router = api_routes();
    if let Some(gateway) = &state.config.gateway {
        let behind = api_routes()
            .route("/files", post(upload::gateway_files).layer(DefaultBodyLimit::disable()))
            .layer(Extension(Via::Gateway));
        router = router.nest(&gateway.prefix, behind);
    }
    if state.config.control {
        router = router.nest("/_emulator", control::routes());
    }
    router
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn(crate::wire::enum_encoding))
        .with_state(state)
}

fn api_routes() -> Router<Arc<State>> {
    Router::new()
        .route("/upload/{version}/files", post(upload::upload).layer(DefaultBodyLimit::disable()))
        .route("/{version}/files", get(files::list))
        .route("/{version}/files/{id}", get(files::get).delete(files::delete))
        .route("/{version}/models", get(models::list))
        .route(
            "/{version}/models/{call}",
            get(models::get).post(generate::call).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route(
            "/{version}/cachedContents",
            get(caching::list).post(caching::create).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route(
            "/{version}/cachedContents/{id}",
            get(caching::get).patch(caching::update).delete(caching::delete),
        )
}

fn check_version(version: &str) -> Result<(), ApiError> {
    VERSIONS.contains(&version).then_some(()).ok_or_else(ApiError::not_found)
}

/// What every handler needs to know about its request.
pub struct Ctx {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub via: Via,
    /// The connection, when served by [`crate::serve::serve`] (needed to drop it).
    pub connection: Option<Connection>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_string(), |u| u.path().to_string());
        let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        Ok(Ctx {
            method: parts.method.clone(),
            path,
            query,
            headers: parts.headers.clone(),
            via: parts.extensions.get::<Via>().copied().unwrap_or(Via::Direct),
            connection: parts.extensions.get::<Connection>().cloned(),
        })
    }
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
    }

    /// The model a request names in its path (`…/models/{model}:{method}`), if any.
    pub fn model(&self) -> Option<&str> {
        let (_, rest) = self.path.rsplit_once("/models/")?;
        Some(rest.split(':').next().unwrap_or(rest))
    }

    /// The API key of a request: `x-goog-api-key`, else `?key=`.
    fn api_key(&self) -> Option<&str> {
        self.header("x-goog-api-key")
            .or_else(|| self.query.get("key").map(String::as_str))
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// The gateway subscription key: `Ocp-Apim-Subscription-Key`, else `?subscription-key=`.
    fn subscription_key(&self) -> Option<&str> {
        self.header("ocp-apim-subscription-key")
            .or_else(|| self.query.get("subscription-key").map(String::as_str))
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// A log entry for this request; callers fill in the body fields.
    pub fn entry(&self) -> LoggedRequest {
        LoggedRequest {
            method: self.method.to_string(),
            path: self.path.clone(),
            upload_command: None,
            upload_offset: None,
            body_bytes: 0,
            json: None,
            had_api_key: self.api_key().is_some(),
            had_subscription_key: self.subscription_key().is_some(),
            fault: None,
        }
    }

    /// The gateway's check alone: behind the prefix a valid subscription key is required.
    pub fn check_gateway(&self, state: &State) -> Result<(), Refusal> {
        if self.via != Via::Gateway {
            return Ok(());
        }
        let expected = state.config.gateway.as_ref().map(|g| g.key.as_str());
        match self.subscription_key() {
            None => Err(GatewayError::MissingKey.into()),
            Some(k) if Some(k) != expected => Err(GatewayError::InvalidKey.into()),
            Some(_) => Ok(()),
        }
    }

    /// The caller's identity: behind the gateway, the gateway's own backend identity (the
    /// gateway injects one Google key for all its subscribers); directly, the API key — 403
    /// without one, 400 with a key other than the configured one
    /// (`docs/gemini-protocol.md`).
    pub fn caller(&self, state: &State) -> Result<String, Refusal> {
        if self.via == Via::Gateway {
            self.check_gateway(state)?;
            return Ok("gateway backend".to_string());
        }
        let key = self.api_key().ok_or_else(ApiError::unregistered_caller)?;
        match &state.config.api_key {
            Some(expected) if expected != key => Err(ApiError::invalid_key().into()),
            _ => Ok(format!("key {key}")),
        }
    }

    /// `{scheme}://{host}{gateway prefix}` for URLs the emulator hands out about itself, or
    /// Google's own base behind the gateway.
    pub fn public_base(&self) -> String {
        if self.via == Via::Gateway {
            return GOOGLE_BASE.to_string();
        }
        let host = self.header("host").unwrap_or("localhost");
        let scheme = self.header("x-forwarded-proto").unwrap_or("http");
        format!("{scheme}://{host}")
    }
}

/// Why a request is refused: Gemini's envelope, or the gateway's own 401.
#[derive(Debug)]
pub enum Refusal {
    Api(ApiError),
    Gateway(GatewayError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<GatewayError> for Refusal {
    fn from(e: GatewayError) -> Self {
        Refusal::Gateway(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Gateway(e) => e.into_response(),
        }
    }
}

/// Logs the request (with its JSON body, if any), takes its fault, and answers for the fault
/// when it decides the answer.
pub async fn begin(
    state: &State,
    ctx: &Ctx,
    route: Route,
    body: Option<(Value, usize)>,
) -> Result<Option<FaultKind>, Response> {
    let fault = state.take_fault(route);
    let mut entry = ctx.entry();
    entry.fault = fault.as_ref().map(fault_name);
    if let Some((json, len)) = body {
        entry.json = Some(json);
        entry.body_bytes = len;
    }
    state.record(entry);
    if let Some(f) = &fault {
        if let Some(res) = fault_response(ctx, f).await {
            return Err(res);
        }
    }
    Ok(fault)
}

/// One page of a list: `{key: [...], "nextPageToken": "…"}` in that order, `{}` when empty
/// (as Gemini writes an empty list).
pub struct Page<R> {
    key: &'static str,
    items: Vec<R>,
    next_page_token: Option<String>,
}

impl<R: serde::Serialize> serde::Serialize for Page<R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if !self.items.is_empty() {
            map.serialize_entry(self.key, &self.items)?;
        }
        if let Some(token) = &self.next_page_token {
            map.serialize_entry("nextPageToken", token)?;
        }
        map.end()
    }
}

/// One [`Page`] of `items`, from `?pageSize` (default `default`, at most `max`) and
/// `?pageToken` (the offset, as the emulator's tokens are).
///
/// # Errors
/// 400 for a `pageSize` that is not a number or a token the emulator did not give.
pub fn paged<T, R>(
    ctx: &Ctx,
    items: &[T],
    (default, max): (usize, usize),
    key: &'static str,
    resource: impl Fn(&T) -> R,
) -> Result<Page<R>, ApiError> {
    let size = match ctx.query.get("pageSize").or_else(|| ctx.query.get("page_size")) {
        None => default,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| ApiError::invalid_argument("Invalid value for pageSize."))?
            .clamp(1, max),
    };
    let token = ctx.query.get("pageToken").or_else(|| ctx.query.get("page_token"));
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => {
            t.parse::<usize>().map_err(|_| ApiError::invalid_argument("Invalid page token."))?
        }
    };
    let page: Vec<R> = items.iter().skip(start).take(size).map(resource).collect();
    let next_page_token =
        (start.saturating_add(size) < items.len()).then(|| (start + size).to_string());
    Ok(Page { key, items: page, next_page_token })
}

/// The answer to a request hit by `fault`, or `None` when the request should go on (after
/// a hang, or for faults that only shape the normal answer).
pub async fn fault_response(ctx: &Ctx, fault: &FaultKind) -> Option<Response> {
    match fault {
        FaultKind::RateLimited { retry_delay } => Some(
            ApiError::rate_limited(ctx.model().unwrap_or("gemini-2.5-flash"), *retry_delay)
                .into_response(),
        ),
        FaultKind::Internal => Some(ApiError::internal().into_response()),
        FaultKind::Unavailable => Some(ApiError::unavailable().into_response()),
        FaultKind::Drop => Some(drop_connection(ctx).await),
        FaultKind::Hang { hang_for } => {
            tokio::time::sleep(*hang_for).await;
            None
        }
        FaultKind::Forbidden { file, prefixed } => {
            let id = file.clone().unwrap_or_else(|| "unknown".into());
            let id = if *prefixed { format!("files/{id}") } else { id };
            Some(ApiError::file_inaccessible(&id).into_response())
        }
        FaultKind::Malformed => Some(crate::wire::ok(serde_json::json!({})).into_response()),
        FaultKind::StateAlias | FaultKind::SlowStream { .. } => None,
    }
}

/// Closes the request's connection without an answer. Outside the emulator's own serve
/// loop (a router mounted elsewhere) the nearest thing is an answer whose body breaks off.
pub async fn drop_connection(ctx: &Ctx) -> Response {
    if let Some(conn) = &ctx.connection {
        conn.drop_now().await;
    }
    let broken = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::other("dropped"))
    });
    axum::body::Body::from_stream(broken).into_response()
}

/// The name of a fault, for the request log.
pub fn fault_name(fault: &FaultKind) -> String {
    let value = serde_json::to_value(fault).unwrap_or(Value::Null);
    value.get("kind").and_then(Value::as_str).unwrap_or("fault").to_string()
}

/// A JSON field under either of its proto3 names (`file_data` / `fileData`).
pub(crate) fn either<'a>(value: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    value.get(snake).or_else(|| value.get(camel))
}
