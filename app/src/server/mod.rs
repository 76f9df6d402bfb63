//! Server-side implementations of the server functions (feature `ssr`).
//!
//! The axum binary (`parley`) builds a [`ServerState`] and provides it as Leptos context to
//! every request; the server functions take it from there.

pub mod chat;
mod errors;
pub mod files;
pub mod upload;

use leptos::prelude::use_context;

use crate::{
    error::AppError,
    model::{SiteInfo, UpstreamKind},
};

/// What the server functions need: the Gemini client and how to use it.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// Client for Gemini, or for the built-in emulator.
    pub gemini: gemini::Client,
    /// Model name for `generateContent`, e.g. `gemini-2.5-flash`.
    pub model: String,
    /// Where `gemini` points: the built-in emulator, Google, or a gateway.
    pub upstream: UpstreamKind,
    /// How to wait for uploaded Files to become `ACTIVE`.
    pub poll: gemini::PollPolicy,
}

/// Sets the response status of the current server function from its error, if any.
pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let (Err(e), Some(response)) = (&result, use_context::<leptos_axum::ResponseOptions>()) {
        if let Ok(status) = http::StatusCode::from_u16(e.http_status()) {
            response.set_status(status);
        }
    }
    result
}

fn state() -> Result<ServerState, AppError> {
    use_context::<ServerState>()
        .ok_or_else(|| AppError::Transport("the server is not configured for this request".into()))
}

/// The [`SiteInfo`] of this server; offline with the default model when called outside a
/// request (e.g. while pre-rendering).
pub fn site_info() -> SiteInfo {
    match use_context::<ServerState>() {
        Some(s) => SiteInfo { upstream: s.upstream, model: s.model },
        None => SiteInfo { upstream: UpstreamKind::Offline, model: String::new() },
    }
}
