//! The conversations kept in the browser: save after every turn, open, start anew, delete,
//! export to a JSON file and import one (see [`crate::transcript`] for the format and
//! [`crate::browser::store`] for where it lives).

use leptos::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};

use super::{
    messages::{keys_of, messages_from, title_of, to_transcript},
    state::{new_conversation_id, now_ms, Chat, ConversationSummary, SyncStatus, MESSAGES_SHOWN},
    sync::{self, convert::SyncMeta},
};
use crate::{
    api,
    browser::store::{self, Record, Stored},
    transcript::{file_id_of, Transcript},
};

/// The transcript of the open conversation.
pub fn current(chat: Chat) -> Transcript {
    let mut transcript = chat.messages.with_untracked(|m| {
        to_transcript(m, &chat.summaries.get_value(), &chat.tracked.get_value(), now_ms())
    });
    transcript.model = chat.model.get_untracked();
    transcript.cache_files = chat.cache_files.get_untracked();
    transcript
}

/// SHA-256 (hex) of a transcript's `conversation`: the identity of an imported file.
fn content_hash(transcript: &Transcript) -> String {
    let text = serde_json::to_string(&transcript.conversation).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// SHA-256 (hex) of the `conversation` of an export text (empty when it is not one).
pub fn export_hash(export: &str) -> String {
    Transcript::from_export(export).map(|t| content_hash(&t)).unwrap_or_default()
}

/// Saves the open conversation (when it has any settled message) and refreshes the list.
/// Signed in, it belongs to the account and is marked for the next sync round, on the
/// revision the page last loaded it at.
pub async fn persist(chat: Chat) {
    let transcript = current(chat);
    if transcript.conversation.is_empty() {
        return;
    }
    chat.tracked.set_value(transcript.uploaded_files.clone());
    let id = chat.id.get_untracked();
    let account = chat.account.get_untracked();
    if account.is_some() && chat.sync.get_untracked() == Some(SyncStatus::Synced) {
        // A change the server does not have yet: not `Synced` until the round after it.
        chat.sync.set(Some(SyncStatus::Syncing));
    }
    let keys = chat.messages.with_untracked(|m| keys_of(m));
    let base = chat.base.get_value();
    let title = chat.messages.with_untracked(|m| title_of(m));
    let export = transcript.to_export();
    // The list shows it at once, in the same turn of the page as the answer that ended: the
    // write below and the re-read after it only confirm it.
    let shown = ConversationSummary {
        id: id.clone(),
        title: title.clone(),
        updated: now_ms(),
        size: u32::try_from(export.len()).unwrap_or(u32::MAX),
    };
    chat.list.update(|list| {
        list.retain(|s| s.id != shown.id);
        list.insert(0, shown);
    });
    let mut record = Record {
        id: id.clone(),
        title,
        updated: now_ms(),
        hash: content_hash(&transcript),
        export,
        account: account.clone().unwrap_or_default(),
        dirty: account.is_some(),
        deleted: false,
        sync: String::new(),
    };
    let saved = store::update(&id, move |stored| {
        let mut meta = stored.map(|s| SyncMeta::parse(&s.sync)).unwrap_or_default();
        meta.relink(&keys);
        meta.base = base;
        if meta.created_ms == 0 {
            meta.created_ms = record.updated as i64;
        }
        record.sync = meta.to_text();
        Some(record)
    })
    .await;
    match saved {
        Ok(()) => {
            refresh(chat).await;
            if account.is_some() {
                sync::kick();
            }
        }
        Err(e) => chat.storage_error.set(Some(store::describe(&e))),
    }
}

/// Reloads the list of stored conversations: the signed-in account's, or those made signed
/// out on this browser.
pub async fn refresh(chat: Chat) {
    let account = chat.account.get_untracked().unwrap_or_default();
    match store::list().await {
        Ok(all) => chat.list.set(
            all.into_iter().filter(|s| s.account == account && !s.deleted).map(summary).collect(),
        ),
        Err(e) => {
            chat.storage_error.set(Some(format!("Saved conversations could not be read: {e}")))
        }
    }
}

/// A stored conversation as the list shows it.
fn summary(stored: Stored) -> ConversationSummary {
    ConversationSummary {
        id: stored.id,
        title: stored.title,
        updated: stored.updated,
        size: stored.size,
    }
}

/// Largest stored conversation reopened by itself on page load (2 MiB of export text): a
/// bigger one waits in the list until it is picked, so that a huge import cannot make every
/// visit slow.
const AUTO_OPEN_MAX: u32 = 2 << 20;

/// On page load (and once conversations made signed out moved into the account): lists the
/// stored conversations and, when the chat is empty, opens the most recent one, unless it is
/// larger than [`AUTO_OPEN_MAX`].
pub async fn restore(chat: Chat) {
    refresh(chat).await;
    let latest = chat
        .list
        .with_untracked(|l| l.first().filter(|s| s.size <= AUTO_OPEN_MAX).map(|s| s.id.clone()));
    if let Some(id) = latest {
        if chat.messages.with_untracked(Vec::is_empty) {
            open(chat, &id).await;
        }
    }
}

/// Opens the stored conversation `id`.
pub async fn open(chat: Chat, id: &str) {
    if chat.busy.get_untracked() {
        return;
    }
    if let Some((record, transcript)) = load(chat, id).await {
        show(chat, record, transcript);
    }
}

/// Shows the open conversation's stored copy again (the sync brought another device's
/// changes), keeping what the composer holds.
pub async fn reload(chat: Chat) {
    if chat.busy.get_untracked() {
        return;
    }
    let id = chat.id.get_untracked();
    if let Some((record, transcript)) = load(chat, &id).await {
        if !chat.busy.get_untracked() && chat.id.get_untracked() == id {
            let (pending, notice) = (chat.pending.get_untracked(), chat.notice.get_untracked());
            show(chat, record, transcript);
            chat.pending.set(pending);
            chat.notice.set(notice);
        }
    }
}

async fn load(chat: Chat, id: &str) -> Option<(Record, Transcript)> {
    let record = match store::load(id).await {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(e) => {
            chat.storage_error.set(Some(format!("The conversation could not be opened: {e}")));
            return None;
        }
    };
    match Transcript::from_export(&record.export) {
        Ok(transcript) => Some((record, transcript)),
        Err(e) => {
            chat.storage_error.set(Some(format!("The saved conversation is damaged: {e}")));
            None
        }
    }
}

fn show(chat: Chat, record: Record, transcript: Transcript) {
    let meta = SyncMeta::parse(&record.sync);
    chat.base.set_value(meta.base);
    show_transcript(chat, record.id, transcript, &meta.keys());
}

fn show_transcript(chat: Chat, id: String, transcript: Transcript, keys: &[String]) {
    let messages = messages_from(&transcript, keys);
    chat.first_shown.set(messages.len().saturating_sub(MESSAGES_SHOWN));
    chat.messages.set(messages);
    chat.summary.set(crate::model::Summary::latest_of(&transcript.conversation_summaries));
    chat.summaries.set_value(transcript.conversation_summaries);
    chat.tracked.set_value(transcript.uploaded_files);
    chat.model.set(transcript.model);
    chat.cache_files.set(transcript.cache_files);
    chat.cache_state.set(None);
    chat.pending.set(Vec::new());
    chat.notice.set(None);
    chat.id.set(id);
}

/// Starts a new, empty conversation (the current one is already saved).
pub fn start_new(chat: Chat) {
    if chat.busy.get_untracked() {
        return;
    }
    chat.base.set_value(0);
    show_transcript(chat, new_conversation_id(), Transcript::default(), &[]);
    chat.summaries.set_value(Value::Array(Vec::new()));
}

/// Deletes the conversation `id`, and the context caches the server made for its Files; when
/// it is the open one, a new chat takes its place.
pub async fn delete(chat: Chat, id: String) {
    let uris: Vec<String> = match store::load(&id).await {
        Ok(Some(record)) => Transcript::from_export(&record.export)
            .map(|t| t.uploaded_files.into_values().map(|f| f.file_uri).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if !uris.is_empty() {
        let uris = uris.into_iter().take(crate::model::MAX_FILE_CHECKS).collect();
        if let Err(e) = api::forget_caches(uris).await {
            leptos::logging::warn!("the conversation's caches could not be deleted: {e}");
        }
    }
    // Signed in, the deletion is kept until the server has it (then the record goes).
    let signed_in = chat.account.get_untracked().is_some();
    let deleted = if signed_in {
        store::update(&id, |stored| {
            let mut stored = stored?;
            stored.deleted = true;
            Some(stored)
        })
        .await
    } else {
        store::delete(&id).await
    };
    if let Err(e) = deleted {
        chat.storage_error.set(Some(format!("The conversation could not be deleted: {e}")));
        return;
    }
    if signed_in {
        sync::kick();
    }
    // Its shared links go with it (signed in, the server also revokes them at the sync).
    match super::later::share_revoke(String::new(), Some(id.clone())).await {
        Ok(revoking) => {
            if let Err(e) = revoking.await {
                leptos::logging::warn!("the conversation's links could not be revoked: {e}");
            }
        }
        Err(e) => leptos::logging::warn!("the conversation's links could not be revoked: {e}"),
    }
    if chat.id.get_untracked() == id {
        start_new(chat);
    }
    refresh(chat).await;
}

/// Downloads the open conversation as `parley-<title>.json` (format 1.2).
pub fn export(chat: Chat) {
    let text = current(chat).to_export();
    let title = chat.messages.with_untracked(|m| title_of(m));
    let slug: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let name =
        format!("parley-{}.json", if slug.is_empty() { "conversation".into() } else { slug });
    if let Err(e) = download(&name, &text) {
        chat.storage_error.set(Some(format!("The export could not be made: {e:?}")));
    }
}

fn download(name: &str, text: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    web_sys::Url::revoke_object_url(&url)
}

/// Imports an export file: validates it (nothing changes when it is refused), keeps files
/// that are still live even when the file does not track them (`import-keeps-live-files`), and
/// opens it. The same file imported twice opens the existing conversation instead of a copy.
pub async fn import(chat: Chat, file: web_sys::File) {
    chat.storage_error.set(None);
    let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
        Ok(text) => text.as_string().unwrap_or_default(),
        Err(_) => {
            chat.storage_error.set(Some("The file could not be read.".into()));
            return;
        }
    };
    match super::later::library_import(chat, text, file.name()).await {
        Ok(importing) => importing.await,
        Err(unloaded) => chat.storage_error.set(Some(unloaded.to_string())),
    }
}

/// Imports the export `text` (named `name` in what the page says), as [`import`] does.
pub async fn import_text(chat: Chat, text: &str, name: &str) {
    let mut transcript = match Transcript::from_export(text) {
        Ok(t) => t,
        Err(e) => {
            chat.storage_error.set(Some(format!("“{name}” was not imported. {e}")));
            return;
        }
    };
    let hash = content_hash(&transcript);
    let account = chat.account.get_untracked().unwrap_or_default();
    if let Ok(all) = store::list().await {
        if let Some(existing) =
            all.into_iter().find(|s| s.hash == hash && s.account == account && !s.deleted)
        {
            open(chat, &existing.id).await;
            return;
        }
    }
    if let Err(e) = track_untracked(&mut transcript).await {
        chat.storage_error
            .set(Some(format!("“{name}” was not imported: its files could not be checked. {e}")));
        return;
    }
    chat.base.set_value(0);
    show_transcript(chat, new_conversation_id(), transcript, &[]);
    persist(chat).await;
}

/// Asks the server about every File the transcript uses but does not track: live ones are
/// tracked with their real expiry; gone ones are tracked as expired.
async fn track_untracked(transcript: &mut Transcript) -> Result<(), crate::error::AppError> {
    let mut uris: Vec<String> = transcript
        .conversation
        .iter()
        .filter_map(|m| m.get("parts")?.as_array().cloned())
        .flatten()
        .filter_map(|p| {
            let fd = p.get("file_data").or_else(|| p.get("fileData"))?;
            fd.get("file_uri").or_else(|| fd.get("fileUri"))?.as_str().map(str::to_string)
        })
        .filter(|uri| file_id_of(uri).is_some_and(|id| !transcript.uploaded_files.contains_key(id)))
        .collect();
    uris.sort();
    uris.dedup();
    if uris.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    for check in api::check_files(uris).await? {
        let Some(id) = file_id_of(&check.uri) else { continue };
        let mut extra = serde_json::Map::new();
        if let Some(t) = check.expiration_time {
            extra.insert("expirationTime".into(), json!(t));
        }
        if let Some(m) = check.mime_type {
            extra.insert("mimeType".into(), json!(m));
        }
        if !check.live {
            extra.insert("expired".into(), json!(true));
        }
        transcript.uploaded_files.insert(
            id.to_string(),
            crate::transcript::TrackedFile {
                upload_time: crate::transcript::upload_time(now),
                file_uri: check.uri.clone(),
                extra,
            },
        );
    }
    Ok(())
}
