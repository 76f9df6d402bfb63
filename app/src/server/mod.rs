//! Server-side bodies of the server functions (feature `ssr`): take the session, call into
//! `parley_files` (the life of a File) or Gemini, map the error.
//!
//! The axum binary (`parley`) builds a [`ServerState`] and provides it, as one shared
//! `Arc<ServerState>`, as Leptos context to every request; the server functions take it from
//! there.

pub mod chat;
mod errors;
pub use errors::{OrApp, ToAppError};
pub mod files;
mod request;
pub mod share;
pub mod sync;
pub mod upload;

pub use parley_chat::{caching, models, precheck, slots, summary, uploaded};
pub use parley_store::{ClientAddress, Principal};
pub use request::{
    chat_allowance, client_address, principal, upload_allowance, upload_body, ByteQuota,
    ChatAllowance, RequestQuota, UploadAllowance, UploadBody,
};

use leptos::prelude::use_context;

use crate::{
    error::AppError,
    model::{SiteInfo, UpstreamKind},
};

/// What the server functions need: the conversation engine (and through it Gemini, the life of
/// its Files, the store), where Gemini is, and the limits of uploads. Made once, by
/// [`ServerState::new`], for the server and the benchmarks alike.
#[derive(Debug)]
pub struct ServerState {
    engine: parley_chat::Engine,
    upstream: UpstreamKind,
    max_file_bytes: u64,
    file_states: files::StateCache,
    relay: parley_files::RelayBudget,
    sync: parley_chat::sync::Sync,
    open_streams: sync::OpenStreams,
    shares: parley_chat::share::Shares,
    sharing: crate::share::Sharing,
    public_url: Option<String>,
}

/// What [`ServerState::new`] makes the state of.
#[derive(Debug)]
pub struct ServerParts {
    /// The conversation engine's parts (the life of a File among them).
    pub engine: parley_chat::EngineParts,
    /// Where Gemini is: the built-in emulator, Google, or a gateway.
    pub upstream: UpstreamKind,
    /// Largest upload accepted, bytes (`PARLEY_MAX_FILE_BYTES`; never above Gemini's 2 GiB).
    pub max_file_bytes: u64,
    /// Memory for uploads relayed while they arrive, bytes (`PARLEY_RELAY_MEMORY`; 8 MiB
    /// each, an upload that finds none is stored first, then sent).
    pub relay_memory: u64,
    /// Signed-in people's conversations on the server (`PARLEY_STORAGE_PER_ACCOUNT`).
    pub sync: parley_chat::sync::Sync,
    /// Conversations shared by link (`PARLEY_SHARE_TTL`).
    pub shares: parley_chat::share::Shares,
    /// Who may open shared links (`PARLEY_SHARING`).
    pub sharing: crate::share::Sharing,
    /// The site's external origin (`PARLEY_PUBLIC_URL`), for what must be an absolute URL
    /// (a shared link's OpenGraph picture); `None` when not configured.
    pub public_url: Option<String>,
}

impl ServerState {
    /// The state made of `parts`.
    pub fn new(parts: ServerParts) -> ServerState {
        ServerState {
            engine: parley_chat::Engine::new(parts.engine),
            upstream: parts.upstream,
            max_file_bytes: parts.max_file_bytes.min(gemini::MAX_FILE_BYTES),
            file_states: files::StateCache::default(),
            relay: parley_files::RelayBudget::new(parts.relay_memory),
            sync: parts.sync,
            open_streams: sync::OpenStreams::default(),
            shares: parts.shares,
            sharing: parts.sharing,
            public_url: parts.public_url.map(|u| u.trim_end_matches('/').to_string()),
        }
    }

    /// The conversation engine.
    pub fn engine(&self) -> &parley_chat::Engine {
        &self.engine
    }

    /// Gemini (or the built-in emulator), the store, the retained originals and the rules of a
    /// File's life.
    pub fn files(&self) -> &parley_files::Lifecycle {
        self.engine.files()
    }

    /// Largest upload accepted, bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Signed-in people's conversations on the server.
    pub fn sync(&self) -> &parley_chat::sync::Sync {
        &self.sync
    }

    /// Conversations shared by link.
    pub fn shares(&self) -> &parley_chat::share::Shares {
        &self.shares
    }

    /// Who may open shared links.
    pub fn sharing(&self) -> crate::share::Sharing {
        self.sharing
    }

    /// The site's external origin without a trailing `/` (`https://chat.example.org`), if
    /// configured.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    fn open_streams(&self) -> &sync::OpenStreams {
        &self.open_streams
    }
}

/// A slot towards Gemini for the current request's principal and address (see
/// [`parley_chat::Engine::slot`]).
///
/// # Errors
/// [`AppError::Busy`] when none frees up in time; [`AppError::Internal`] without a session.
pub async fn upstream_slot(state: &ServerState) -> Result<slots::UpstreamSlot, AppError> {
    state.engine.slot(&principal()?, &client_address()).await.or_app()
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

/// The [`SiteInfo`] of this server, with what is left of the person's budget; offline with
/// the default model when called outside a request (e.g. while pre-rendering).
pub async fn site_info() -> SiteInfo {
    match use_context::<std::sync::Arc<ServerState>>() {
        Some(s) => SiteInfo {
            upstream: s.upstream.clone(),
            model: s.engine.models().default_id().to_string(),
            models: s.engine.models().choices(),
            context_caching: s.engine.offers_caching(),
            sign_in: request::sign_in_view(),
            budget: budget_view(&s).await,
            sharing: s.sharing,
        },
        None => SiteInfo {
            upstream: UpstreamKind::Offline,
            model: String::new(),
            models: Vec::new(),
            context_caching: false,
            sign_in: request::sign_in_view(),
            budget: None,
            sharing: crate::share::Sharing::Off,
        },
    }
}

/// What is left of this request's principal's own budget (`None` without one, or when it
/// cannot be read: the page then shows nothing rather than a guess).
async fn budget_view(state: &ServerState) -> Option<String> {
    let principal = principal().ok()?;
    let budgets = state.engine.budgets();
    let charge = budgets.charge_for(&principal, &client_address()).await.ok()?;
    budgets.view(&charge).await.ok().flatten()
}
