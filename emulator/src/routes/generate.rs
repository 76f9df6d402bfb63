//! `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
//! (`shared/gemini-files-api.md` §6).
//!
//! The answer is deterministic: it lists every file part of the request (`fileData` or
//! `inlineData`) with [`Description::summary`], then quotes the last user text.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State as AxumState},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};

use super::{caller, check_version, either, logged};
use crate::{
    error::ApiError,
    inspect::Description,
    state::{LoggedRequest, State},
};

/// `POST /{v}/models/{model}:{method}`.
pub async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, call)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Option<Value> = serde_json::from_slice(&body).ok();
    state.record(LoggedRequest {
        body_bytes: body.len(),
        json: request.clone(),
        ..logged("POST", format!("/{version}/models/{call}"), &headers, &query)
    });
    check_version(&version)?;
    let owner = caller(&state, &headers, &query)?;
    let (model, method) = call.split_once(':').ok_or_else(ApiError::not_found)?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return Err(ApiError::not_found()),
    };
    if !model.starts_with("gemini-") {
        return Err(ApiError::model_not_found(model, &version));
    }
    let request = request.ok_or_else(|| ApiError::invalid_argument("Request contains an invalid argument."))?;
    let answer = answer(&state, &owner, &request)?;
    let prompt_tokens = (body.len() / 4) as u64;
    if !stream {
        let text = answer.concat();
        return Ok(Json(chunk_json(model, &text, Some("STOP"), prompt_tokens, &text)).into_response());
    }
    if query.get("alt").map(String::as_str) != Some("sse") {
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
    Ok(sse(model.to_string(), answer, prompt_tokens, state.config.chunk_delay))
}

/// The answer's text pieces (one per SSE chunk), or the error Gemini would give.
fn answer(state: &State, owner: &str, request: &Value) -> Result<Vec<String>, ApiError> {
    let contents = request
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_argument("* GenerateContentRequest.contents: contents is not specified"))?;
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
    let mut lines = vec![match files.len() {
        0 => "I received no files.".to_string(),
        1 => "I received 1 file:".to_string(),
        n => format!("I received {n} files:"),
    }];
    lines.extend(files.iter().enumerate().map(|(i, d)| format!("{}. {}", i + 1, d.summary())));
    if !last_user_text.is_empty() {
        lines.push(format!("You asked: “{last_user_text}”"));
    }
    lines.push("(This answer comes from Parley's built-in Gemini emulator.)".into());
    Ok(split_into_chunks(&lines.join("\n")))
}

fn describe_file_data(state: &State, owner: &str, fd: &Value) -> Result<Description, ApiError> {
    let uri = either(fd, "file_uri", "fileUri").and_then(Value::as_str).unwrap_or("");
    let id = file_id_of(uri).ok_or_else(|| ApiError::bad_file_uri(uri))?;
    let file = state.file_for(owner, id)?;
    if file.state(state.config.processing) != "ACTIVE" {
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

fn chunk_json(model: &str, text: &str, finish: Option<&str>, prompt_tokens: u64, full: &str) -> Value {
    let candidates_tokens = full.split_whitespace().count() as u64;
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
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

/// `data: {json}\r\n\r\n` per chunk, with `chunk_delay` between chunks.
fn sse(model: String, pieces: Vec<String>, prompt_tokens: u64, chunk_delay: Duration) -> Response {
    let full = pieces.concat();
    let last = pieces.len().saturating_sub(1);
    let frames: Vec<Bytes> = pieces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let json = chunk_json(&model, t, (i == last).then_some("STOP"), prompt_tokens, &full);
            Bytes::from(format!("data: {json}\r\n\r\n"))
        })
        .collect();
    let stream = futures::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 {
            tokio::time::sleep(chunk_delay).await;
        }
        Ok::<_, std::convert::Infallible>(frame)
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
        assert_eq!(file_id_of("https://generativelanguage.googleapis.com/v1beta/files/abc123"), Some("abc123"));
        assert_eq!(file_id_of("http://127.0.0.1:9/v1/files/x-1"), Some("x-1"));
        assert_eq!(file_id_of("gs://bucket/files/abc"), None);
        assert_eq!(file_id_of("https://example.com/files/ABC"), None);
    }

    #[test]
    fn answers_stream_in_several_chunks() {
        let pieces = split_into_chunks("one two three four five six seven eight nine ten eleven twelve");
        assert!(pieces.len() >= 3);
        assert_eq!(pieces.concat(), "one two three four five six seven eight nine ten eleven twelve");
    }
}
