//! `upload_file`: a streamed multipart body in, an `ACTIVE` File out — spooled to the store
//! of originals first (hashing on the way), so that content this session already has upstream
//! is not sent again; then [`parley_files::Lifecycle::upload`].

use futures::StreamExt;
use leptos::server_fn::codec::MultipartData;
use parley_files::{
    content::{content_matches, display_name, essence},
    ClientKey, Spooled, Upload, UploadBytes,
};

use super::{
    errors::{OrApp, ToAppError},
    state, ServerState,
};
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
    Ok(copy.map(duplicate))
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
                mime_type = Some(
                    essence(&text).ok_or_else(|| bad("`mime_type` is not a MIME type".into()))?,
                );
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
                let limit = state.max_file_bytes().min(gemini::MAX_FILE_BYTES);
                if size > limit {
                    // Nothing is read, nothing stored.
                    return Err(AppError::TooLarge { name, size_bytes: size, limit_bytes: limit });
                }
                let file = FileFields { size, mime_type, name, sha256 };
                return upload(state, owner, field, file).await;
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

/// Bytes of the file's start read before anything goes upstream, for the magic-byte check.
const HEAD_BYTES: usize = 8192;

/// Pieces queued from the upload towards the spool before the body stops being read.
const SPOOL_PIECES_IN_FLIGHT: usize = 8;

/// Why the body stream given to the upload stopped with an error of Parley's own making
/// (the upload is cancelled upstream then, and this is the answer).
enum Stopped {
    /// Refused: the quota ran out, or the bytes are not the SHA-256 declared.
    Refused(AppError),
    /// The whole content turned out to be this session's `ACTIVE` File already.
    Duplicate(Box<parley_store::FileRow>),
}

/// Uploads the bytes while they arrive: the first [`HEAD_BYTES`] are checked against the
/// declared type, then — with [`RelayBudget`] memory free, else [`store_then_send`] — (under a
/// slot towards Gemini) every piece goes on to Gemini's resumable
/// upload ([`parley_files::UploadBytes::Arriving`]) and to the spool of originals at once,
/// hashed on the way and counted against the upload-bytes quotas. Only once the body has
/// ended, its size and SHA-256 are known: a SHA-256 other than the `declared` one, or content
/// this session already has `ACTIVE`, cancels the upstream upload before its last chunk.
/// With a `declared` SHA-256 this session already has `ACTIVE`, nothing is read at all.
async fn upload<E: std::fmt::Display + Send>(
    state: &ServerState,
    owner: &parley_store::Owner,
    body: impl futures::Stream<Item = Result<bytes::Bytes, E>> + Send,
    file: FileFields,
) -> Result<UploadedFile, AppError> {
    let now = std::time::SystemTime::now();
    if let Some(sha256) = &file.sha256 {
        if let Some(copy) = state.files().usable_copy(owner, sha256, now).await.or_app()? {
            return Ok(duplicate(copy));
        }
    }
    let stopped = std::sync::Mutex::new(None);
    // The first reason stands: a quota refusal also ends the body with an error.
    let stop = |why: Stopped| {
        stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(why);
    };
    let allowance = super::upload_allowance();
    let body = body.then(|chunk| {
        let (allowance, stop) = (allowance.clone(), &stop);
        async move {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if let Some(allowance) = &allowance {
                if let Err(e) = allowance.0.take(chunk.len() as u64).await {
                    stop(Stopped::Refused(e));
                    return Err("the upload-bytes quota is used up".to_string());
                }
            }
            Ok(chunk)
        }
    });
    let mut body = Box::pin(body);
    let head = match read_head(&mut body).await {
        Ok(head) => head,
        Err(e) => return Err(stopped_or(&stopped, AppError::BadUpload(e))),
    };
    let start: Vec<u8> = head.iter().flat_map(|piece| piece.iter().copied()).collect();
    if let Err(detected) = content_matches(&file.mime_type, &start) {
        tracing::info!(declared = %file.mime_type, %detected, "upload refused: its bytes are another type");
        let (name, declared) = (file.name, file.mime_type);
        return Err(AppError::ContentMismatch { name, declared, detected });
    }
    let body = futures::stream::iter(head.into_iter().map(Ok)).chain(body);
    match state.relay.take() {
        Some(_held) => relay(state, owner, body, file, &stopped, &stop).await,
        None => store_then_send(state, owner, body, file, &stopped).await,
    }
}

