//! `files.get`, `files.list`, `files.delete` (<https://ai.google.dev/api/files>).

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    extract::{Path, Query, State as AxumState},
    http::HeaderMap,
    Json,
};
use serde_json::{json, Value};

use super::{caller, check_version, logged};
use crate::{error::ApiError, state::State};

/// `GET /{v}/files/{id}`: the File, unwrapped.
pub async fn get(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.record(logged("GET", format!("/{version}/files/{id}"), &headers, &query));
    check_version(&version)?;
    let owner = caller(&state, &headers, &query)?;
    let file = state.file_for(&owner, &id)?;
    Ok(Json(file.resource(state.config.processing)))
}

/// `DELETE /{v}/files/{id}`: 200 with `{}` (a 204 breaks the Python SDK).
pub async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.record(logged("DELETE", format!("/{version}/files/{id}"), &headers, &query));
    check_version(&version)?;
    let owner = caller(&state, &headers, &query)?;
    state.file_for(&owner, &id)?;
    state.files.lock().expect("files lock").remove(&id);
    Ok(Json(json!({})))
}

/// `GET /{v}/files?pageSize=N&pageToken=T`: the caller's Files, oldest first; `pageSize`
/// defaults to 10 and is capped at 100.
pub async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.record(logged("GET", format!("/{version}/files"), &headers, &query));
    check_version(&version)?;
    let owner = caller(&state, &headers, &query)?;
    let page_size = match query.get("pageSize").map(|s| s.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) => n.clamp(1, 100),
        Some(Err(_)) => return Err(ApiError::invalid_argument("Invalid value for pageSize.")),
    };
    let start = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| ApiError::invalid_argument("Invalid page token."))?,
    };
    let now = SystemTime::now();
    let mut mine: Vec<_> = state
        .files
        .lock()
        .expect("files lock")
        .values()
        .filter(|f| f.owner == owner && f.expires > now)
        .cloned()
        .collect();
    mine.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = mine
        .iter()
        .skip(start)
        .take(page_size)
        .map(|f| f.resource(state.config.processing))
        .collect();
    let mut body = json!({});
    if !page.is_empty() {
        body["files"] = json!(page);
    }
    if start + page_size < mine.len() {
        body["nextPageToken"] = json!((start + page_size).to_string());
    }
    Ok(Json(body))
}
