//! `POST /{v}/models/{model}:countTokens` (<https://ai.google.dev/api/tokens>): the body is
//! `{"contents": [...]}` or `{"generateContentRequest": {...}}`; the answer
//! `{"totalTokens": N, "promptTokensDetails": [...]}`, plus `cachedContentTokenCount` when
//! the request names a cache. The
//! count is the one `generateContent` reports as `promptTokenCount` ([`crate::tokens`]), and
//! the Files are checked as there.

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{check_version, either, fault_response, Ctx, Refusal};
use crate::{
    error::ApiError,
    faults::FaultKind,
    models,
    prompt::{read_request, Check, Prompt, Reading},
    state::State,
    wire,
};

/// Answers a `countTokens` request already logged (and its fault taken) by
/// [`super::generate::call`].
pub async fn count(
    state: &State,
    version: &str,
    model: &str,
    ctx: &Ctx,
    request: Option<Value>,
    fault: Option<FaultKind>,
) -> Result<Response, Refusal> {
    check_version(version)?;
    let owner = ctx.caller(state)?;
    let model = models::find(model)
        .ok_or_else(|| ApiError::model_not_found_for(model, version, "countTokens"))?;
    let request = request
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::invalid_argument("Request contains an invalid argument."))?;
    if let Some(f) = &fault {
        if let Some(res) = fault_response(ctx, f).await {
            return Ok(res);
        }
    }
    let contents = request.get("contents");
    let reading = match either(&request, "generate_content_request", "generateContentRequest") {
        Some(_) if contents.is_some() => {
            return Err(ApiError::invalid_argument(
                "contents and generate_content_request are mutually exclusive.",
            )
            .into())
        }
        Some(inner) => read_request(state, &owner, model, inner, Check::Strict)?,
        None => {
            let mut prompt = Prompt::default();
            let contents = contents.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            prompt.add_contents(state, &owner, contents, Check::Strict)?;
            Reading { prompt, cached_tokens: None, cached_by_modality: Default::default() }
        }
    };
    let mut body = json!({"totalTokens": reading.prompt.tokens});
    if let Some(cached) = reading.cached_tokens {
        body["cachedContentTokenCount"] = json!(cached);
    }
    if let Some(details) = reading.prompt.by_modality.details() {
        body["promptTokensDetails"] = details;
    }
    Ok(wire::ok(body).into_response())
}
