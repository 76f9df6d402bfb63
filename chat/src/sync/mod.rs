//! Conversations that follow a signed-in person between devices: the service over the store's
//! [`parley_store::conversations`] — a device's write checked and merged by the conflict rule
//! ([`merge`]), pages of what changed, delete and restore (purged after
//! [`RESTORE_MS`]), the account's storage quota, and subscriptions to an account's changes.
//!
//! Only signed-in accounts sync: the caller passes the account, never a session.

pub mod merge;

use parley_protocol::{
    sync::{
        is_valid_id, DeletedConversation, Pulled, Push, PushOutcome, SyncedConversation,
        SyncedMessage, MAX_DEVICE_CHARS, RESTORE_MS,
    },
    transcript::{MAX_IMPORT_BYTES, MAX_MESSAGES},
};
use parley_store::{
    conversations::{Conversation, Message, Subscription},
    AccountId, Store,
};
use serde_json::Value;

use crate::{budget::Clock, ChatError};

/// Longest title kept, characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Most bytes of conversations one pull answers with (a page; at least one conversation,
/// whatever its size).
pub const PULL_BYTES: u64 = 4 << 20;

/// The sync service. Cheap to clone.
#[derive(Clone)]
pub struct Sync {
    store: Store,
    quota: u64,
    clock: Clock,
}

impl std::fmt::Debug for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sync").field("quota", &self.quota).finish_non_exhaustive()
    }
}

impl Sync {
    /// The service over `store`, each account allowed `quota` bytes of conversations.
    pub fn new(store: Store, quota: u64, clock: Clock) -> Sync {
        Sync { store, quota, clock }
    }

    /// Each account's storage, bytes.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// Writes a device's version of a conversation (see [`merge`] for what it becomes).
    ///
    /// # Errors
    /// [`ChatError::BadRequest`] for a write that is not a conversation (ids, sizes, shapes);
    /// [`ChatError::StorageFull`] past the account's quota; [`ChatError::Store`].
    pub async fn push(&self, account: &AccountId, push: Push) -> Result<PushOutcome, ChatError> {
        let incoming = checked(&push)?;
        let now_ms = (self.clock)();
        let context = merge::Context {
            quota: self.quota,
            now_ms,
            fork_id: format!("c{}", hex::encode(rand::random::<[u8; 16]>())),
            fork_suffix: format!("(conflict, {} {})", device_name(&push.device), utc(now_ms)),
        };
        let id = incoming.id.clone();
        let written = self
            .store
            .write_conversation(account, &id, move |stored, bytes| {
                merge::decide(stored, incoming, bytes, &context)
            })
            .await?;
        let stored = || async {
            let found = self.store.conversation(account, &id).await?;
            found.map(synced).ok_or_else(|| ChatError::Internal("find the conversation".into()))
        };
        Ok(match written.outcome {
            merge::Outcome::OverQuota => {
                return Err(ChatError::StorageFull { quota: self.quota });
            }
            merge::Outcome::Applied => PushOutcome::Applied { conversation: stored().await? },
            merge::Outcome::Unchanged | merge::Outcome::Merged => {
                PushOutcome::Merged { conversation: stored().await? }
            }
            merge::Outcome::Forked { fork } => {
                let made = self.store.conversation(account, &fork).await?;
                let fork = made
                    .map(synced)
                    .ok_or_else(|| ChatError::Internal("find the conflict's copy".into()))?;
                PushOutcome::Forked { conversation: stored().await?, fork }
            }
        })
    }

