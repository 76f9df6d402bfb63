//! The page's sync task (browser only): rounds of pull-then-push, woken by [`kick`], the
//! account's event stream and the connection coming back.

use std::cell::RefCell;

use futures::{channel::mpsc, future::select, StreamExt};
use leptos::prelude::*;

use super::convert::{self, Stored, SyncMeta};
use crate::{
    api,
    browser::{
        device,
        store::{self, Record},
    },
    client::{
        conversations,
        state::{new_message_key, Chat, SyncStatus},
    },
    error::AppError,
    sync::{DeletedConversation, PushOutcome, SyncEvent, SyncedConversation},
};

thread_local! {
    /// Wakes the sync task (set by [`start`]).
    static KICK: RefCell<Option<mpsc::UnboundedSender<()>>> = const { RefCell::new(None) };
}

/// Why a round stopped before the end.
enum Stop {
    /// The server could not be reached.
    Offline,
    /// The server or the browser's storage refused: the sentence says why.
    Refused(String),
}

impl From<AppError> for Stop {
    fn from(error: AppError) -> Stop {
        match error {
            AppError::Transport(_) => Stop::Offline,
            other => Stop::Refused(other.to_string()),
        }
    }
}

impl From<rexie::Error> for Stop {
    fn from(error: rexie::Error) -> Stop {
        Stop::Refused(store::describe(&error))
    }
}

/// What a round changed that the page shows.
#[derive(Default)]
struct Changed {
    /// The conversation list.
    list: bool,
    /// The open conversation's stored copy (reopened when no turn is under way).
    open: bool,
    /// The open conversation's copy became this new conversation (a conflict kept this
    /// browser's version apart): it is opened instead.
    open_fork: Option<String>,
}

/// Starts syncing `account`'s conversations: the first round at once, then whenever
/// something changes here or elsewhere. Offers the conversations made signed out on this
/// browser, when there are some and the account was never asked here.
pub fn start(chat: Chat, account: String) {
    let (kicks, woken) = mpsc::unbounded();
    KICK.with(|k| *k.borrow_mut() = Some(kicks));
    chat.sync.set(Some(SyncStatus::Syncing));
    leptos::task::spawn_local(offer_adoption(chat, account.clone()));
    leptos::task::spawn_local(rounds(chat, account.clone(), woken));
    leptos::task::spawn_local(follow(account));
    device::on_online(kick);
}

/// Asks the sync task for a round (something changed here).
pub fn kick() {
    KICK.with(|k| {
        if let Some(kicks) = &*k.borrow() {
            let _ = kicks.unbounded_send(());
        }
    });
}

fn cursor_key(account: &str) -> String {
    format!("sync-cursor-{account}")
}

fn asked_key(account: &str) -> String {
    format!("parley-sync-asked-{account}")
}

async fn rounds(chat: Chat, account: String, mut woken: mpsc::UnboundedReceiver<()>) {
    let mut backoff_ms = 2_000;
    loop {
        let wait_ms = match round(chat, &account).await {
            Ok(()) => {
                chat.sync.set(Some(SyncStatus::Synced));
                backoff_ms = 2_000;
                None
            }
            Err(Stop::Offline) => {
                chat.sync.set(Some(SyncStatus::Offline));
                backoff_ms = (backoff_ms * 2).min(60_000);
                Some(backoff_ms)
            }
            Err(Stop::Refused(sentence)) => {
                chat.sync.set(Some(SyncStatus::Refused(sentence)));
                Some(30_000)
            }
        };
        match wait_ms {
            None => {
                if woken.next().await.is_none() {
                    return;
                }
            }
            Some(ms) => {
                let _ = select(woken.next(), Box::pin(device::sleep(ms))).await;
            }
        }
        // Kicks that came meanwhile are served by this next round.
        while woken.try_recv().is_ok() {}
    }
}

/// One round: what changed on the server comes down, then what changed here goes up.
async fn round(chat: Chat, account: &str) -> Result<(), Stop> {
    let mut changed = Changed::default();
    let outcome = match pull(chat, account, &mut changed).await {
        Ok(()) => push(chat, account, &mut changed).await,
        Err(stop) => Err(stop),
    };
    show(chat, changed).await;
    outcome
}

/// Shows what a round changed: the list, and the open conversation unless a turn is under
/// way (its end saves it, and the next round sends it on the revision it was built on).
async fn show(chat: Chat, changed: Changed) {
    if changed.list {
        conversations::refresh(chat).await;
    }
    if chat.busy.get_untracked() {
        return;
    }
    if let Some(fork) = changed.open_fork {
        conversations::open(chat, &fork).await;
    } else if changed.open {
        conversations::reload(chat).await;
    }
}

