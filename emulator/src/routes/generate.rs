//! `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
//! (`docs/gemini-protocol.md`).
//!
//! The answer is deterministic: it lists every file part of the request (`fileData` or
//! `inlineData`) with [`Description::summary`], then quotes the last user text.

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Path, State as AxumState},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};

use super::{check_version, drop_connection, either, fault_name, fault_response, Ctx, Refusal};
use crate::{
    error::ApiError,
    faults::{FaultKind, Route},
    inspect::Description,
    serve::Connection,
    state::State,
};

/// `POST /{v}/models/{model}:{method}`.
pub async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, call)): Path<(String, String)>,
    ctx: Ctx,
    body: Bytes,
) -> Response {
    let request: Option<Value> = serde_json::from_slice(&body).ok();
    let fault = state.take_fault(Route::Generate);
    let mut entry = ctx.entry();
    entry.body_bytes = body.len();
    entry.json = request.clone();
    entry.fault = fault.as_ref().map(fault_name);
    state.record(entry);
    respond(&state, &version, &call, &ctx, request, body.len(), fault)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn respond(
    state: &State,
    version: &str,
    call: &str,
    ctx: &Ctx,
    request: Option<Value>,
    body_len: usize,
    fault: Option<FaultKind>,
) -> Result<Response, Refusal> {
    check_version(version)?;
    let owner = ctx.caller(state)?;
    let (model, method) = call.split_once(':').ok_or_else(ApiError::not_found)?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Err(ApiError::not_found().into()),
    };
    if !model.starts_with("gemini-") {
        return Err(ApiError::model_not_found(model, version).into());
    }
    let request = request
        .ok_or_else(|| ApiError::invalid_argument("Request contains an invalid argument."))?;
    let drop_mid_stream = stream
        && fault == Some(FaultKind::Drop)
        && ctx.query.get("alt").map(String::as_str) == Some("sse");
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
    let answer = match state.next_answer() {
        Some(text) => split_into_chunks(&text),
        None => answer(state, &owner, &request)?,
    };
    let prompt_tokens = (body_len / 4) as u64;
    if !stream {
        let text = answer.concat();
        return Ok(
            Json(chunk_json(model, &text, Some("STOP"), prompt_tokens, &text)).into_response()
        );
    }
    if ctx.query.get("alt").map(String::as_str) != Some("sse") {
        // Without alt=sse Gemini answers one JSON array of chunks.
        let full = answer.concat();
        let last = answer.len().saturating_sub(1);
        let chunks: Vec<Value> = answer
            .iter()
            .enumerate()
            .map(|(i, t)| chunk_json(model, t, (i == last).then_some("STOP"), prompt_tokens, &full))
            .collect();
        return Ok(Json(Value::Array(chunks)).into_response());
    }
    let cut = drop_mid_stream.then(|| ctx.connection.clone());
    if drop_mid_stream && ctx.connection.is_none() {
        return Ok(drop_connection(ctx).await);
    }
    let delay = match fault {
        Some(FaultKind::SlowStream { chunk_delay }) => chunk_delay,
        _ => state.config.chunk_delay,
    };
    Ok(sse(model.to_string(), answer, prompt_tokens, delay, cut.flatten()))
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

/// The answer's text pieces (one per SSE chunk), or the error Gemini would give.
fn answer(state: &State, owner: &str, request: &Value) -> Result<Vec<String>, ApiError> {
    let contents = request.get("contents").and_then(Value::as_array).ok_or_else(|| {
        ApiError::invalid_argument("* GenerateContentRequest.contents: contents is not specified")
    })?;
    let mut files = Vec::new();
    let mut last_user_text = String::new();
    for content in contents {
        let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
        let parts = content.get("parts").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut texts = Vec::new();
        for part in &parts {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                texts.push(text.to_string());
            } else if let Some(fd) = either(part, "file_data", "fileData") {
                files.push(describe_file_data(state, owner, fd)?);
            } else if let Some(inline) = either(part, "inline_data", "inlineData") {
                files.push(describe_inline(inline)?);
            }
        }
        if role == "user" && !texts.is_empty() {
            last_user_text = texts.join("\n");
        }
    }
    // Markdown blocks, separated by blank lines: a line right after a list item would continue
    // the item (and run into it when rendered), so the list ends before what follows.
    let mut blocks = vec![match files.len() {
        0 => "I received no files.".to_string(),
        1 => "I received 1 file:".to_string(),
        n => format!("I received {n} files:"),
    }];
    if !files.is_empty() {
        let items: Vec<String> =
            files.iter().enumerate().map(|(i, d)| format!("{}. {}", i + 1, d.summary())).collect();
        blocks.push(items.join("\n"));
    }
    if !last_user_text.is_empty() {
        blocks.push(format!("You asked: “{last_user_text}”"));
    }
    blocks.push("(This answer comes from Parley's built-in Gemini emulator.)".into());
    Ok(split_into_chunks(&blocks.join("\n\n")))
}

