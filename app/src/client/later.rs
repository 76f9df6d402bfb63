//! The parts of the page loaded after it is interactive, each a wasm module of its own
//! (`cargo leptos build --split` cuts them out at these functions): `turn` — a chat turn
//! (uploads, the streamed answer) —, `sync` — a signed-in person's conversations between
//! devices —, `share` — links to conversations — and `library` — importing and deleting
//! conversations, the Files view's calls. The page's first download stays small; both are fetched in the background once the
//! page is interactive ([`preload`]), so that they are there when first used, even offline.
//!
//! A module that cannot be fetched (the connection dropped, a new version was deployed) is a
//! sentence for the person ([`Unloaded`]), never a crash, and the next use tries again.

use std::{future::Future, pin::Pin};

use leptos::wasm_split::{wasm_split, SplitLoaderError};

use super::state::{Chat, Message};
use crate::{error::AppError, model::UploadRecord, share::SharedLink, sync::DeletedConversation};

/// Work a module hands back, for the caller to run.
pub type Task<T = ()> = Pin<Box<dyn Future<Output = T>>>;

/// A part of the page that could not be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unloaded;

impl From<SplitLoaderError> for Unloaded {
    fn from(_: SplitLoaderError) -> Unloaded {
        Unloaded
    }
}

impl std::fmt::Display for Unloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Part of Parley could not be loaded. Check the connection and try again.")
    }
}

/// Fetches the modules in the background (a failure is tried again when they are used).
pub async fn preload() {
    let _ = preload_turn().await;
    let _ = preload_library().await;
}

/// [`super::turn::run`]: uploads a user message's files, then streams the answer.
#[wasm_split(turn, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_turn), fallible)]
pub fn turn_run(chat: Chat, message: Message) -> Result<Task, Unloaded> {
    Ok(Box::pin(super::turn::run(chat, message)))
}

/// [`super::turn::ask`]: streams an answer to the conversation so far.
#[wasm_split(turn, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_turn_ask), fallible)]
pub fn turn_ask(chat: Chat) -> Result<Task, Unloaded> {
    Ok(Box::pin(super::turn::ask(chat)))
}

/// [`super::sync::start`]: starts syncing the account's conversations.
#[wasm_split(sync, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_sync), fallible)]
pub fn sync_start(chat: Chat, account: String) -> Result<(), Unloaded> {
    super::sync::start(chat, account);
    Ok(())
}

/// [`super::sync::adopt`]: the answer to the first sign-in's offer.
#[wasm_split(sync, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_sync_adopt), fallible)]
pub fn sync_adopt(chat: Chat, keep: bool) -> Result<Task, Unloaded> {
    Ok(Box::pin(super::sync::adopt(chat, keep)))
}

/// [`super::sync::deleted`]: `Recently deleted`.
#[wasm_split(sync, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_sync_deleted), fallible)]
pub fn sync_deleted() -> Result<Task<Result<Vec<DeletedConversation>, String>>, Unloaded> {
    Ok(Box::pin(super::sync::deleted()))
}

/// [`super::sync::restore`]: restores a deleted conversation.
#[wasm_split(sync, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_sync_restore), fallible)]
pub fn sync_restore(id: String) -> Result<Task<Result<(), String>>, Unloaded> {
    Ok(Box::pin(super::sync::restore(id)))
}

/// [`super::share::share`]: makes or updates the open conversation's link.
#[wasm_split(share, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_share), fallible)]
pub fn share_make(
    chat: Chat,
    token: Option<String>,
    include_images: bool,
    link_preview: bool,
) -> Result<Task<Result<SharedLink, String>>, Unloaded> {
    Ok(Box::pin(super::share::share(chat, token, include_images, link_preview)))
}

/// [`super::share::links`]: the person's live links.
#[wasm_split(share, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_share_links), fallible)]
pub fn share_links() -> Result<Task<Result<Vec<SharedLink>, String>>, Unloaded> {
    Ok(Box::pin(super::share::links()))
}

/// [`super::share::revoke`]: revokes a link, or a deleted conversation's links.
#[wasm_split(share, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_share_revoke), fallible)]
pub fn share_revoke(
    token: String,
    conversation: Option<String>,
) -> Result<Task<Result<(), String>>, Unloaded> {
    Ok(Box::pin(super::share::revoke(token, conversation)))
}

/// [`super::share::continue_from`]: continues a shared conversation as this person's own.
#[wasm_split(share, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_share_continue), fallible)]
pub fn share_continue(chat: Chat, token: String) -> Result<Task, Unloaded> {
    Ok(Box::pin(super::share::continue_from(chat, token)))
}

/// [`super::conversations::import_text`]: imports an export (named `name` in what the page
/// says).
#[wasm_split(library, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_library), fallible)]
pub fn library_import(chat: Chat, text: String, name: String) -> Result<Task, Unloaded> {
    Ok(Box::pin(async move { super::conversations::import_text(chat, &text, &name).await }))
}

/// [`super::conversations::delete`]: deletes a conversation.
#[wasm_split(library, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_library_delete), fallible)]
pub fn library_delete(chat: Chat, id: String) -> Result<Task, Unloaded> {
    Ok(Box::pin(super::conversations::delete(chat, id)))
}

/// [`crate::api::list_uploads`]: the Files view's list.
#[wasm_split(library, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_library_files), fallible)]
pub fn files_list() -> Result<Task<Result<Vec<UploadRecord>, AppError>>, Unloaded> {
    Ok(Box::pin(crate::api::list_uploads()))
}

/// [`crate::api::delete_upload`]: deletes a File from the Files view.
#[wasm_split(library, wasm_split_path = ::leptos::wasm_split, preload(#[doc = "Fetches this function's module."] preload_library_files_delete), fallible)]
pub fn files_delete(uri: String) -> Result<Task<Result<(), AppError>>, Unloaded> {
    Ok(Box::pin(crate::api::delete_upload(uri)))
}
