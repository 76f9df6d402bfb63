//! `upload_file`: a streamed multipart body in, an `ACTIVE` File out — spooled to the store
//! of originals first (hashing on the way), so that content this session already has upstream
//! is not sent again; then [`parley_files::Lifecycle::upload`].

use futures::StreamExt;
use leptos::server_fn::codec::MultipartData;
use parley_files::{
    content::{content_matches, display_name, essence},
    ClientKey, FilesError, Spooled, Upload,
};

use super::{state, ServerState};
use crate::{error::AppError, model::UploadedFile};

/// Longest text field (`size`, `mime_type`, `name`) read, bytes: a name of
/// [`parley_files::content::MAX_NAME_CHARS`] characters fits with room to spare. A longer field
/// is refused as soon as its bytes pass this, before the rest is read.
pub const MAX_FIELD_BYTES: usize = 4 << 10;

/// Reads `size`, `mime_type`, `name`, then streams `file` to Gemini. See
/// [`crate::api::upload_file`].
pub async fn upload_file(data: MultipartData) -> Result<UploadedFile, AppError> {
    let state = state()?;
    let owner = super::session()?;
    let body = super::upload_body();
    let mut multipart =
        data.into_inner().ok_or_else(|| AppError::BadUpload("no multipart body".into()))?;
    let result = read_fields(&state, &owner, &mut multipart, body.as_ref()).await;
    // A body the guard cut says why (too slow, too much before `file`) better than multer can.
    match (result, body.and_then(|b| b.cut_reason())) {
        (Err(_), Some(reason)) => Err(reason),
        (result, _) => result,
    }
}

async fn read_fields(
    state: &ServerState,
    owner: &super::Session,
    multipart: &mut multer::Multipart<'static>,
    body: Option<&super::UploadBody>,
) -> Result<UploadedFile, AppError> {
    let bad = |e: String| AppError::BadUpload(e);
    let (mut size, mut mime_type, mut name) = (None, None, None);
    while let Some(mut field) = multipart.next_field().await.map_err(|e| bad(e.to_string()))? {
        match field.name().unwrap_or_default() {
            "size" => {
                let text = text_field(&mut field, "size").await?;
                size = Some(
                    text.trim()
                        .parse::<u64>()
                        .map_err(|_| bad("`size` is not a number of bytes".into()))?,
                );
            }
            "mime_type" => {
                let text = text_field(&mut field, "mime_type").await?;
                mime_type = Some(
                    essence(&text).ok_or_else(|| bad("`mime_type` is not a MIME type".into()))?,
                );
            }
            "name" => name = Some(text_field(&mut field, "name").await?),
            "file" => {
                if let Some(body) = body {
                    body.file_reached();
                }
                let size = size.ok_or_else(|| bad("`size` must come before `file`".into()))?;
                let mime_type = mime_type
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| bad("`mime_type` must come before `file`".into()))?;
                let name = display_name(name.as_deref().or(field.file_name()).unwrap_or_default());
                let limit = state.max_file_bytes.min(gemini::MAX_FILE_BYTES);
                if size > limit {
                    // Nothing is read, nothing stored.
                    return Err(AppError::TooLarge { name, size_bytes: size, limit_bytes: limit });
                }
                return upload(state, &owner.0, field, size, mime_type, name).await;
            }
            other => return Err(bad(format!("unexpected field `{other}`"))),
        }
    }
    Err(bad("the body has no `file` field".into()))
}

/// A text field's value, read chunk by chunk and refused once it passes [`MAX_FIELD_BYTES`].
async fn text_field(field: &mut multer::Field<'static>, name: &str) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| AppError::BadUpload(e.to_string()))? {
        if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(AppError::BadUpload(format!(
                "the `{name}` field is longer than {MAX_FIELD_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| AppError::BadUpload(format!("the `{name}` field is not UTF-8 text")))
}

/// Spools the bytes (SHA-256 known before anything goes out; every byte counted against the
/// upload-bytes quotas as it arrives), checks them against the declared type, returns this
/// session's `ACTIVE` File with the same content if there is one (dedup), else uploads the
/// spooled bytes under a slot towards Gemini ([`parley_files::Lifecycle::upload`]) and retains
/// the original.
async fn upload<E: std::fmt::Display>(
    state: &ServerState,
    owner: &str,
    body: impl futures::Stream<Item = Result<bytes::Bytes, E>>,
    size: u64,
    mime_type: String,
    name: String,
) -> Result<UploadedFile, AppError> {
    let allowance = super::upload_allowance();
    let refused = std::sync::Mutex::new(None);
    let body = body.then(|chunk| {
        let (allowance, refused) = (allowance.clone(), &refused);
        async move {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if let Some(allowance) = &allowance {
                if let Err(e) = allowance.0.take(chunk.len() as u64).await {
                    *refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                    return Err("the upload-bytes quota is used up".to_string());
                }
            }
            Ok(chunk)
        }
    });
    let originals = &state.files.originals;
    let spooled = originals.spool(body, size).await.map_err(|e| {
        refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| FilesError::from(e).into())
    })?;
    if spooled.size_bytes != size {
        originals.discard(spooled).await;
        return Err(AppError::BadUpload(format!(
            "the file had fewer bytes than the {size} announced"
        )));
    }
    let head = originals.head(&spooled, 8192).await.unwrap_or_default();
    if let Err(detected) = content_matches(&mime_type, &head) {
        originals.discard(spooled).await;
        tracing::info!(declared = %mime_type, %detected, "upload refused: its bytes are another type");
        return Err(AppError::ContentMismatch { name, declared: mime_type, detected });
    }
    let now = std::time::SystemTime::now();
    if let Ok(Some(copy)) = state.files.usable_copy(owner, &spooled.sha256, now).await {
        tracing::info!(file = %copy.name, "same content already ACTIVE for this session: no new upload");
        metrics::counter!("parley_upload_dedup_hits_total").increment(1);
        keep(state, spooled).await;
        return Ok(copy.into());
    }
    let result = send(state, owner, &spooled, mime_type, name).await;
    if result.is_ok() {
        keep(state, spooled).await;
    } else {
        originals.discard(spooled).await;
    }
    result
}

/// Uploads spooled bytes under a slot towards Gemini.
async fn send(
    state: &ServerState,
    owner: &str,
    spooled: &Spooled,
    mime_type: String,
    name: String,
) -> Result<UploadedFile, AppError> {
    let _slot = super::upstream_slot(state).await?;
    let source = state.files.originals.spooled_bytes(spooled);
    let upload = Upload {
        source: &source,
        size_bytes: spooled.size_bytes,
        mime_type,
        display_name: name,
        sha256: spooled.sha256.clone(),
        owner: owner.to_string(),
    };
    Ok(state.files.upload(upload).await?.into())
}

/// Retains a spooled upload per the policy, charged to the client address it came from; a
/// failure only costs the re-upload later.
async fn keep(state: &ServerState, spooled: Spooled) {
    let from = ClientKey(super::client_address().0);
    if let Err(e) = state.files.originals.keep(spooled, &from).await {
        tracing::warn!(error = %e, "an original could not be retained");
    }
}
