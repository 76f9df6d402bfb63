//! Parley's server functions: declared here for both sides, implemented in
//! [`crate::server`] (feature `ssr`). Each one's path is its generated struct's
//! `ServerFn::PATH` (e.g. `UploadFile::PATH`), never a literal elsewhere.

// The argument structs `#[server]` generates have one field per argument; the arguments are
// documented on each function.
#![allow(missing_docs)]

use leptos::prelude::*;

/// Where every server function is served: the `prefix` of each `#[server]` below, with its
/// trailing slash (guards and sessions in `parley` apply to paths under it).
pub const API_PREFIX: &str = "/api/";
use leptos::server_fn::codec::{ByteStream, Json, MultipartData, MultipartFormData, Streaming};

mod wire;
pub use wire::{ConflictIsAnAnswer, ConflictRead, JsonOffWorkers};

use crate::{
    error::AppError,
    model::{ChatOptions, Content, FileCheck, SiteInfo, UploadRecord, UploadedFile},
    share::{ShareRequest, SharedLink},
    sync::{DeletedConversation, Pulled, Push, PushOutcome, SyncedConversation},
};

/// Whether the site runs on the built-in emulator, and which model answers.
///
/// # Errors
/// Only transport errors.
#[server(prefix = "/api", endpoint = "site_info")]
pub async fn get_site_info() -> Result<SiteInfo, AppError> {
    Ok(crate::server::site_info().await)
}

/// This session's `ACTIVE` File with the content whose SHA-256 is `sha256` (64 hex digits),
/// if there is one: the page asks before it sends a file, so that content already uploaded
/// is not sent again (not even to Parley). A registry lookup; no upstream call.
///
/// # Errors
/// [`AppError::BadRequest`] when `sha256` is not 64 hex digits; [`AppError::Internal`] when
/// the database fails ([`AppError::Busy`] when it is only busy).
#[server(prefix = "/api", endpoint = "find_upload", input = Json)]
pub async fn find_upload(sha256: String) -> Result<Option<UploadedFile>, AppError> {
    crate::server::with_status(crate::server::upload::find_upload(sha256).await)
}

/// Uploads one file to Gemini and waits until its File is `ACTIVE`.
///
/// The body is `multipart/form-data` with, in this order, the text fields `size` (bytes),
/// `mime_type`, `name` and optionally `sha256` (the content's SHA-256, 64 hex digits), then
/// the field `file` with the bytes. The bytes are relayed to Gemini's resumable upload in
/// 8 MiB chunks while they arrive, and spooled as the retained original on the way: the whole
/// file is never held in memory. Content this session already has `ACTIVE` is answered with
/// that File (with a declared `sha256`, before the bytes are read); bytes whose SHA-256 is not
/// the declared one are refused and their upstream upload cancelled.
///
/// # Errors
/// [`AppError::BadUpload`] for a malformed body, a size or SHA-256 that does not match;
/// [`AppError::UnsupportedType`], [`AppError::ProcessingFailed`],
/// [`AppError::NotReadyInTime`] and the upstream errors from Gemini.
#[server(prefix = "/api", endpoint = "upload_file", input = MultipartFormData)]
pub async fn upload_file(data: MultipartData) -> Result<UploadedFile, AppError> {
    crate::server::with_status(crate::server::upload::upload_file(data).await)
}

/// Sends the conversation to Gemini's `streamGenerateContent` and streams the answer back as
/// newline-delimited JSON [`crate::model::ChatEvent`]s (`delta`…, then `done` or `error`).
///
/// Only text and `file_data` parts go to Gemini; `inline_data` previews are dropped. The
/// conversation's model, its latest summary and its "Cache files" switch come in `options`
/// (all optional): past `PARLEY_CONTEXT_BUDGET` the oldest turns are summarized (a
/// `summarized` line), and with caching on the files are sent from a `cachedContents`
/// resource (a `cache` line). Each answer ends with a `usage` line before `done`.
///
/// # Errors
/// [`AppError::BadRequest`] for a model outside `PARLEY_MODELS`; errors before the first
/// token come back as the call's error (e.g. [`AppError::FileUnavailable`]); later ones as a
/// `ChatEvent::Error` line.
#[server(prefix = "/api", endpoint = "chat", input = JsonOffWorkers, output = Streaming)]
pub async fn chat(
    contents: Vec<Content>,
    #[server(default)] options: ChatOptions,
) -> Result<ByteStream<AppError>, AppError> {
    crate::server::with_status(crate::server::chat::chat(contents, options).await)
}