/// Memory for uploads relayed while they arrive, counted in chunks of [`gemini::CHUNK_SIZE`]
/// (8 MiB: what a relayed upload holds until Gemini acknowledges it). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RelayBudget(std::sync::Arc<tokio::sync::Semaphore>);

impl RelayBudget {
    /// A budget of `bytes` (rounded down to whole chunks; `0`: no upload is relayed).
    pub fn new(bytes: u64) -> Self {
        let chunks = usize::try_from(bytes / gemini::CHUNK_SIZE as u64).unwrap_or(usize::MAX);
        RelayBudget(std::sync::Arc::new(tokio::sync::Semaphore::new(
            chunks.min(tokio::sync::Semaphore::MAX_PERMITS),
        )))
    }

    /// One chunk's memory, if there is some free now (given back when dropped).
    fn take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// Without relay memory free: the whole body is spooled (hashed, counted against the quotas)
/// first, checked (size, declared SHA-256, content this session already has), then sent from
/// the spool under a slot towards Gemini ([`parley_files::UploadBytes::Stored`]), and retained.
async fn store_then_send(
    state: &ServerState,
    owner: &parley_store::Owner,
    body: impl futures::Stream<Item = Result<bytes::Bytes, String>>,
    file: FileFields,
    stopped: &std::sync::Mutex<Option<Stopped>>,
) -> Result<UploadedFile, AppError> {
    let originals = state.files().originals();
    let spooled = originals
        .spool(body, file.size)
        .await
        .map_err(|e| stopped_or(stopped, parley_files::FilesError::from(e).to_app()))?;
    let refused = match &file.sha256 {
        _ if spooled.size_bytes != file.size => Some(AppError::BadUpload(format!(
            "the file had {} bytes, not the {} announced",
            spooled.size_bytes, file.size
        ))),
        Some(declared) if *declared != spooled.sha256 => {
            Some(not_as_declared(declared, &spooled.sha256))
        }
        _ => None,
    };
    if let Some(e) = refused {
        originals.discard(spooled).await;
        return Err(e);
    }
    let now = std::time::SystemTime::now();
    if let Ok(Some(copy)) = state.files().usable_copy(owner, &spooled.sha256, now).await {
        keep(state, spooled).await;
        return Ok(duplicate(copy));
    }
    let sent = async {
        let _slot = super::upstream_slot(state).await?;
        let source = originals.spooled_bytes(&spooled);
        let upload = Upload {
            source: UploadBytes::Stored { source: &source, sha256: spooled.sha256.clone() },
            size_bytes: spooled.size_bytes,
            mime_type: file.mime_type,
            display_name: file.name,
            owner: owner.clone(),
        };
        state.files().upload(upload).await.or_app()
    }
    .await;
    match sent {
        Ok(row) => {
            keep(state, spooled).await;
            Ok(super::uploaded(row))
        }
        Err(e) => {
            originals.discard(spooled).await;
            Err(e)
        }
    }
}

/// With relay memory: each piece goes to Gemini and to the spool at once (see [`upload`]).
async fn relay<F: Fn(Stopped) + Sync>(
    state: &ServerState,
    owner: &parley_store::Owner,
    body: impl futures::Stream<Item = Result<bytes::Bytes, String>> + Send,
    file: FileFields,
    stopped: &std::sync::Mutex<Option<Stopped>>,
    stop: &F,
) -> Result<UploadedFile, AppError> {
    let originals = state.files().originals();
    let (to_spool, spool_rx) = futures::channel::mpsc::channel(SPOOL_PIECES_IN_FLIGHT);
    let (spool_done, spooled_summary) = futures::channel::oneshot::channel();
    // Hashing and writing the original run as a task of their own, beside the relay: another
    // core can take them. A spool whose upload has gone (the request was dropped) is deleted.
    let (spooled_tx, spooled_rx) = futures::channel::oneshot::channel();
    let spooling = originals.clone();
    tokio::spawn(async move {
        let spooled = spooling.spool(spool_rx.map(Ok::<_, String>), file.size).await;
        let _ = spool_done.send(spooled.as_ref().map(|s| (s.sha256.clone(), s.size_bytes)).ok());
        if let Err(Ok(orphan)) = spooled_tx.send(spooled) {
            spooling.discard(orphan).await;
        }
    });
    let spool = async move {
        spooled_rx
            .await
            .unwrap_or_else(|_| Err(parley_files::OriginalsError::Body("the spool stopped".into())))
    };
    let checks = Checks { state, owner, declared: file.sha256.clone(), stop };
    let (sha256_out, sha256) = futures::channel::oneshot::channel();
    let arriving = teed(body, to_spool, spooled_summary, checks, sha256_out);
    let send = async {
        let _slot = super::upstream_slot(state).await?;
        let upload = Upload {
            source: UploadBytes::Arriving { stream: arriving.boxed(), sha256 },
            size_bytes: file.size,
            mime_type: file.mime_type,
            display_name: file.name,
            owner: owner.clone(),
        };
        state.files().upload(upload).await.or_app()
    };
    let (spooled, sent) = futures::join!(spool, send);
    let stopped = stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    match (sent, spooled, stopped) {
        (Ok(row), Ok(spooled), _) => {
            keep(state, spooled).await;
            Ok(super::uploaded(row))
        }
        (Err(_), Ok(spooled), Some(Stopped::Duplicate(copy))) => {
            keep(state, spooled).await;
            Ok(duplicate(*copy))
        }
        (sent, spooled, stopped) => {
            match spooled {
                Ok(spooled) => originals.discard(spooled).await,
                Err(e) => tracing::warn!(error = %e, "an upload could not be spooled"),
            }
            Err(match (stopped, sent) {
                (Some(Stopped::Refused(e)), _) => e,
                (_, Err(e)) => e,
                (_, Ok(row)) => {
                    // Uploaded, but the original could not be staged: the File is usable;
                    // only a later re-upload is lost.
                    tracing::warn!(file = %row.name, "an upload's original could not be spooled");
                    return Ok(super::uploaded(row));
                }
            })
        }
    }
}

/// What the multipart fields said about the file.
struct FileFields {
    size: u64,
    mime_type: String,
    name: String,
    /// The SHA-256 the browser computed, lowercase hex.
    sha256: Option<String>,
}

/// `copy`, counted as a dedup hit.
fn duplicate(copy: parley_store::FileRow) -> UploadedFile {
    tracing::info!(file = %copy.name, "same content already ACTIVE for this principal: no new upload");
    metrics::counter!("parley_upload_dedup_hits_total").increment(1);
    super::uploaded(copy)
}

/// The body's first pieces, up to [`HEAD_BYTES`] or the end.
async fn read_head(
    body: &mut (impl futures::Stream<Item = Result<bytes::Bytes, String>> + Unpin),
) -> Result<Vec<bytes::Bytes>, String> {
    let (mut head, mut len) = (Vec::new(), 0);
    while len < HEAD_BYTES {
        match body.next().await {
            Some(piece) => {
                let piece = piece?;
                len += piece.len();
                head.push(piece);
            }
            None => break,
        }
    }
    Ok(head)
}

/// The reason recorded in `stopped` if there is one, else `otherwise`.
fn stopped_or(stopped: &std::sync::Mutex<Option<Stopped>>, otherwise: AppError) -> AppError {
    match stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        Some(Stopped::Refused(e)) => e,
        _ => otherwise,
    }
}

