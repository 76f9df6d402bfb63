//! `files.get`, `files.list`, `files.delete` (<https://ai.google.dev/api/files>).

use std::sync::Arc;

use axum::{
    extract::{Path, State as AxumState},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::{check_version, fault_name, fault_response, Ctx, Refusal};
use crate::{
    error::ApiError,
    faults::{FaultKind, Route},
    state::State,
};

/// Logs the request, takes its fault, and answers for the fault when it decides the answer.
async fn begin(state: &State, ctx: &Ctx, route: Route) -> Result<Option<FaultKind>, Response> {
    let fault = state.take_fault(route);
    let mut entry = ctx.entry();
    entry.fault = fault.as_ref().map(fault_name);
    state.record(entry);
    if let Some(f) = &fault {
        if let Some(res) = fault_response(ctx, f).await {
            return Err(res);
        }
    }
    Ok(fault)
}

/// `GET /{v}/files/{id}`: the File, unwrapped.
pub async fn get(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    let fault = match begin(&state, &ctx, Route::Get).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let mut resource = state.file_for(&owner, &id)?.resource(state.now());
        if fault == Some(FaultKind::StateAlias) {
            let plain = resource["state"].as_str().unwrap_or_default().to_string();
            resource["state"] = json!(format!("FileState.{plain}"));
        }
        Ok(resource)
    })();
    result.map(Json).into_response()
}

/// `DELETE /{v}/files/{id}`: 200 with `{}` (a 204 breaks the Python SDK).
pub async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Delete).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        state.file_for(&owner, &id)?;
        state.remove_file(&id);
        Ok(json!({}))
    })();
    result.map(Json).into_response()
}

/// `GET /{v}/files?pageSize=N&pageToken=T`: the caller's Files, oldest first; `pageSize`
/// defaults to 10 and is capped at 100.
pub async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::List).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let page_size = match ctx
            .query
            .get("pageSize")
            .or_else(|| ctx.query.get("page_size"))
            .map(|s| s.parse::<usize>())
        {
            None => 10,
            Some(Ok(n)) => n.clamp(1, 100),
            Some(Err(_)) => {
                return Err(ApiError::invalid_argument("Invalid value for pageSize.").into())
            }
        };
        let token = ctx.query.get("pageToken").or_else(|| ctx.query.get("page_token"));
        let start = match token.filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => {
                t.parse::<usize>().map_err(|_| ApiError::invalid_argument("Invalid page token."))?
            }
        };
        let mine = state.files_of(&owner);
        let now = state.now();
        let page: Vec<Value> =
            mine.iter().skip(start).take(page_size).map(|f| f.resource(now)).collect();
        let mut body = json!({});
        if !page.is_empty() {
            body["files"] = json!(page);
        }
        if start + page_size < mine.len() {
            body["nextPageToken"] = json!((start + page_size).to_string());
        }
        Ok(body)
    })();
    result.map(Json).into_response()
}