/// Deletes the `cachedContents` this session made for these Files (a conversation being
/// deleted sends its File URIs): upstream, then their records. Unknown URIs are ignored.
///
/// # Errors
/// [`AppError::BadRequest`] for more than [`crate::model::MAX_FILE_CHECKS`] URIs;
/// [`AppError::Busy`] without a slot towards Gemini in time; [`AppError::Internal`] when the
/// database fails.
#[server(prefix = "/api", endpoint = "forget_caches", input = Json)]
pub async fn forget_caches(uris: Vec<String>) -> Result<(), AppError> {
    crate::server::with_status(crate::server::files::forget_caches(uris).await)
}

/// Which of these File URIs can still be used (one `files.get` each, up to
/// [`crate::model::MAX_FILE_CHECKS`]): for imports, so that untracked but live files are
/// kept (`import-keeps-live-files`). Only this session's Files can be; an expired one counts as
/// live when the next `chat` will put a File in its place (its original is retained, or the same
/// content is `ACTIVE`) — that request's `replaced` line then gives the new URI.
///
/// # Errors
/// [`AppError::BadRequest`] for more than [`crate::model::MAX_FILE_CHECKS`] URIs;
/// [`AppError::Busy`] without a slot towards Gemini in time; [`AppError::Internal`] when the
/// database fails; Gemini's errors other than the 403 that means "gone".
#[server(prefix = "/api", endpoint = "check_files", input = Json)]
pub async fn check_files(uris: Vec<String>) -> Result<Vec<FileCheck>, AppError> {
    crate::server::with_status(crate::server::files::check_files(uris).await)
}

/// This browser session's uploads, newest first, for the Files view.
///
/// # Errors
/// [`AppError::Internal`] when the database fails ([`AppError::Busy`] when it is only busy).
#[server(prefix = "/api", endpoint = "list_uploads")]
pub async fn list_uploads() -> Result<Vec<UploadRecord>, AppError> {
    crate::server::with_status(crate::server::files::list_uploads().await)
}

/// Deletes one of this session's uploads: upstream (`files.delete`), then its record.
/// Conversations then show `expired content` for it.
///
/// # Errors
/// [`AppError::NotFound`] when this principal has no such upload (another's upload is not
/// found either); [`AppError::Busy`] without a slot towards Gemini in time; Gemini's errors.
#[server(prefix = "/api", endpoint = "delete_upload", input = Json)]
pub async fn delete_upload(uri: String) -> Result<(), AppError> {
    crate::server::with_status(crate::server::files::delete_upload(uri).await)
}

/// What changed in the signed-in account's conversations after `cursor` (0: everything), a
/// page at a time (about 4 MiB; ask again from the page's `cursor` while `more`).
///
/// # Errors
/// [`AppError::SignInRequired`] without an account; [`AppError::Internal`] when the database
/// fails ([`AppError::Busy`] when it is only busy).
#[server(prefix = "/api", endpoint = "sync_pull", input = Json)]
pub async fn sync_pull(cursor: i64) -> Result<Pulled, AppError> {
    crate::server::with_status(crate::server::sync::pull(cursor).await)
}

/// Writes a device's version of one conversation of the signed-in account. On the latest
/// revision it is taken as sent (`applied`); on a stale one the answer is 409 Conflict with
/// what it became: `merged` (the device's new messages appended after the others', or nothing
/// of the device's to add) or `forked` (kept as a copy titled `<title> (conflict, <device>
/// <time>)`). Decoded off the async workers: up to 16 MiB, as an import.
///
/// # Errors
/// [`AppError::SignInRequired`] without an account; [`AppError::BadRequest`] for a write that
/// is not a conversation; [`AppError::StorageFull`] past `PARLEY_STORAGE_PER_ACCOUNT`.
#[server(prefix = "/api", endpoint = "sync_push", input = JsonOffWorkers, client = ConflictIsAnAnswer)]
pub async fn sync_push(push: Push) -> Result<PushOutcome, AppError> {
    crate::server::with_status(crate::server::sync::push(push).await)
}

/// Deletes (`restore` false) or restores (true) a conversation of the signed-in account, on
/// every device; a deleted one can be restored for 30 days.
///
/// # Errors
/// [`AppError::NotFound`] when the account has no such conversation (another account's is
/// not found either), or it was purged; [`AppError::SignInRequired`] without an account.
#[server(prefix = "/api", endpoint = "sync_delete", input = Json)]
pub async fn sync_delete(id: String, #[server(default)] restore: bool) -> Result<(), AppError> {
    crate::server::with_status(crate::server::sync::delete(id, restore).await)
}

