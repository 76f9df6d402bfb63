//! `models.list` and `models.get` (<https://ai.google.dev/api/models>) over
//! [`crate::models::MODELS`].

use std::sync::Arc;

use axum::{
    extract::{Path, State as AxumState},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{begin, check_version, paged, Ctx, Refusal};
use crate::{error::ApiError, faults::Route, models, state::State};

/// `GET /{v}/models?pageSize=N&pageToken=T`: the served models, in order; `pageSize`
/// defaults to 50 and is capped at 1000, as on Gemini.
pub async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Models, None).await {
        return res;
    }
    let result = (|| -> Result<super::Page<Value>, Refusal> {
        check_version(&version)?;
        ctx.caller(&state)?;
        Ok(paged(&ctx, models::MODELS, (50, 1000), "models", models::ModelInfo::resource)?)
    })();
    result.map(crate::wire::ok).into_response()
}

/// `GET /{v}/models/{id}`: one model; 404 `Model is not found: models/{id} for api version
/// {v}` for any other.
pub async fn get(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Models, None).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        ctx.caller(&state)?;
        let model = models::find(&id).ok_or_else(|| ApiError::unknown_model(&id, &version))?;
        Ok(model.resource())
    })();
    result.map(crate::wire::ok).into_response()
}