/// What is checked once the whole body has arrived.
struct Checks<'a, F> {
    state: &'a ServerState,
    owner: &'a parley_store::Owner,
    declared: Option<String>,
    stop: &'a F,
}

/// `body` as it goes upstream, each piece also sent to the spool; at its end the spool is
/// finished and its SHA-256 checked ([`Checks`]): passed, it goes to `sha256_out` and the
/// stream ends; failed, the stream ends with an error (so the upload is cancelled before its
/// last chunk).
fn teed<'a, F: Fn(Stopped) + Sync>(
    body: impl futures::Stream<Item = Result<bytes::Bytes, String>> + Send + 'a,
    to_spool: futures::channel::mpsc::Sender<bytes::Bytes>,
    spooled: futures::channel::oneshot::Receiver<Option<(String, u64)>>,
    checks: Checks<'a, F>,
    sha256_out: futures::channel::oneshot::Sender<String>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, String>> + Send + 'a {
    use futures::SinkExt;
    struct Tee<B, C> {
        body: std::pin::Pin<Box<B>>,
        to_spool: Option<futures::channel::mpsc::Sender<bytes::Bytes>>,
        spooled: Option<futures::channel::oneshot::Receiver<Option<(String, u64)>>>,
        checks: C,
        sha256_out: Option<futures::channel::oneshot::Sender<String>>,
    }
    let tee = Tee {
        body: Box::pin(body),
        to_spool: Some(to_spool),
        spooled: Some(spooled),
        checks,
        sha256_out: Some(sha256_out),
    };
    futures::stream::unfold(tee, |mut tee| async move {
        let mut to_spool = tee.to_spool.take()?;
        match tee.body.next().await {
            Some(Ok(piece)) => {
                if to_spool.send(piece.clone()).await.is_err() {
                    (tee.checks.stop)(Stopped::Refused(not_spooled()));
                    return Some((Err("the upload could not be spooled".into()), tee));
                }
                tee.to_spool = Some(to_spool);
                Some((Ok(piece), tee))
            }
            Some(Err(e)) => {
                (tee.checks.stop)(Stopped::Refused(AppError::BadUpload(e.clone())));
                Some((Err(e), tee))
            }
            None => {
                drop(to_spool);
                let spooled = tee.spooled.take()?.await.ok().flatten();
                let verdict = match spooled {
                    None => {
                        (tee.checks.stop)(Stopped::Refused(not_spooled()));
                        Err("the upload could not be spooled".to_string())
                    }
                    Some((sha256, _)) => {
                        whole_body_checks(&tee.checks, &sha256).await.map(|()| sha256)
                    }
                };
                match verdict {
                    Ok(sha256) => {
                        let _ = tee.sha256_out.take()?.send(sha256);
                        None
                    }
                    Err(e) => Some((Err(e), tee)),
                }
            }
        }
    })
}

