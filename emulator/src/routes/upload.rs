//! The resumable upload: `start`, then `upload` / `upload, finalize` chunks at the
//! `x-goog-upload-url`, plus `query`, `cancel` and a bare `finalize`
//! (`docs/gemini-protocol.md`). Chunk bodies are streamed, never buffered whole.
//!
//! As on Gemini, `start` takes any MIME type (one Gemini cannot read is refused when a
//! prompt uses the File, [`is_supported`]), reads its body leniently (single quotes, a
//! trailing comma), and answers with an empty `text/plain` body carrying
//! `X-Goog-Upload-URL`, `X-Goog-Upload-Control-URL` and `X-GUploader-UploadID`; the finalize
//! answer repeats `X-GUploader-UploadID`.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, State as AxumState},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{json, Value};

use super::{
    check_version, drop_connection, either, fault_name, fault_response, Ctx, Refusal, Via,
};
use crate::{
    error::ApiError,
    faults::{FaultKind, Route},
    inspect::Inspector,
    state::{new_file_id, FileRecord, LoggedRequest, State, UploadSession},
    wire,
};

/// Chunk granularity announced to clients, bytes (8 MiB, as Gemini).
const GRANULARITY: u64 = 8 * 1024 * 1024;

/// Largest `start` body taken, bytes.
const START_BODY_LIMIT: usize = 1024 * 1024;

/// MIME types Gemini reads in a prompt (`docs/gemini-protocol.md`); any `text/*` as well.
const SUPPORTED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "audio/wav",
    "audio/mp3",
    "audio/aiff",
    "audio/aac",
    "audio/ogg",
    "audio/flac",
    "audio/mpeg",
    "audio/m4a",
    "audio/l16",
    "audio/opus",
    "audio/alaw",
    "audio/mulaw",
    "audio/webm",
    "video/mp4",
    "video/mpeg",
    "video/mov",
    "video/avi",
    "video/x-flv",
    "video/mpg",
    "video/webm",
    "video/wmv",
    "video/3gpp",
    "video/quicktime",
    "application/pdf",
    "application/json",
];

/// Whether Gemini reads Files of this MIME type in a prompt.
pub fn is_supported(mime: &str) -> bool {
    let base = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    base.starts_with("text/") || SUPPORTED.contains(&base.as_str())
}

/// `POST /upload/{v}/files`: a start without `upload_id`, a chunk command with it.
pub async fn upload(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
    body: Body,
) -> Response {
    handle(&state, &version, ctx, body).await
}

/// `POST {gateway prefix}/files`: the gateway's single upload operation, start and chunks
/// alike (ChatSphere's format, `docs/export-format.md`); Gemini behind it is `v1beta`.
pub async fn gateway_files(
    AxumState(state): AxumState<Arc<State>>,
    ctx: Ctx,
    body: Body,
) -> Response {
    handle(&state, "v1beta", ctx, body).await
}

async fn handle(state: &State, version: &str, ctx: Ctx, body: Body) -> Response {
    let command = ctx.header("x-goog-upload-command").unwrap_or("").to_ascii_lowercase();
    let upload_id = ctx.query.get("upload_id").cloned();
    let route = match &upload_id {
        None => Route::Start,
        Some(_) if command.contains("query") || command.contains("cancel") => Route::Query,
        Some(_) => Route::Chunk,
    };
    let fault = state.take_fault(route);
    let mut entry = ctx.entry();
    entry.upload_command = Some(command.clone());
    entry.upload_offset = ctx.header("x-goog-upload-offset").and_then(|o| o.parse().ok());
    entry.fault = fault.as_ref().map(fault_name);
    if let Err(refusal) = ctx.check_gateway(state) {
        state.record(entry);
        return refusal.into_response();
    }
    let malformed = fault == Some(FaultKind::Malformed);
    match &fault {
        Some(FaultKind::Drop) if upload_id.is_some() => {}
        Some(f) if !malformed => {
            if let Some(res) = fault_response(&ctx, f).await {
                state.record(entry);
                // Transient refusals carry no `x-goog-upload-status`: the session lives on, and
                // the SDKs retry exactly such answers (`docs/gemini-protocol.md`).
                return res;
            }
        }
        _ => {}
    }
    let result = match upload_id {
        None => {
            let bytes = axum::body::to_bytes(body, START_BODY_LIMIT).await.unwrap_or_default();
            entry.body_bytes = bytes.len();
            entry.json = lenient_json(&bytes);
            let json = entry.json.clone();
            state.record(entry);
            start(state, version, &ctx, json, malformed)
        }
        Some(id) => {
            let drop = fault == Some(FaultKind::Drop);
            chunk(state, &ctx, &id, &command, body, entry, drop, malformed).await
        }
    };
    result.unwrap_or_else(|refusal| with_upload_status(refusal.into_response(), "final"))
}

