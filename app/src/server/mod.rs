//! Server-side bodies of the server functions (feature `ssr`): take the session, call into
//! `parley_files` (the life of a File) or Gemini, map the error.
//!
//! The axum binary (`parley`) builds a [`ServerState`] and provides it, as one shared
//! `Arc<ServerState>`, as Leptos context to every request; the server functions take it from
//! there.

pub mod caching;
pub mod chat;
pub use chat::precheck;
mod errors;
pub use errors::{OrApp, ToAppError};
pub mod files;
pub mod models;
mod request;
pub mod slots;
pub mod summary;
pub mod upload;

pub use parley_store::Principal;
pub use request::{
    chat_allowance, client_address, principal, upload_allowance, upload_body, ByteQuota,
    ChatAllowance, ClientAddress, RequestQuota, UploadAllowance, UploadBody,
};

use leptos::prelude::use_context;

use crate::{
    error::AppError,
    model::{SiteInfo, UpstreamKind},
};

/// What the server functions need: Gemini, the life of its Files, and the limits.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// Gemini (or the built-in emulator), the registry, the retained originals and the rules
    /// of a File's life. `files.gemini` is the client for every call.
    pub files: parley_files::Lifecycle,
    /// The models a person may pick, the default (`PARLEY_MODEL`) first (`PARLEY_MODELS`).
    pub models: models::Models,
    /// When the oldest turns are summarized (`PARLEY_CONTEXT_BUDGET`).
    pub context_budget: models::ContextBudget,
    /// Context caching, when offered (`PARLEY_CONTEXT_CACHING=opt-in`); `None` when off.
    pub caching: Option<caching::CachePolicy>,
    /// Summaries made lately, so that a failed request's summary is not paid for twice.
    pub summaries: summary::Memo,
    /// Signs the summaries made here; a summary a page sends back is used only when it checks.
    pub summary_signer: summary::Signer,
    /// Where Gemini is: the built-in emulator, Google, or a gateway.
    pub upstream: UpstreamKind,
    /// Largest upload accepted, bytes (`PARLEY_MAX_FILE_BYTES`; never above Gemini's 2 GiB).
    pub max_file_bytes: u64,
    /// Calls to Gemini in flight at once, shared fairly between sessions and addresses
    /// (`PARLEY_UPSTREAM_CONCURRENCY`, `…_PER_SESSION`, `…_PER_ADDRESS`): an answer holds a
    /// slot until it ends, an upload until its File is `ACTIVE`, a `files.get` or
    /// `files.delete` while it runs.
    pub upstream_slots: slots::UpstreamSlots,
    /// How long a request waits for one of the `upstream_slots` before it is told the server
    /// is busy (`PARLEY_UPSTREAM_WAIT`, default 30 s).
    pub upstream_wait: std::time::Duration,
    /// What `files.get` said of a File lately, by URI: `check_files` asks Gemini about a File
    /// at most once per [`files::STATE_CACHE_TTL`].
    pub file_states: files::StateCache,
    /// Memory for uploads relayed while they arrive (each holds one chunk, 8 MiB, until Gemini
    /// has it): [`upload::RelayBudget`]; an upload that finds none is stored first, then sent
    /// (`PARLEY_RELAY_MEMORY`).
    pub relay: upload::RelayBudget,
}

/// A slot towards Gemini for the current request's session and address (see
/// [`ServerState::upstream_slots`]), waiting up to [`ServerState::upstream_wait`].
///
/// # Errors
/// [`AppError::Busy`] when none frees up in time; [`AppError::Transport`] without a session.
pub async fn upstream_slot(state: &ServerState) -> Result<slots::UpstreamSlot, AppError> {
    state.upstream_slots.acquire(&principal()?, &client_address(), state.upstream_wait).await
}

/// The page's Content-Security-Policy, set on the response being rendered: scripts only from
/// this origin or carrying this response's nonce (Leptos's hydration script has it), wasm
/// compiled, images from this origin and the previews' `data:`/`blob:` URLs, requests only to
/// this origin, no plugins, no `<base>`, no framing. Nothing inline in an answer can run.
pub fn set_content_security_policy() {
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
        &*nonce
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Sets the response status of the current server function from its error, if any (and
/// `Retry-After` with a 429's wait).
pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let (Err(e), Some(response)) = (&result, use_context::<leptos_axum::ResponseOptions>()) {
        response.set_status(e.http_status());
        if let AppError::TooManyRequests { retry_after_secs } = e {
            response.insert_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(*retry_after_secs),
            );
        }
    }
    result
}

/// The request's [`ServerState`], shared (one `Arc` per request, not a copy).
fn state() -> Result<std::sync::Arc<ServerState>, AppError> {
    use_context::<std::sync::Arc<ServerState>>()
        .ok_or_else(|| AppError::Internal("it is not configured for this request".into()))
}

/// The [`SiteInfo`] of this server; offline with the default model when called outside a
/// request (e.g. while pre-rendering).
pub fn site_info() -> SiteInfo {
    match use_context::<std::sync::Arc<ServerState>>() {
        Some(s) => SiteInfo {
            upstream: s.upstream.clone(),
            model: s.models.default_id().to_string(),
            models: s.models.choices(),
            context_caching: s.caching.is_some(),
        },
        None => SiteInfo {
            upstream: UpstreamKind::Offline,
            model: String::new(),
            models: Vec::new(),
            context_caching: false,
        },
    }
}

/// The page's record of an uploaded File, from the registry's.
pub fn uploaded(row: parley_store::FileRow) -> crate::model::UploadedFile {
    {
        crate::model::UploadedFile {
            name: row.name,
            uri: row.uri,
            mime_type: row.mime_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            expiration_time: row.expiration_time,
            display_name: row.display_name,
        }
    }
}