/// One conversation of the signed-in account, whole (for an export, or a device that lost
/// its copy).
///
/// # Errors
/// [`AppError::NotFound`] when the account has no such conversation (another account's is
/// not found either); [`AppError::SignInRequired`] without an account.
#[server(prefix = "/api", endpoint = "sync_get", input = Json)]
pub async fn sync_get(id: String) -> Result<SyncedConversation, AppError> {
    crate::server::with_status(crate::server::sync::get(id).await)
}

/// The signed-in account's `Recently deleted`: the latest first, each with when it will be
/// purged.
///
/// # Errors
/// [`AppError::SignInRequired`] without an account; [`AppError::Internal`] when the database
/// fails.
#[server(prefix = "/api", endpoint = "sync_deleted")]
pub async fn sync_deleted() -> Result<Vec<DeletedConversation>, AppError> {
    crate::server::with_status(crate::server::sync::deleted().await)
}

/// The signed-in account's changes as they happen: newline-delimited JSON
/// [`crate::sync::SyncEvent`]s — `changed` with the account's cursor at once and after every
/// change (from any device, on any replica), `ping` every 25 s. A browser keeps one open per
/// tab; at most a few per account.
///
/// # Errors
/// [`AppError::SignInRequired`] without an account; [`AppError::TooManyRequests`] past the
/// account's open streams.
#[server(prefix = "/api", endpoint = "sync_events", output = Streaming)]
pub async fn sync_events() -> Result<ByteStream<AppError>, AppError> {
    crate::server::with_status(crate::server::sync::events().await)
}

/// Shares a conversation by link: the server keeps an allow-listed snapshot of it (texts,
/// attachments' names, types and sizes, image previews when `include_images`) and answers with
/// the new link, `/s/<token>`. Decoded off the async workers: up to 16 MiB, as an import.
///
/// # Errors
/// [`AppError::BadRequest`] for an export that is not a conversation or has no message;
/// [`AppError::NotFound`] when it names a File of someone else's, or sharing is off.
#[server(prefix = "/api", endpoint = "share_create", input = JsonOffWorkers)]
pub async fn share_create(request: ShareRequest) -> Result<SharedLink, AppError> {
    crate::server::with_status(crate::server::share::create(request).await)
}

/// Takes a new snapshot under one of this person's links (`Update link`).
///
/// # Errors
/// As [`share_create`]; [`AppError::NotFound`] for a token that is not this person's live link.
#[server(prefix = "/api", endpoint = "share_update", input = JsonOffWorkers)]
pub async fn share_update(token: String, request: ShareRequest) -> Result<SharedLink, AppError> {
    crate::server::with_status(crate::server::share::update(token, request).await)
}

/// This person's live links, the latest first (`Shared links`).
///
/// # Errors
/// [`AppError::NotFound`] when sharing is off; [`AppError::Internal`] when the database fails.
#[server(prefix = "/api", endpoint = "share_list")]
pub async fn share_list() -> Result<Vec<SharedLink>, AppError> {
    crate::server::with_status(crate::server::share::list().await)
}

/// Revokes one of this person's links (`token`), or — with `conversation` — every link of that
/// conversation (it was deleted); how many. A revoked link answers 410 at once, on every
/// replica.
///
/// # Errors
/// [`AppError::NotFound`] for a token that is not this person's live link.
#[server(prefix = "/api", endpoint = "share_revoke", input = Json)]
pub async fn share_revoke(
    token: String,
    #[server(default)] conversation: Option<String>,
) -> Result<u64, AppError> {
    crate::server::with_status(crate::server::share::revoke(token, conversation).await)
}

/// The conversation a viewer continues from a shared link (`Continue this conversation`): an
/// export (format 1.2) with the image previews as pictures of the viewer's own and a sentence
/// for each attachment that was not shared.
///
/// # Errors
/// [`AppError::NotFound`] for a link never made; [`AppError::Gone`] for one revoked or expired;
/// [`AppError::SignInRequired`] with `PARLEY_SHARING=signed-in` signed out.
#[server(prefix = "/api", endpoint = "share_continue", input = Json)]
pub async fn share_continue(token: String) -> Result<String, AppError> {
    crate::server::with_status(crate::server::share::continued(token).await)
}
