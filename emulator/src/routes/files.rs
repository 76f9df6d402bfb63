//! `files.get`, `files.list`, `files.delete` (<https://ai.google.dev/api/files>).

use std::sync::Arc;

use axum::{
    extract::{Path, State as AxumState},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use super::{begin, check_version, paged, Ctx, Page, Refusal};
use crate::{
    faults::{FaultKind, Route},
    state::{FileResource, State},
    wire,
};

/// `GET /{v}/files/{id}`: the File, unwrapped.
pub async fn get(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    let fault = match begin(&state, &ctx, Route::Get, None).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let result = (|| -> Result<FileResource, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let mut resource = state.file_for(&owner, &id)?.resource(state.now());
        if fault == Some(FaultKind::StateAlias) {
            resource.state = format!("FileState.{}", resource.state);
        }
        Ok(resource)
    })();
    result.map(wire::ok).into_response()
}

/// `DELETE /{v}/files/{id}`: 200 with `{}` (a 204 breaks the Python SDK).
pub async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Delete, None).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        state.file_for(&owner, &id)?;
        state.remove_file(&id);
        Ok(json!({}))
    })();
    result.map(wire::ok).into_response()
}

/// `GET /{v}/files?pageSize=N&pageToken=T`: the caller's Files, oldest first; `pageSize`
/// defaults to 10 and is capped at 100.
pub async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::List, None).await {
        return res;
    }
    let result = (|| -> Result<Page<FileResource>, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let now = state.now();
        Ok(paged(&ctx, &state.files_of(&owner), (10, 100), "files", |f| f.resource(now))?)
    })();
    result.map(wire::ok).into_response()
}
