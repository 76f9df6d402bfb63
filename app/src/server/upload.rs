//! `upload_file` and `find_upload`: the multipart fields read, then the file's bytes handed,
//! as they arrive, to [`parley_files::Lifecycle::ingest`] under this request's quotas and
//! slots (`RequestAdmission`).

use leptos::server_fn::codec::MultipartData;
use parley_files::{
    content::{display_name, essence},
    Admission, Announced, ClientKey, Ingest, Ingested,
};

use super::{errors::OrApp, slots::UpstreamSlot, state, ServerState, UploadAllowance};
use crate::{error::AppError, model::UploadedFile};

/// Longest text field (`size`, `mime_type`, `name`) read, bytes: a name of
/// [`parley_files::content::MAX_NAME_CHARS`] characters fits with room to spare. A longer field
/// is refused as soon as its bytes pass this, before the rest is read.
pub const MAX_FIELD_BYTES: usize = 4 << 10;

/// See [`crate::api::find_upload`].
pub async fn find_upload(sha256: String) -> Result<Option<UploadedFile>, AppError> {
    let state = state()?;
    let owner = super::principal()?.owner();
    let sha256 = parse_sha256(&sha256)
        .ok_or_else(|| AppError::BadRequest("`sha256` is not 64 hex digits".into()))?;
    let now = std::time::SystemTime::now();
    let copy = state.files().usable_copy(&owner, &sha256, now).await.or_app()?;
    Ok(copy.map(already_active))
}

/// `text` as a lowercase hex SHA-256, if it is one.
fn parse_sha256(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then_some(text)
}

/// Reads `size`, `mime_type`, `name`, then streams `file` to Gemini. See
/// [`crate::api::upload_file`].
pub async fn upload_file(data: MultipartData) -> Result<UploadedFile, AppError> {
    let state = state()?;
    let owner = super::principal()?.owner();
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
    owner: &parley_store::Owner,
    multipart: &mut multer::Multipart<'static>,
    body: Option<&super::UploadBody>,
) -> Result<UploadedFile, AppError> {
    let bad = |e: String| AppError::BadUpload(e);
    let (mut size, mut mime_type, mut name, mut sha256) = (None, None, None, None);
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
                let essence =
                    essence(&text).ok_or_else(|| bad("`mime_type` is not a MIME type".into()))?;
                // Gemini would take the upload and refuse the File only when it is used.
                if !essence.is_empty() && !crate::model::is_accepted(&essence) {
                    return Err(AppError::UnsupportedType { mime_type: essence });
                }
                mime_type = Some(essence);
            }
            "name" => name = Some(text_field(&mut field, "name").await?),
            "sha256" => {
                let text = text_field(&mut field, "sha256").await?;
                sha256 = Some(
                    parse_sha256(&text)
                        .ok_or_else(|| bad("`sha256` is not 64 hex digits".into()))?,
                );
            }
            "file" => {
                if let Some(body) = body {
                    body.file_reached();
                }
                let size = size.ok_or_else(|| bad("`size` must come before `file`".into()))?;
                let mime_type = mime_type
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| bad("`mime_type` must come before `file`".into()))?;
                let name = display_name(name.as_deref().or(field.file_name()).unwrap_or_default());
                let file = Announced { size_bytes: size, mime_type, name, sha256 };
                return ingest(state, owner, field, file).await;
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

/// Hands the file's bytes to [`parley_files::Lifecycle::ingest`] and maps the outcome.
async fn ingest(
    state: &ServerState,
    owner: &parley_store::Owner,
    field: multer::Field<'static>,
    file: Announced,
) -> Result<UploadedFile, AppError> {
    let admission = RequestAdmission {
        engine: state.engine(),
        allowance: super::upload_allowance(),
        principal: super::principal()?,
        address: super::client_address(),
    };
    let ingest = Ingest {
        owner: owner.clone(),
        file,
        max_bytes: state.max_file_bytes(),
        admission: &admission,
        relay: &state.relay,
        from: ClientKey(super::client_address().0),
    };
    match state.files().ingest(ingest, field).await.or_app()? {
        Ingested::Uploaded(row) => Ok(super::uploaded(row)),
        Ingested::AlreadyActive(copy) => Ok(already_active(copy)),
    }
}

/// What this request lets an upload use: its upload-bytes quotas (when configured) and a slot
/// towards Gemini for its principal and address.
struct RequestAdmission<'a> {
    engine: &'a parley_chat::Engine,
    allowance: Option<UploadAllowance>,
    principal: parley_store::Principal,
    address: parley_store::ClientAddress,
}

impl Admission for RequestAdmission<'_> {
    type Refusal = AppError;
    type Slot = UpstreamSlot;

    async fn take_bytes(&self, bytes: u64) -> Result<(), AppError> {
        match &self.allowance {
            Some(allowance) => allowance.0.take(bytes).await,
            None => Ok(()),
        }
    }

    async fn slot(&self) -> Result<UpstreamSlot, AppError> {
        self.engine.slot(&self.principal, &self.address).await.or_app()
    }
}

/// `copy`, an `ACTIVE` File with the content asked for, counted as a dedup hit.
fn already_active(copy: parley_store::FileRow) -> UploadedFile {
    tracing::info!(file = %copy.name, "same content already ACTIVE for this principal: no new upload");
    metrics::counter!("parley_upload_dedup_hits_total").increment(1);
    super::uploaded(copy)
}