fn with_upload_status(mut res: Response, status: &'static str) -> Response {
    res.headers_mut().insert("x-goog-upload-status", HeaderValue::from_static(status));
    res
}

fn start(
    state: &State,
    version: &str,
    ctx: &Ctx,
    body: Option<Value>,
    malformed: bool,
) -> Result<Response, Refusal> {
    check_version(version)?;
    let owner = ctx.caller(state)?;
    if !ctx.header("x-goog-upload-protocol").is_some_and(|p| p.eq_ignore_ascii_case("resumable"))
        || !ctx.header("x-goog-upload-command").is_some_and(|c| c.eq_ignore_ascii_case("start"))
    {
        return Err(ApiError::invalid_argument("Request contains an invalid argument.").into());
    }
    let file = body.as_ref().and_then(|b| b.get("file")).cloned().unwrap_or(Value::Null);
    let mime_type = ctx
        .header("x-goog-upload-header-content-type")
        .map(str::to_string)
        .or_else(|| {
            either(&file, "mime_type", "mimeType").and_then(Value::as_str).map(str::to_string)
        })
        .unwrap_or_default();
    let declared_size = ctx
        .header("x-goog-upload-header-content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| {
            either(&file, "size_bytes", "sizeBytes")
                .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        });
    let display_name =
        either(&file, "display_name", "displayName").and_then(Value::as_str).map(str::to_string);
    if display_name.as_ref().is_some_and(|n| n.chars().count() > 512) {
        return Err(ApiError::invalid_argument(
            "* CreateFileRequest.file.display_name: must be at most 512 characters",
        )
        .into());
    }
    if malformed {
        // A 200 without the upload URL: the client must refuse to go on.
        return Ok(with_upload_status(StatusCode::OK.into_response(), "active"));
    }
    let base = ctx.public_base();
    // Direct: the upload URL points back at the path prefix the start came in on.
    let prefix = match ctx.via {
        Via::Gateway => String::new(),
        Via::Direct => {
            ctx.path.strip_suffix(&format!("/upload/{version}/files")).unwrap_or("").to_string()
        }
    };
    let upload_id = state.open_upload(UploadSession {
        owner,
        display_name,
        inspector: Inspector::new(&mime_type),
        declared_size,
        uri_base: format!("{base}{prefix}/{version}"),
        started: state.now(),
        finalized: None,
    });
    let url = format!(
        "{base}{prefix}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
    );
    let mut res = with_upload_status(StatusCode::OK.into_response(), "active");
    let h = res.headers_mut();
    let url = HeaderValue::from_str(&url).map_err(|_| ApiError::invalid_argument("bad Host"))?;
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert("x-goog-upload-url", url.clone());
    h.insert("x-goog-upload-control-url", url);
    h.insert("x-goog-upload-chunk-granularity", HeaderValue::from(GRANULARITY));
    h.insert("x-guploader-uploadid", upload_id_header(&upload_id));
    Ok(res)
}

