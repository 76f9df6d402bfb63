//! `POST /{v}/models/{model}:{method}`: `generateContent`, `streamGenerateContent`
//! (`?alt=sse`, or a JSON array without it) and — handed to [`super::tokens`] —
//! `countTokens` (`docs/gemini-protocol.md`). Only the models of [`crate::models::MODELS`]
//! answer; the answer itself is [`super::answer`]'s.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State as AxumState},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{
    answer::Answer, check_version, drop_connection, either, fault_name, fault_response, tokens,
    Ctx, Refusal,
};
use crate::{
    error::ApiError,
    faults::{FaultKind, Route},
    models,
    prompt::{file_id_of, read_request, Check},
    state::State,
    wire,
};

/// `POST /{v}/models/{model}:{method}`: logs the request, takes the fault of its route, and
/// answers it.
pub async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, call)): Path<(String, String)>,
    ctx: Ctx,
    body: Bytes,
) -> Response {
    let request: Option<Value> = serde_json::from_slice(&body).ok();
    let (model, method) = call.split_once(':').unwrap_or((&call, ""));
    let route = if method == "countTokens" { Route::CountTokens } else { Route::Generate };
    let fault = state.take_fault(route);
    let mut entry = ctx.entry();
    entry.body_bytes = body.len();
    entry.json = request.clone();
    entry.fault = fault.as_ref().map(fault_name);
    state.record(entry);
    let answered = if route == Route::CountTokens {
        tokens::count(&state, &version, model, &ctx, request, fault).await
    } else {
        respond(&state, &version, model, method, &ctx, request, fault).await
    };
    let mut res = answered.unwrap_or_else(IntoResponse::into_response);
    let sse = method == "streamGenerateContent" && ctx.query.get("alt").is_some_and(|a| a == "sse");
    if sse && !res.status().is_success() {
        // Gemini's refusal on the SSE endpoint: its plain JSON body, labelled as the stream.
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    }
    res
}

async fn respond(
    state: &State,
    version: &str,
    model: &str,
    method: &str,
    ctx: &Ctx,
    request: Option<Value>,
    fault: Option<FaultKind>,
) -> Result<Response, Refusal> {
    check_version(version)?;
    let owner = ctx.caller(state)?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Err(ApiError::not_found().into()),
    };
    let model = models::find(model).ok_or_else(|| ApiError::model_not_found(model, version))?;
    let request = request
        .ok_or_else(|| ApiError::invalid_argument("Request contains an invalid argument."))?;
    let sse = ctx.query.get("alt").map(String::as_str) == Some("sse");
    let drop_mid_stream = stream && sse && fault == Some(FaultKind::Drop);
    match fault {
        Some(FaultKind::Forbidden { file: None, prefixed }) => {
            let first = first_file_id(&request).unwrap_or_else(|| "unknown".into());
            let fault = FaultKind::Forbidden { file: Some(first), prefixed };
            return Ok(fault_response(ctx, &fault).await.expect("a 403 is an answer"));
        }
        Some(ref f) if !drop_mid_stream => {
            if let Some(res) = fault_response(ctx, f).await {
                return Ok(res);
            }
        }
        _ => {}
    }
    // A scripted answer never looked at the Files: they are counted only if usable.
    let scripted = state.next_answer();
    let check = if scripted.is_some() { Check::Lenient } else { Check::Strict };
    let reading = read_request(state, &owner, model, &request, check)?;
    // Gemini's limit is one token under the model's `inputTokenLimit`.
    let allowed = model.input_token_limit.saturating_sub(1);
    if reading.prompt.tokens > allowed {
        return Err(ApiError::input_too_long(reading.prompt.tokens, allowed).into());
    }
    let config = request.get("generationConfig").or_else(|| request.get("generation_config"));
    let max_output_tokens = config
        .and_then(|c| c.get("maxOutputTokens").or_else(|| c.get("max_output_tokens")))
        .and_then(Value::as_u64);
    let answer = Answer::new(model, &reading, scripted, state.answer_number(), max_output_tokens);
    if !stream {
        return Ok(wire::ok(answer.whole()).into_response());
    }
    if !sse {
        // Without alt=sse Gemini answers one pretty-printed JSON array of chunks.
        return Ok(wire::ok(Value::Array(answer.chunks())).into_response());
    }
    if drop_mid_stream && ctx.connection.is_none() {
        return Ok(drop_connection(ctx).await);
    }
    let delay = match fault {
        Some(FaultKind::SlowStream { chunk_delay }) => chunk_delay,
        _ => state.config.chunk_delay,
    };
    let cut = if drop_mid_stream { ctx.connection.clone() } else { None };
    Ok(answer.sse(delay, cut))
}

/// The id of the first `fileData` part of a request, if any.
fn first_file_id(request: &Value) -> Option<String> {
    request.get("contents")?.as_array()?.iter().find_map(|content| {
        content.get("parts")?.as_array()?.iter().find_map(|part| {
            let uri =
                either(either(part, "file_data", "fileData")?, "file_uri", "fileUri")?.as_str()?;
            file_id_of(uri).map(str::to_string)
        })
    })
}
