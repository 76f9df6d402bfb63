//! The REST routes, under `/{version}` for `v1`, `v1beta` and `v1alpha`.

mod files;
mod generate;
mod upload;

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    http::HeaderMap,
    routing::{get, post},
    Router,
};

use serde_json::Value;

use crate::{
    error::ApiError,
    state::{LoggedRequest, State},
};

/// API versions served, as path segments.
const VERSIONS: [&str; 3] = ["v1", "v1beta", "v1alpha"];

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/upload/{version}/files", post(upload::upload).layer(DefaultBodyLimit::disable()))
        .route("/{version}/files", get(files::list))
        .route("/{version}/files/{id}", get(files::get).delete(files::delete))
        .route(
            "/{version}/models/{call}",
            post(generate::call).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
}

fn check_version(version: &str) -> Result<(), ApiError> {
    VERSIONS.contains(&version).then_some(()).ok_or_else(ApiError::not_found)
}

/// The API key of a request: `x-goog-api-key`, else `?key=`.
fn api_key<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get("key").map(String::as_str))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The caller's identity (its key): 403 without a key, 400 with a key other than the
/// configured one (`shared/gemini-files-api.md` §3).
fn caller(state: &State, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<String, ApiError> {
    let key = api_key(headers, query).ok_or_else(ApiError::unregistered_caller)?;
    match &state.config.api_key {
        Some(expected) if expected != key => Err(ApiError::invalid_key()),
        _ => Ok(key.to_string()),
    }
}

/// `{scheme}://{host}` of a request, from its `Host` header.
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}")
}

/// A JSON field under either of its proto3 names (`file_data` / `fileData`).
fn either<'a>(value: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    value.get(snake).or_else(|| value.get(camel))
}

/// A log entry for a request without a body; callers fill in the rest.
fn logged(method: &str, path: String, headers: &HeaderMap, query: &HashMap<String, String>) -> LoggedRequest {
    LoggedRequest {
        method: method.into(),
        path,
        upload_command: None,
        upload_offset: None,
        body_bytes: 0,
        json: None,
        had_api_key: api_key(headers, query).is_some(),
    }
}