    /// What changed in the account's conversations after `cursor`, a page at a time. A
    /// cursor past the account's (a device that synced with a database since restored) starts
    /// again from the beginning.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn pull(&self, account: &AccountId, cursor: i64) -> Result<Pulled, ChatError> {
        let (latest, _) = self.store.sync_state(account).await?;
        let since = if cursor > latest || cursor < 0 { 0 } else { cursor };
        let page = self.store.pull_conversations(account, since, PULL_BYTES).await?;
        Ok(Pulled {
            conversations: page.conversations.into_iter().map(synced).collect(),
            cursor: page.cursor,
            more: page.more,
        })
    }

    /// Deletes the conversation `id` everywhere; it stays restorable for [`RESTORE_MS`].
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the account has no such conversation.
    pub async fn delete(&self, account: &AccountId, id: &str) -> Result<(), ChatError> {
        let now_ms = (self.clock)();
        let found = self.store.set_conversation_deleted(account, id, Some(now_ms)).await?;
        found.map(drop).ok_or_else(|| not_found(id))
    }

    /// Restores the deleted conversation `id`.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the account has no such conversation, or it was purged.
    pub async fn restore(&self, account: &AccountId, id: &str) -> Result<(), ChatError> {
        let found = self.store.set_conversation_deleted(account, id, None).await?;
        found.map(drop).ok_or_else(|| not_found(id))
    }

    /// The account's `Recently deleted`, the latest first.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn deleted(
        &self,
        account: &AccountId,
    ) -> Result<Vec<DeletedConversation>, ChatError> {
        let listed = self.store.deleted_conversations(account).await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| {
                let deleted_ms = l.deleted_ms?;
                Some(DeletedConversation {
                    id: l.id,
                    title: l.title,
                    deleted_ms,
                    purge_ms: deleted_ms + RESTORE_MS,
                })
            })
            .collect())
    }

    /// The account's cursor and stored bytes.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn state(&self, account: &AccountId) -> Result<(i64, u64), ChatError> {
        Ok(self.store.sync_state(account).await?)
    }

    /// Follows the account's changes (see [`Store::subscribe`]).
    pub fn subscribe(&self, account: &AccountId) -> Subscription {
        self.store.subscribe(account)
    }

    /// Purges what was deleted over [`RESTORE_MS`] ago, and the records of the Files only
    /// those conversations used; how many conversations were purged.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn purge(&self) -> Result<usize, ChatError> {
        let purged = self.store.purge_conversations((self.clock)() - RESTORE_MS).await?;
        for (account, meta) in &purged {
            let owner = parley_store::Owner::of_account(account);
            let meta: Value = serde_json::from_str(meta).unwrap_or_default();
            let Some(files) = meta.get("uploaded_files").and_then(Value::as_object) else {
                continue;
            };
            for file in files.values() {
                if let Some(uri) = file.get("fileUri").and_then(Value::as_str) {
                    self.store.forget_file_if_unused(&owner, account, uri).await?;
                }
            }
        }
        Ok(purged.len())
    }
}

fn not_found(id: &str) -> ChatError {
    ChatError::NotFound(format!("conversation {id}"))
}

/// A stored conversation as the page gets it.
pub fn synced(c: Conversation) -> SyncedConversation {
    SyncedConversation {
        id: c.id,
        revision: c.revision,
        title: c.title,
        meta: serde_json::from_str(&c.meta).unwrap_or(Value::Null),
        created_ms: c.created_ms,
        updated_ms: c.updated_ms,
        deleted_ms: c.deleted_ms.or(c.purged.then_some(0)),
        messages: c
            .messages
            .into_iter()
            .map(|m: Message| SyncedMessage {
                id: m.id,
                revision: Some(m.revision),
                message: serde_json::from_str(&m.body).unwrap_or(Value::Null),
            })
            .collect(),
    }
}

/// A device's write, checked: ids, sizes and shapes as for an import (at most
/// [`MAX_MESSAGES`] messages, [`MAX_IMPORT_BYTES`] in all), each message an object with its
/// own id, once.
fn checked(push: &Push) -> Result<merge::Incoming, ChatError> {
    let bad =
        |what: &str| ChatError::BadRequest(format!("This conversation cannot be synced: {what}."));
    let c = &push.conversation;
    if !is_valid_id(&c.id) {
        return Err(bad("its id is not one Parley makes"));
    }
    if c.messages.len() > MAX_MESSAGES {
        return Err(bad(&format!("it has over {MAX_MESSAGES} messages")));
    }
    let Value::Object(meta) = (match &c.meta {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    }) else {
        return Err(bad("its settings are not an object"));
    };
    let mut total = meta.len();
    let mut ids = std::collections::HashSet::new();
    let mut messages = Vec::with_capacity(c.messages.len());
    for m in &c.messages {
        if !is_valid_id(&m.id) || !ids.insert(m.id.as_str()) {
            return Err(bad("a message id is missing, malformed or repeated"));
        }
        if !m.message.is_object() {
            return Err(bad("a message is not an object"));
        }
        let body = m.message.to_string();
        total += body.len();
        if total > MAX_IMPORT_BYTES {
            return Err(bad(&format!("it is over {} MiB", MAX_IMPORT_BYTES >> 20)));
        }
        messages.push((m.id.clone(), m.revision, body));
    }
    Ok(merge::Incoming {
        id: c.id.clone(),
        title: c.title.chars().take(MAX_TITLE_CHARS).collect(),
        meta,
        created_ms: c.created_ms,
        updated_ms: c.updated_ms,
        base: push.base.max(0),
        messages,
    })
}

/// The device's name as a conflict's title gives it: printable, at most
/// [`MAX_DEVICE_CHARS`] characters, `another device` when none is given.
fn device_name(device: &str) -> String {
    let name: String = device.chars().filter(|c| !c.is_control()).take(MAX_DEVICE_CHARS).collect();
    let name = name.trim();
    if name.is_empty() {
        "another device".into()
    } else {
        name.into()
    }
}

/// `ms` as `2026-12-03 08:00 UTC`.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_name_and_a_time_read_well_in_a_title() {
        assert_eq!(device_name("  Firefox on Linux\n"), "Firefox on Linux");
        assert_eq!(device_name(""), "another device");
        assert_eq!(device_name(&"x".repeat(100)).len(), MAX_DEVICE_CHARS);
        assert_eq!(utc(1_796_284_800_000), "2026-12-03 08:00 UTC");
    }
}