/// One chunk command. Chunks need no API key: the upload URL is the capability (behind the
/// gateway, the subscription key is still checked).
#[allow(clippy::too_many_arguments)]
async fn chunk(
    state: &State,
    ctx: &Ctx,
    upload_id: &str,
    command: &str,
    body: Body,
    mut entry: LoggedRequest,
    drop: bool,
    malformed: bool,
) -> Result<Response, Refusal> {
    let Some(session) = state.upload(upload_id) else {
        state.record(entry);
        return Err(
            ApiError::invalid_argument("No upload session found for this upload_id.").into()
        );
    };
    let mut session = session.lock().await;
    let parts: Vec<&str> = command.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let upload = parts.contains(&"upload");
    let finalize = parts.contains(&"finalize");
    if parts.contains(&"query") {
        state.record(entry);
        return Ok(match &session.finalized {
            Some(id) => final_answer(state, &session.owner, id, false)?,
            None => size_received(
                with_upload_status(StatusCode::OK.into_response(), "active"),
                session.inspector.size(),
            ),
        });
    }
    if parts.contains(&"cancel") {
        state.record(entry);
        state.close_upload(upload_id);
        return Ok(with_upload_status(StatusCode::OK.into_response(), "cancelled"));
    }
    if let Some(id) = &session.finalized {
        state.record(entry);
        return if finalize && !upload {
            Ok(final_answer(state, &session.owner, id, malformed)?)
        } else {
            Err(ApiError::invalid_argument("The upload is already finalized.").into())
        };
    }
    if !upload && !finalize {
        state.record(entry);
        return Err(ApiError::invalid_argument(format!(
            "Unknown X-Goog-Upload-Command: {command}"
        ))
        .into());
    }
    if upload {
        let received = session.inspector.size();
        let offset = ctx.header("x-goog-upload-offset").and_then(|o| o.parse::<u64>().ok());
        if offset != Some(received) {
            state.record(entry);
            let got = offset.map_or("none".into(), |o| o.to_string());
            let mut res = ApiError::invalid_argument(format!(
                "Invalid X-Goog-Upload-Offset: expected {received}, got {got}"
            ))
            .into_response();
            res = size_received(with_upload_status(res, "active"), received);
            return Ok(res);
        }
        let length = ctx.header("content-length").and_then(|l| l.parse::<u64>().ok());
        if let (Some(declared), Some(length)) = (session.declared_size, length) {
            if received + length > declared {
                state.record(entry);
                return Err(ApiError::invalid_argument(
                    "The upload is larger than the declared size.",
                )
                .into());
            }
        }
        // A dropped connection takes half of the chunk first.
        let limit = if drop { length.unwrap_or(0) / 2 } else { u64::MAX };
        let mut taken = 0u64;
        let mut stream = body.into_data_stream();
        while taken < limit {
            let Some(piece) = stream.next().await else { break };
            let Ok(piece) = piece else {
                // The client went away: what arrived stays, as with Google's resumable uploads.
                entry.body_bytes = taken as usize;
                state.record(entry);
                return Err(ApiError::invalid_argument("The upload was interrupted.").into());
            };
            let piece = &piece[..piece.len().min((limit - taken) as usize)];
            if session
                .declared_size
                .is_some_and(|d| session.inspector.size() + piece.len() as u64 > d)
            {
                state.record(entry);
                state.close_upload(upload_id);
                return Err(ApiError::invalid_argument(
                    "The upload is larger than the declared size.",
                )
                .into());
            }
            session.inspector.feed(piece);
            taken += piece.len() as u64;
        }
        entry.body_bytes = taken as usize;
        if drop {
            state.record(entry);
            drop_connection(ctx).await;
            return Err(ApiError::internal().into());
        }
    }
    state.record(entry);
    if !finalize {
        return Ok(with_upload_status(StatusCode::OK.into_response(), "active"));
    }
    let size = session.inspector.size();
    if session.declared_size.is_some_and(|d| d != size) {
        return Err(
            ApiError::invalid_argument("The upload is smaller than the declared size.").into()
        );
    }
    let inspector = std::mem::replace(&mut session.inspector, Inspector::new(""));
    let description = inspector.finish();
    let id = new_file_id();
    // Whole microseconds, as `createTime` is written: `expirationTime` (nine digits) is then
    // exactly 48 h after it.
    let created = whole_micros(state.now());
    state.insert_file(FileRecord {
        uri: format!("{}/files/{id}", session.uri_base),
        id: id.clone(),
        owner: session.owner.clone(),
        display_name: session.display_name.clone(),
        created,
        expires: created + state.config.file_ttl,
        processing: state.processing_for(&description.mime_type, description.size_bytes),
        description,
        failure: None,
    });
    // The session stays to answer `query` with the File; its bytes are gone with `inspector`.
    session.finalized = Some(id.clone());
    let mut res = size_received(final_answer(state, &session.owner, &id, malformed)?, size);
    res.headers_mut().insert("x-guploader-uploadid", upload_id_header(upload_id));
    Ok(res)
}

/// `X-GUploader-UploadID`: the session's `upload_id` (ids are alphanumeric).
fn upload_id_header(upload_id: &str) -> HeaderValue {
    HeaderValue::from_str(upload_id).unwrap_or(HeaderValue::from_static(""))
}

/// The `start` body as Gemini reads it: JSON, or failing that JSON5 (single-quoted strings,
/// trailing commas — what some clients send); `None` when neither parses.
fn lenient_json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes)
        .ok()
        .or_else(|| json5::from_str(std::str::from_utf8(bytes).ok()?).ok())
}

/// `200`, `x-goog-upload-status: final`, `{"file": {...}}`.
fn final_answer(
    state: &State,
    owner: &str,
    id: &str,
    malformed: bool,
) -> Result<Response, Refusal> {
    let res = if malformed {
        wire::ok(json!({ "file": {} })).into_response()
    } else {
        let file = state.file_for(owner, id)?.resource(state.now());
        wire::ok(Final { file }).into_response()
    };
    Ok(with_upload_status(res, "final"))
}

/// The finalize answer.
#[derive(serde::Serialize)]
struct Final {
    file: crate::state::FileResource,
}

fn size_received(mut res: Response, n: u64) -> Response {
    res.headers_mut().insert("x-goog-upload-size-received", HeaderValue::from(n));
    res
}

/// `t` cut to whole microseconds.
fn whole_micros(t: std::time::SystemTime) -> std::time::SystemTime {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    std::time::UNIX_EPOCH + std::time::Duration::from_micros(since.as_micros() as u64)
}
