//! The parts of the page loaded after it is interactive, each a wasm module of its own
//! (`cargo leptos build --split` cuts them out at these functions): `turn` — a chat turn
//! (uploads, the streamed answer) — and `sync` — a signed-in person's conversations between
//! devices. The page's first download stays small; both are fetched in the background once the
//! page is interactive ([`preload`]), so that they are there when first used, even offline.
//!
//! A module that cannot be fetched (the connection dropped, a new version was deployed) is a
//! sentence for the person ([`Unloaded`]), never a crash, and the next use tries again.

use std::{future::Future, pin::Pin};

use leptos::wasm_split::{wasm_split, SplitLoaderError};

use super::state::{Chat, Message};
use crate::sync::DeletedConversation;

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