/// The answer when the spool of originals fails under an upload (its cause is logged by the
/// spool's caller).
fn not_spooled() -> AppError {
    AppError::Internal("it could not store the upload".into())
}

/// The refusal of bytes whose SHA-256 (`received`) is not the one `declared` for them, logged
/// once (both upload paths refuse so).
fn not_as_declared(declared: &str, received: &str) -> AppError {
    tracing::info!(%declared, %received, "upload refused: its bytes are not the SHA-256 declared");
    AppError::BadUpload("the file's bytes do not have the SHA-256 declared for them".into())
}

/// The checks of the whole content: the SHA-256 declared, and whether this session already
/// has it `ACTIVE`. Err stops the upload (its reason recorded through `checks.stop`).
async fn whole_body_checks<F: Fn(Stopped)>(
    checks: &Checks<'_, F>,
    sha256: &str,
) -> Result<(), String> {
    if let Some(declared) = &checks.declared {
        if declared != sha256 {
            (checks.stop)(Stopped::Refused(not_as_declared(declared, sha256)));
            return Err("SHA-256 mismatch".into());
        }
        return Ok(());
    }
    let now = std::time::SystemTime::now();
    if let Ok(Some(copy)) = checks.state.files().usable_copy(checks.owner, sha256, now).await {
        (checks.stop)(Stopped::Duplicate(Box::new(copy)));
        return Err("already uploaded".into());
    }
    Ok(())
}

/// Retains a spooled upload per the policy, charged to the client address it came from; a
/// failure only costs the re-upload later.
async fn keep(state: &ServerState, spooled: Spooled) {
    let from = ClientKey(super::client_address().0);
    if let Err(e) = state.files().originals().keep(spooled, &from).await {
        tracing::warn!(error = %e, "an original could not be retained");
    }
}
