//! `upload_file`: a streamed multipart body in, an `ACTIVE` File out.

use futures::StreamExt;
use leptos::server_fn::codec::MultipartData;
use sha2::{Digest, Sha256};

use super::registry::FileRow;
use super::{errors::from_gemini, state};
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
                let mime_type = mime_type
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| bad("`mime_type` must come before `file`".into()))?;
                let name = name.or_else(|| field.file_name().map(str::to_string)).unwrap_or_else(|| "file".into());
                let mut hasher = Sha256::new();
                let hashed = field.map(|chunk| {
                    chunk.inspect(|bytes| hasher.update(bytes))
                });
                let req = gemini::UploadRequest { display_name: Some(name.clone()), mime_type: mime_type.clone(), size_bytes: size };
                let file = state.gemini.upload_stream(&req, hashed).await.map_err(|e| from_gemini(e, Some(&name)))?;
                let sha256 = hex::encode(hasher.finalize());
                let file = state.gemini.wait_active(file, &state.poll).await.map_err(|e| from_gemini(e, Some(&name)))?;
                tracing::info!(file = %file.name, bytes = file.size_bytes, mime = %mime_type, "upload ACTIVE");
                let uploaded = UploadedFile {
                    mime_type: if file.mime_type.is_empty() { mime_type } else { file.mime_type },
                    name: file.name,
                    uri: file.uri,
                    size_bytes: size,
                    sha256,
                    expiration_time: file.expiration_time,
                    display_name: name,
                };
                let row = FileRow {
                    owner: owner.0.clone(),
                    upstream: state.upstream_id.clone(),
                    name: uploaded.name.clone(),
                    uri: uploaded.uri.clone(),
                    mime_type: uploaded.mime_type.clone(),
                    size_bytes: uploaded.size_bytes,
                    display_name: uploaded.display_name.clone(),
                    sha256: uploaded.sha256.clone(),
                    create_time: file.create_time,
                    expiration_time: uploaded.expiration_time.clone(),
                    state: "ACTIVE".into(),
                    recorded_at_ms: now_ms(),
                };
                if let Err(e) = state.registry.record(row).await {
                    tracing::error!(error = %e, file = %uploaded.name, "an upload could not be recorded");
                    // Unrecorded, it could never be used: take it back rather than leave it.
                    let _ = state.gemini.delete_file(&uploaded.name).await;
                    return Err(AppError::Transport("the upload could not be recorded on the server".into()));
                }
                return Ok(uploaded);
            }
            other => return Err(bad(format!("unexpected field `{other}`"))),
        }
    }
    Err(bad("the body has no `file` field".into()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
