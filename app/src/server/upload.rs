//! `upload_file`: a streamed multipart body in, an `ACTIVE` File out — spooled to the store
//! of originals first, so that content this session already has upstream is not sent again.

use futures::StreamExt;
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

/// Longest text field (`size`, `mime_type`, `name`) read, bytes: a name of
/// [`MAX_NAME_CHARS`] characters fits with room to spare. A longer field is refused as soon as
/// its bytes pass this, before the rest is read.
pub const MAX_FIELD_BYTES: usize = 4 << 10;

/// Reads `size`, `mime_type`, `name`, then streams `file` to Gemini. See
/// [`crate::api::upload_file`].
pub async fn upload_file(data: MultipartData) -> Result<UploadedFile, AppError> {
    let state = state()?;
    let owner = super::session()?;
    let body = super::upload_body();
    let mut multipart = data.into_inner().ok_or_else(|| AppError::BadUpload("no multipart body".into()))?;
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
                size = Some(text.trim().parse::<u64>().map_err(|_| bad("`size` is not a number of bytes".into()))?);
            }
            "mime_type" => {
                let text = text_field(&mut field, "mime_type").await?;
                mime_type = Some(essence(&text).ok_or_else(|| bad("`mime_type` is not a MIME type".into()))?);
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
            return Err(AppError::BadUpload(format!("the `{name}` field is longer than {MAX_FIELD_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| AppError::BadUpload(format!("the `{name}` field is not UTF-8 text")))
}

/// Spools the bytes (SHA-256 known before anything goes out; every byte counted against the
/// upload-bytes quotas as it arrives), checks them against the declared type, returns this
/// session's `ACTIVE` File with the same content if there is one (dedup, BC-15), else uploads
/// the spooled bytes, waits for `ACTIVE`, records the File and retains the original.
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
    let body = body.map(|chunk| {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if let Some(allowance) = &allowance {
            if let Err(e) = allowance.0.take(chunk.len() as u64) {
                *refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                return Err("the upload-bytes quota is used up".to_string());
            }
        }
        Ok(chunk)
    });
    let spooled = state.originals.spool(body, size).await.map_err(|e| {
        if let Some(refusal) = refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            return refusal;
        }
        match e {
            OriginalsError::Body(_) | OriginalsError::TooLong { .. } => AppError::BadUpload(e.to_string()),
            e => {
                tracing::error!(error = %e, "an upload could not be spooled");
                AppError::Transport("the server could not store the upload".into())
            }
        }
    })?;
    if spooled.size_bytes != size {
        state.originals.discard(spooled).await;
        return Err(AppError::BadUpload(format!("the file had fewer bytes than the {size} announced")));
    }
    let head = state.originals.head(&spooled, 8192).await.unwrap_or_default();
    if let Err(detected) = content_matches(&mime_type, &head) {
        state.originals.discard(spooled).await;
        tracing::info!(declared = %mime_type, %detected, "upload refused: its bytes are another type");
        return Err(AppError::ContentMismatch { name, declared: mime_type, detected });
    }
    let now = std::time::SystemTime::now();
    let copies = state.registry.active_copies(owner, &state.upstream_id, &spooled.sha256).await.unwrap_or_default();
    if let Some(copy) = copies.into_iter().find(|c| usable(state, c, now)) {
        tracing::info!(file = %copy.name, "same content already ACTIVE for this session: no new upload");
        keep(state, spooled).await;
        return Ok(copy.into());
    }
    let result = match super::upstream_slot(state).await {
        Ok(_slot) => send(state, owner, &spooled, mime_type, name).await,
        Err(e) => Err(e),
    };
    if result.is_ok() {
        keep(state, spooled).await;
    } else {
        state.originals.discard(spooled).await;
    }
    result
}

/// Uploads spooled bytes to Gemini, waits for `ACTIVE`, records the File.
async fn send(state: &ServerState, owner: &str, spooled: &Spooled, mime_type: String, name: String) -> Result<UploadedFile, AppError> {
    let req = gemini::UploadRequest { display_name: Some(name.clone()), mime_type: mime_type.clone(), size_bytes: spooled.size_bytes };
    let bytes = state.originals.spooled_bytes(spooled);
    let file = state.gemini.upload_from(&req, &bytes).await.map_err(|e| from_gemini(e, Some(&name)))?;
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

/// Retains a spooled upload per the policy, charged to the client address it came from; a
/// failure only costs the re-upload later.
async fn keep(state: &ServerState, spooled: Spooled) {
    if let Err(e) = state.originals.keep(spooled, &super::client_address()).await {
        tracing::warn!(error = %e, "an original could not be retained");
    }
}

/// The essence of a MIME type (`type/subtype`, lowercase, parameters dropped), when it is one:
/// RFC 6838 restricted names (letters, digits and `!#$&^_.+-`, 127 characters at most each).
/// Anything else — a NUL, a space, a missing `/` — is refused before it could reach a header.
pub fn essence(mime_type: &str) -> Option<String> {
    let essence = mime_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let name = |part: &str| {
        (1..=127).contains(&part.len())
            && part.as_bytes()[0].is_ascii_alphanumeric()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    (name(kind) && name(subtype)).then_some(essence)
}

/// The person's file name made safe to show and to give Gemini: control characters dropped,
/// whitespace trimmed, at most [`MAX_NAME_CHARS`] characters, `file` when nothing is left. It
/// is never used as a path (originals are stored by SHA-256).
pub fn display_name(raw: &str) -> String {
    let name: String = raw.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let name = name.trim();
    if name.is_empty() { "file".into() } else { name.to_string() }
}

/// Checks the declared MIME type against the content's magic bytes (`head`: the first bytes)
/// with the `infer` crate. Content without a known signature (text, CSV, Markdown, …) passes;
/// so does a related type of the same family (`image/jpg` for `image/jpeg`; audio and video
/// share containers such as MP4 and WebM).
///
/// # Errors
/// The detected MIME type when the content is plainly something else (an executable or a PDF
/// sent as `image/png`, a PNG sent as `text/plain`).
pub fn content_matches(declared: &str, head: &[u8]) -> Result<(), String> {
    let Some(kind) = infer::get(head) else { return Ok(()) };
    let detected = kind.mime_type();
    let family = |m: &str| m.split('/').next().unwrap_or_default().to_ascii_lowercase();
    let (declared_family, detected_family) = (family(declared), family(detected));
    let media = |f: &str| f == "audio" || f == "video";
    let related = detected.eq_ignore_ascii_case(declared)
        || (declared_family == detected_family && declared_family != "application")
        || (media(&declared_family) && media(&detected_family));
    if related {
        Ok(())
    } else {
        Err(detected.to_string())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    /// An ELF header's first bytes, padded to the 64 bytes of a real one.
    const ELF: &[u8; 64] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    #[test]
    fn declared_types_must_match_the_magic_bytes() {
        assert_eq!(content_matches("image/png", PNG), Ok(()));
        assert_eq!(content_matches("image/jpg", b"\xff\xd8\xff\xe0\0\x10JFIF"), Ok(()), "same family");
        assert_eq!(content_matches("application/pdf", PDF), Ok(()));
        assert_eq!(content_matches("text/plain", b"just words, no signature"), Ok(()));
        assert_eq!(content_matches("text/csv", b""), Ok(()));
        assert_eq!(content_matches("image/png", PDF), Err("application/pdf".into()));
        assert_eq!(content_matches("application/pdf", PNG), Err("image/png".into()));
        assert_eq!(content_matches("text/plain", PNG), Err("image/png".into()));
        assert!(content_matches("image/jpeg", ELF.as_slice()).is_err(), "an executable sent as an image");
        assert!(content_matches("application/pdf", ELF.as_slice()).is_err());
    }

    #[test]
    fn mime_types_are_checked_and_reduced_to_their_essence() {
        assert_eq!(essence("text/csv; charset=utf-8").as_deref(), Some("text/csv"));
        assert_eq!(essence(" Image/PNG ").as_deref(), Some("image/png"));
        assert_eq!(essence("application/vnd.openxmlformats-officedocument.wordprocessingml.document").as_deref().map(str::len), Some(71));
        for bad in ["\0", "text", "text/", "/plain", "text/pl ain", "text/plain\0", "te\nxt/plain", "", "a/b/c"] {
            assert_eq!(essence(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_names_are_sanitised() {
        assert_eq!(display_name("  report.pdf "), "report.pdf");
        assert_eq!(display_name("a\u{0}b\r\nc\u{7f}.txt"), "abc.txt");
        assert_eq!(display_name("../../etc/passwd"), "../../etc/passwd", "kept as text: never a path");
        assert_eq!(display_name("\u{1}\u{2}"), "file");
        assert_eq!(display_name(&"x".repeat(600)).chars().count(), MAX_NAME_CHARS);
    }
}