async fn pull(chat: Chat, account: &str, changed: &mut Changed) -> Result<(), Stop> {
    let key = cursor_key(account);
    let mut kept = store::setting(&key).await?;
    loop {
        let cursor = kept.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let page = api::sync_pull(cursor).await?;
        if !page.conversations.is_empty() {
            chat.sync.set(Some(SyncStatus::Syncing));
        }
        for conversation in &page.conversations {
            take(chat, account, conversation, changed).await?;
        }
        let next = page.cursor.to_string();
        if !store::replace_setting(&key, kept.as_deref(), &next).await? {
            // The cursor moved under this round (the browser's data cleared, say): the next
            // round starts again from the one kept.
            kick();
            return Ok(());
        }
        if !page.more {
            return Ok(());
        }
        kept = Some(next);
    }
}

/// Keeps the server's version of a conversation here — unless this browser changed it since
/// (it is pushed next, and merged or forked there) or already has it.
async fn take(
    chat: Chat,
    account: &str,
    conversation: &SyncedConversation,
    changed: &mut Changed,
) -> Result<(), Stop> {
    let id = conversation.id.clone();
    let is_open = chat.id.get_untracked() == id;
    if conversation.deleted_ms.is_some() {
        let local = store::load(&id).await?;
        if local.is_some_and(|l| l.account == account && !l.dirty) {
            store::delete(&id).await?;
            changed.list = true;
            if is_open && !chat.busy.get_untracked() {
                conversations::start_new(chat);
            }
        }
        return Ok(());
    }
    let Some(record) = record_of(conversation, account) else { return Ok(()) };
    store_if(record, is_open, changed, |local| {
        local.is_none_or(|l| {
            l.account == account
                && !l.dirty
                && !l.deleted
                && SyncMeta::parse(&l.sync).base < conversation.revision
        })
    })
    .await
}

/// Stores `record` in place of this browser's copy when `replaces` says so of that copy (none
/// when it has none), in one transaction; the list, and the open conversation when it is
/// `is_open`, then show it.
async fn store_if(
    record: Record,
    is_open: bool,
    changed: &mut Changed,
    replaces: impl FnOnce(Option<&Record>) -> bool,
) -> Result<(), Stop> {
    let id = record.id.clone();
    let written = std::cell::Cell::new(false);
    store::update(&id, |local| {
        written.set(replaces(local.as_ref()));
        written.get().then_some(record)
    })
    .await?;
    if written.get() {
        changed.list = true;
        changed.open |= is_open;
    }
    Ok(())
}

/// A conversation from the server as this browser stores it, clean.
fn record_of(conversation: &SyncedConversation, account: &str) -> Option<Record> {
    let (export, meta) = convert::from_synced(conversation)?;
    Some(Record {
        id: conversation.id.clone(),
        title: conversation.title.clone(),
        updated: conversation.updated_ms as f64,
        hash: conversations::export_hash(&export),
        export,
        account: account.to_string(),
        dirty: false,
        deleted: false,
        sync: meta.to_text(),
    })
}

