//! Sharing the open conversation by link (browser only, in the `later` module `share`):
//! making or updating its link, listing and revoking the person's links, revoking a deleted
//! conversation's links, and continuing a conversation someone shared (`/?continue=<token>`).

use leptos::prelude::*;

use super::{conversations, messages::title_of, state::Chat};
use crate::{
    api,
    share::{ShareRequest, SharedLink},
};

/// Shares the open conversation (a new link, or a new snapshot under `token`).
///
/// # Errors
/// The server's sentence.
pub async fn share(
    chat: Chat,
    token: Option<String>,
    include_images: bool,
    link_preview: bool,
) -> Result<SharedLink, String> {
    let request = ShareRequest {
        conversation: chat.id.get_untracked(),
        title: chat.messages.with_untracked(|m| title_of(m)),
        export: conversations::current(chat).to_export(),
        include_images,
        link_preview,
    };
    let shared = match token {
        Some(token) => api::share_update(token, request).await,
        None => api::share_create(request).await,
    };
    shared.map_err(|e| e.to_string())
}

/// The person's live links.
///
/// # Errors
/// The server's sentence.
pub async fn links() -> Result<Vec<SharedLink>, String> {
    api::share_list().await.map_err(|e| e.to_string())
}

/// Revokes the link `token`, or every link of `conversation` (it was deleted).
///
/// # Errors
/// The server's sentence.
pub async fn revoke(token: String, conversation: Option<String>) -> Result<(), String> {
    api::share_revoke(token, conversation).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Opens the conversation shared as `token` among this person's own, and takes
/// `?continue=` off the address.
pub async fn continue_from(chat: Chat, token: String) {
    if let Some(window) = web_sys::window() {
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
        }
    }
    match api::share_continue(token).await {
        Ok(export) => conversations::import_text(chat, &export, "the shared conversation").await,
        Err(e) => chat
            .storage_error
            .set(Some(format!("The shared conversation could not be opened: {e}"))),
    }
}
