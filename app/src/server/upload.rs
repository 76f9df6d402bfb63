//! `upload_file`: a streamed multipart body in, an `ACTIVE` File out — spooled to the store
//! of originals first, so that content this session already has upstream is not sent again.

use leptos::server_fn::codec::MultipartData;

use super::{
    errors::from_gemini,
    originals::{OriginalsError, Spooled},
    refresh::usable,
    registry::{FileRow, ACTIVE},
    state, ServerState,
};
use crate::{error::AppError, model::UploadedFile};

/// Longest accepted display name, characters (Gemini's `displayName` limit).
const MAX_NAME_CHARS: usize = 512;

/// Reads `size`, `mime_type`, `name`, then streams `file` to Gemini. See
/// [`crate::api::upload_file`].
pub async fn upload_file(data: MultipartData) -> Result<UploadedFile, AppError> {
    let state = state()?;
    let owner = super::session()?;
    let bad = |e: String| AppError::BadUpload(e);
    let mut multipart = data.into_inner().ok_or_else(|| bad("no multipart body".into()))?;
    let (mut size, mut mime_type, mut name) = (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(|e| bad(e.to_string()))? {
        match field.name().unwrap_or_default() {
            "size" => {
                let text = field.text().await.map_err(|e| bad(e.to_string()))?;
                size = Some(text.trim().parse::<u64>().map_err(|_| bad("`size` is not a number of bytes".into()))?);
            }
            "mime_type" => mime_type = Some(field.text().await.map_err(|e| bad(e.to_string()))?.trim().to_string()),
            "name" => {
                let text = field.text().await.map_err(|e| bad(e.to_string()))?;
                name = Some(text.chars().take(MAX_NAME_CHARS).collect::<String>());
            }
            "file" => {
                let size = size.ok_or_else(|| bad("`size` must come before `file`".into()))?;
                if size > gemini::MAX_FILE_BYTES {
                    return Err(bad(format!("the file is {size} bytes, over Gemini's limit of {} bytes", gemini::MAX_FILE_BYTES)));
                }
                let mime_type = mime_type
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| bad("`mime_type` must come before `file`".into()))?;
                let name = name.or_else(|| field.file_name().map(str::to_string)).unwrap_or_else(|| "file".into());
                return upload(&state, &owner.0, field, size, mime_type, name).await;
            }
            other => return Err(bad(format!("unexpected field `{other}`"))),
        }
    }
    Err(bad("the body has no `file` field".into()))
}

/// Spools the bytes (SHA-256 known before anything goes out), returns this session's
/// `ACTIVE` File with the same content if there is one (dedup, BC-15), else uploads the
/// spooled bytes, waits for `ACTIVE`, records the File and retains the original.
async fn upload<E: std::fmt::Display>(
    state: &ServerState,
    owner: &str,
    body: impl futures::Stream<Item = Result<bytes::Bytes, E>>,
    size: u64,
    mime_type: String,
    name: String,
) -> Result<UploadedFile, AppError> {
    let spooled = state.originals.spool(body, size).await.map_err(|e| match e {
        OriginalsError::Body(_) | OriginalsError::TooLong { .. } => AppError::BadUpload(e.to_string()),
        e => {
            tracing::error!(error = %e, "an upload could not be spooled");
            AppError::Transport("the server could not store the upload".into())
        }
    })?;
    if spooled.size_bytes != size {
        state.originals.discard(spooled).await;
        return Err(AppError::BadUpload(format!("the file had fewer bytes than the {size} announced")));
    }
    let now = std::time::SystemTime::now();
    let copies = state.registry.active_copies(owner, &state.upstream_id, &spooled.sha256).await.unwrap_or_default();
    if let Some(copy) = copies.into_iter().find(|c| usable(state, c, now)) {
        tracing::info!(file = %copy.name, "same content already ACTIVE for this session: no new upload");
        keep(state, spooled).await;
        return Ok(copy.into());
    }
    let result = send(state, owner, &spooled, mime_type, name).await;
    if result.is_ok() {
        keep(state, spooled).await;
    } else {
        state.originals.discard(spooled).await;
    }
    result
}

/// Uploads spooled bytes to Gemini, waits for `ACTIVE`, records the File.
async fn send(state: &ServerState, owner: &str, spooled: &Spooled, mime_type: String, name: String) -> Result<UploadedFile, AppError> {
    let bytes = state.originals.read_spooled(spooled).await.map_err(|e| {
        tracing::error!(error = %e, "a spooled upload could not be read");
        AppError::Transport("the server could not read the upload back".into())
    })?;
    let req = gemini::UploadRequest { display_name: Some(name.clone()), mime_type: mime_type.clone(), size_bytes: spooled.size_bytes };
    let file = state.gemini.upload_stream(&req, bytes).await.map_err(|e| from_gemini(e, Some(&name)))?;
    let file = state.gemini.wait_active(file, &state.poll).await.map_err(|e| from_gemini(e, Some(&name)))?;
    tracing::info!(file = %file.name, bytes = file.size_bytes, mime = %mime_type, "upload ACTIVE");
    let row = FileRow {
        owner: owner.to_string(),
        upstream: state.upstream_id.clone(),
        name: file.name,
        uri: file.uri,
        mime_type: if file.mime_type.is_empty() { mime_type } else { file.mime_type },
        size_bytes: spooled.size_bytes,
        display_name: name,
        sha256: spooled.sha256.clone(),
        create_time: file.create_time,
        expiration_time: file.expiration_time,
        state: ACTIVE.into(),
        recorded_at_ms: now_ms(),
    };
    if let Err(e) = state.registry.record(row.clone()).await {
        tracing::error!(error = %e, file = %row.name, "an upload could not be recorded");
        // Unrecorded, it could never be used: take it back rather than leave it.
        let _ = state.gemini.delete_file(&row.name).await;
        return Err(AppError::Transport("the upload could not be recorded on the server".into()));
    }
    Ok(row.into())
}

/// Retains a spooled upload per the policy; a failure only costs the re-upload later.
async fn keep(state: &ServerState, spooled: Spooled) {
    if let Err(e) = state.originals.keep(spooled).await {
        tracing::warn!(error = %e, "an original could not be retained");
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