fn describe_file_data(state: &State, owner: &str, fd: &Value) -> Result<Description, ApiError> {
    let uri = either(fd, "file_uri", "fileUri").and_then(Value::as_str).unwrap_or("");
    let id = file_id_of(uri).ok_or_else(|| ApiError::bad_file_uri(uri))?;
    let file = state.file_for(owner, id)?;
    if file.state(state.now()) != "ACTIVE" {
        return Err(ApiError::file_not_active(id));
    }
    Ok(file.description)
}

fn describe_inline(inline: &Value) -> Result<Description, ApiError> {
    let mime = either(inline, "mime_type", "mimeType").and_then(Value::as_str).unwrap_or("");
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')))
        .map_err(|_| ApiError::invalid_argument("Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES): Base64 decoding failed"))?;
    Ok(Description::of(mime, &bytes))
}

/// The id in `http(s)://host/…/files/{id}`: `[a-z0-9]` then `-`, like Gemini's ids.
fn file_id_of(uri: &str) -> Option<&str> {
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return None;
    }
    let id = uri.rsplit_once("/files/")?.1;
    let valid = !id.is_empty()
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(id)
}

/// Splits an answer into about six pieces at word boundaries (at least one).
fn split_into_chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per_chunk = words.len().div_ceil(6).max(1);
    words.chunks(per_chunk).map(|w| w.concat()).collect()
}

fn chunk_json(
    model: &str,
    text: &str,
    finish: Option<&str>,
    prompt_tokens: u64,
    full: &str,
) -> Value {
    let candidates_tokens = full.split_whitespace().count() as u64;
    let mut candidate =
        json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(reason) = finish {
        candidate["finishReason"] = json!(reason);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt_tokens + candidates_tokens,
        },
        "modelVersion": model,
    })
}

/// `data: {json}\r\n\r\n` per chunk, with `chunk_delay` between chunks. With `cut`, the
/// connection is closed after two chunks (an injected drop).
fn sse(
    model: String,
    pieces: Vec<String>,
    prompt_tokens: u64,
    chunk_delay: Duration,
    cut: Option<Connection>,
) -> Response {
    let full = pieces.concat();
    let last = pieces.len().saturating_sub(1);
    let cut_at = last.min(2);
    let frames: Vec<Bytes> = pieces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let json = chunk_json(&model, t, (i == last).then_some("STOP"), prompt_tokens, &full);
            Bytes::from(format!("data: {json}\r\n\r\n"))
        })
        .collect();
    let stream = futures::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| {
        let cut = cut.clone();
        async move {
            if i > 0 {
                tokio::time::sleep(chunk_delay).await;
            }
            if let Some(conn) = cut.filter(|_| i == cut_at) {
                conn.drop_now().await;
            }
            Ok::<_, std::convert::Infallible>(frame)
        }
    });
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_taken_from_files_uris_only() {
        assert_eq!(
            file_id_of("https://generativelanguage.googleapis.com/v1beta/files/abc123"),
            Some("abc123")
        );
        assert_eq!(file_id_of("http://127.0.0.1:9/v1/files/x-1"), Some("x-1"));
        assert_eq!(file_id_of("gs://bucket/files/abc"), None);
        assert_eq!(file_id_of("https://example.com/files/ABC"), None);
    }

    #[test]
    fn answers_stream_in_several_chunks() {
        let pieces =
            split_into_chunks("one two three four five six seven eight nine ten eleven twelve");
        assert!(pieces.len() >= 3);
        assert_eq!(
            pieces.concat(),
            "one two three four five six seven eight nine ten eleven twelve"
        );
    }
}