async fn push(chat: Chat, account: &str, changed: &mut Changed) -> Result<(), Stop> {
    let mut refused = None;
    for listed in store::list().await? {
        if listed.account != account || !(listed.dirty || listed.deleted) {
            continue;
        }
        chat.sync.set(Some(SyncStatus::Syncing));
        if listed.deleted {
            match api::sync_delete(listed.id.clone(), false).await {
                Ok(()) | Err(AppError::NotFound(_)) => store::delete(&listed.id).await?,
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        // A turn under way on it: its end saves it and asks for another round.
        if chat.busy.get_untracked() && chat.id.get_untracked() == listed.id {
            continue;
        }
        let Some(record) = store::load(&listed.id).await? else { continue };
        let meta = SyncMeta::parse(&record.sync);
        if !meta.refused.is_empty() && meta.refused == record.hash {
            continue;
        }
        let stored = Stored {
            id: &record.id,
            title: &record.title,
            updated_ms: record.updated as i64,
            meta: &meta,
        };
        let Some(write) =
            convert::to_push(&stored, &record.export, &device::name(), new_message_key)
        else {
            continue;
        };
        match api::sync_push(write).await {
            Ok(outcome) => adopt_outcome(chat, account, &record, outcome, changed).await?,
            Err(AppError::BadRequest(sentence)) => {
                // This content can never go as it is: not sent again until it changes.
                let hash = record.hash.clone();
                store::update(&record.id, |local| {
                    let mut local = local.filter(|l| l.hash == hash)?;
                    let mut meta = SyncMeta::parse(&local.sync);
                    meta.refused = hash;
                    local.sync = meta.to_text();
                    Some(local)
                })
                .await?;
                refused = Some(format!("“{}” cannot be synced: {sentence}", record.title));
            }
            Err(e) => return Err(e.into()),
        }
    }
    refused.map_or(Ok(()), |sentence| Err(Stop::Refused(sentence)))
}

/// Keeps what the server made of a push: its version of the conversation (with the others'
/// changes merged in), and a conflict's copy as a conversation of its own. When the
/// conversation changed here while the push was out, its content stays (it goes next round).
async fn adopt_outcome(
    chat: Chat,
    account: &str,
    sent: &Record,
    outcome: PushOutcome,
    changed: &mut Changed,
) -> Result<(), Stop> {
    let (conversation, fork) = match outcome {
        PushOutcome::Applied { conversation } | PushOutcome::Merged { conversation } => {
            (conversation, None)
        }
        PushOutcome::Forked { conversation, fork } => (conversation, Some(fork)),
    };
    let is_open = chat.id.get_untracked() == sent.id;
    if let Some(fork) = fork {
        if let Some(record) = record_of(&fork, account) {
            store::save(&record).await?;
            changed.list = true;
            if is_open {
                changed.open_fork = Some(fork.id.clone());
            }
        }
    }
    if conversation.deleted_ms.is_some() {
        // It was deleted elsewhere and this browser had nothing new for it.
        store::delete(&sent.id).await?;
        changed.list = true;
        return Ok(());
    }
    let Some(record) = record_of(&conversation, account) else { return Ok(()) };
    store_if(record, is_open, changed, |local| {
        local.is_some_and(|l| l.updated == sent.updated && l.hash == sent.hash && !l.deleted)
    })
    .await
}

/// Follows the account's event stream: each `changed` past this browser's cursor asks for a
/// round. Reconnects when the stream ends (every 30 minutes) or breaks (offline: with backoff).
async fn follow(account: String) {
    let mut backoff_ms = 1_000;
    loop {
        match api::sync_events().await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut buffer: Vec<u8> = Vec::new();
                while let Some(Ok(chunk)) = stream.next().await {
                    backoff_ms = 1_000;
                    buffer.extend_from_slice(&chunk);
                    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buffer.drain(..=end).collect();
                        if let Ok(SyncEvent::Changed { cursor }) =
                            serde_json::from_slice(&line[..end])
                        {
                            // Kept in IndexedDB with the conversations: a browser
                            // whose data was cleared pulls them all again.
                            let known = store::setting(&cursor_key(&account)).await;
                            if known.ok().flatten() != Some(cursor.to_string()) {
                                kick();
                            }
                        }
                    }
                }
            }
            Err(AppError::SignInRequired) => return,
            Err(_) => {}
        }
        device::sleep(backoff_ms).await;
        backoff_ms = (backoff_ms * 2).min(60_000);
        kick();
    }
}

/// At the account's first sign-in on this browser, offers the conversations made signed out
/// here (`Keep in my account` / `Leave on this device`).
async fn offer_adoption(chat: Chat, account: String) {
    if device::setting(&asked_key(&account)).is_some() {
        return;
    }
    let Ok(all) = store::list().await else { return };
    let anonymous = all.iter().filter(|s| s.account.is_empty() && !s.deleted).count();
    if anonymous == 0 {
        device::set_setting(&asked_key(&account), "none");
        return;
    }
    chat.adopt.set(anonymous);
}

/// The answer to the offer: `keep` moves the conversations made signed out here into the
/// account (they sync from now on); otherwise they stay on this browser only, shown when
/// signed out. Asked once per account and browser.
pub async fn adopt(chat: Chat, keep: bool) {
    chat.adopt.set(0);
    let Some(account) = chat.account.get_untracked() else { return };
    device::set_setting(&asked_key(&account), if keep { "keep" } else { "leave" });
    if !keep {
        return;
    }
    let Ok(all) = store::list().await else { return };
    for listed in all.iter().filter(|s| s.account.is_empty() && !s.deleted) {
        let moved = store::update(&listed.id, |local| {
            let mut local = local.filter(|l| l.account.is_empty())?;
            local.account = account.clone();
            local.dirty = true;
            local.sync = String::new();
            Some(local)
        })
        .await;
        if let Err(e) = moved {
            chat.storage_error.set(Some(store::describe(&e)));
        }
    }
    // Listed now, and the latest opened when the chat is empty (as at page load).
    conversations::restore(chat).await;
    kick();
}

/// `Recently deleted`: the account's deleted conversations, the latest first.
///
/// # Errors
/// The server's sentence (offline, signed out).
pub async fn deleted() -> Result<Vec<DeletedConversation>, String> {
    api::sync_deleted().await.map_err(|e| e.to_string())
}

/// Restores a deleted conversation on every device (it comes back with the next round).
///
/// # Errors
/// The server's sentence (it was purged, offline).
pub async fn restore(id: String) -> Result<(), String> {
    api::sync_delete(id, true).await.map_err(|e| e.to_string())?;
    kick();
    Ok(())
}
