//! The resumable upload: `start`, then `upload` / `upload, finalize` chunks at the
//! `x-goog-upload-url` (`shared/gemini-files-api.md` §1).

use std::{
    collections::HashMap,
    sync::Arc,
    time::SystemTime,
};

use axum::{
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::{caller, check_version, either, logged, origin};
use crate::{
    error::ApiError,
    inspect::Description,
    state::{new_file_id, new_upload_id, FileRecord, LoggedRequest, State, UploadSession},
};

/// Chunk granularity announced to clients, bytes (8 MiB, as Gemini).
const GRANULARITY: u64 = 8 * 1024 * 1024;

/// MIME types Gemini documents for the Files API (`shared/gemini-files-api.md` §4); any
/// `text/*` is taken as well.
const SUPPORTED: &[&str] = &[
    "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif",
    "audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac", "audio/mpeg",
    "audio/m4a", "audio/l16", "audio/opus", "audio/alaw", "audio/mulaw", "audio/webm",
    "video/mp4", "video/mpeg", "video/mov", "video/avi", "video/x-flv", "video/mpg", "video/webm",
    "video/wmv", "video/3gpp", "video/quicktime",
    "application/pdf", "application/json",
];

/// Whether Gemini takes uploads of this MIME type.
pub fn is_supported(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    base.starts_with("text/") || SUPPORTED.contains(&base.as_str())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `POST /upload/{v}/files`: a start without `upload_id`, a chunk with it.
pub async fn upload(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let command = header(&headers, "x-goog-upload-command").unwrap_or("").to_ascii_lowercase();
    let start_json = if query.contains_key("upload_id") { None } else { serde_json::from_slice(&body).ok() };
    state.record(LoggedRequest {
        upload_command: Some(command.clone()),
        upload_offset: header(&headers, "x-goog-upload-offset").and_then(|o| o.parse().ok()),
        body_bytes: body.len(),
        json: start_json.clone(),
        ..logged("POST", format!("/upload/{version}/files"), &headers, &query)
    });
    let result = match query.get("upload_id") {
        None => start(&state, &version, &query, &headers, start_json),
        Some(id) => chunk(&state, id, &command, &headers, body),
    };
    result.unwrap_or_else(|e| {
        let mut res = e.into_response();
        res.headers_mut().insert("x-goog-upload-status", HeaderValue::from_static("final"));
        res
    })
}

fn start(
    state: &State,
    version: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Result<Response, ApiError> {
    check_version(version)?;
    let owner = caller(state, headers, query)?;
    if !header(headers, "x-goog-upload-protocol").is_some_and(|p| p.eq_ignore_ascii_case("resumable"))
        || !header(headers, "x-goog-upload-command").is_some_and(|c| c.eq_ignore_ascii_case("start"))
    {
        return Err(ApiError::invalid_argument("Request contains an invalid argument."));
    }
    let file = body.as_ref().and_then(|b| b.get("file")).cloned().unwrap_or(Value::Null);
    let mime_type = header(headers, "x-goog-upload-header-content-type")
        .map(str::to_string)
        .or_else(|| either(&file, "mime_type", "mimeType").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_default();
    if !is_supported(&mime_type) {
        return Err(ApiError::unsupported_mime(&mime_type));
    }
    let declared_size = header(headers, "x-goog-upload-header-content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| {
            either(&file, "size_bytes", "sizeBytes")
                .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        });
    let display_name = either(&file, "display_name", "displayName").and_then(|v| v.as_str()).map(str::to_string);
    let base = origin(headers);
    let upload_id = new_upload_id();
    state.uploads.lock().expect("uploads lock").insert(
        upload_id.clone(),
        UploadSession {
            owner,
            display_name,
            mime_type,
            declared_size,
            data: Vec::new(),
            uri_base: format!("{base}/{version}"),
        },
    );
    let url = format!("{base}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable");
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert("x-goog-upload-url", HeaderValue::from_str(&url).map_err(|_| ApiError::invalid_argument("bad Host"))?);
    h.insert("x-goog-upload-status", HeaderValue::from_static("active"));
    h.insert("x-goog-upload-chunk-granularity", HeaderValue::from(GRANULARITY));
    Ok(res)
}

/// One chunk command. Chunks need no API key: the upload URL is the capability.
fn chunk(state: &State, upload_id: &str, command: &str, headers: &HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let parts: Vec<&str> = command.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let upload = parts.contains(&"upload");
    let finalize = parts.contains(&"finalize");
    let mut uploads = state.uploads.lock().expect("uploads lock");
    let session = uploads
        .get_mut(upload_id)
        .ok_or_else(|| ApiError::invalid_argument("No upload session found for this upload_id."))?;
    if parts.contains(&"query") {
        return Ok(status_response("active", Some(session.data.len() as u64)));
    }
    if parts.contains(&"cancel") {
        uploads.remove(upload_id);
        return Ok(status_response("cancelled", None));
    }
    if !upload && !finalize {
        return Err(ApiError::invalid_argument(format!("Unknown X-Goog-Upload-Command: {command}")));
    }
    if upload {
        let offset = header(headers, "x-goog-upload-offset").and_then(|o| o.parse::<u64>().ok());
        let received = session.data.len() as u64;
        if offset != Some(received) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid X-Goog-Upload-Offset: expected {received}, got {}",
                offset.map_or("none".into(), |o| o.to_string())
            )));
        }
        if let Some(declared) = session.declared_size {
            if received + body.len() as u64 > declared {
                return Err(ApiError::invalid_argument("The upload is larger than the declared size."));
            }
        }
        session.data.extend_from_slice(&body);
    }
    if !finalize {
        return Ok(status_response("active", None));
    }
    let session = uploads.remove(upload_id).expect("session present");
    drop(uploads);
    if session.declared_size.is_some_and(|d| d != session.data.len() as u64) {
        return Err(ApiError::invalid_argument("The upload is smaller than the declared size."));
    }
    let id = new_file_id();
    let created = SystemTime::now();
    let record = FileRecord {
        uri: format!("{}/files/{id}", session.uri_base),
        id: id.clone(),
        owner: session.owner,
        display_name: session.display_name,
        created,
        expires: created + state.config.file_ttl,
        description: Description::of(&session.mime_type, &session.data),
    };
    let resource = record.resource(state.config.processing);
    state.files.lock().expect("files lock").insert(id, record);
    let mut res = Json(json!({ "file": resource })).into_response();
    res.headers_mut().insert("x-goog-upload-status", HeaderValue::from_static("final"));
    Ok(res)
}

fn status_response(status: &'static str, size_received: Option<u64>) -> Response {
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert("x-goog-upload-status", HeaderValue::from_static(status));
    if let Some(n) = size_received {
        res.headers_mut().insert("x-goog-upload-size-received", HeaderValue::from(n));
    }
    res
}
