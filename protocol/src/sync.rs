//! Conversations synced between a signed-in person's devices through the server
//! (`docs/sync.md`).
//!
//! A device keeps each conversation as messages with ids. Each message it got from the server
//! carries the conversation revision that last wrote it; a message the device made or changed
//! itself carries none until the server has it. A device sends a whole conversation
//! ([`Push`]) with the revision it last had (`base`): on that revision the server takes it as
//! it is; on a stale one it merges appends in order, or keeps the device's version as a copy
//! titled `<title> (conflict, <device> <time>)` — what a device wrote is never dropped
//! ([`PushOutcome`]). A device catches up with [`Pulled`] pages of what changed after its
//! cursor, and hears of changes from the account's event stream ([`SyncEvent`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message as synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncedMessage {
    /// Its id (unique in its conversation; at most [`MAX_ID_CHARS`] characters).
    pub id: String,
    /// The conversation revision that last wrote it on the server; `None` for a message this
    /// device made or changed and has not synced yet.
    #[serde(default)]
    pub revision: Option<i64>,
    /// The message: Gemini's `contents` entry (`role`, `parts`, …), as in the export format.
    pub message: Value,
}

/// A conversation as the server keeps it, or as a device sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncedConversation {
    /// Its id (at most [`MAX_ID_CHARS`] characters).
    pub id: String,
    /// Its revision on the server (in a [`Push`]: ignored, `base` says which one the device
    /// had).
    #[serde(default)]
    pub revision: i64,
    /// Its title.
    pub title: String,
    /// The export format's other fields: `conversation_summaries`, `uploaded_files`, `model`,
    /// `cache_files` (an object).
    #[serde(default)]
    pub meta: Value,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When it last changed, ms since the epoch.
    pub updated_ms: i64,
    /// When it was deleted (it sits in `Recently deleted`), ms since the epoch.
    #[serde(default)]
    pub deleted_ms: Option<i64>,
    /// Its messages, in order (none when deleted).
    #[serde(default)]
    pub messages: Vec<SyncedMessage>,
}

/// A device's write of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// The conversation as the device has it.
    pub conversation: SyncedConversation,
    /// The revision the device last had from the server; 0 for a conversation it made.
    pub base: i64,
    /// The device's name, for the title of a conflict's copy (e.g. `Firefox on Linux`; at
    /// most [`MAX_DEVICE_CHARS`] characters).
    #[serde(default)]
    pub device: String,
}

/// What the server did with a [`Push`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PushOutcome {
    /// Taken as sent (it was on the latest revision), or nothing needed changing.
    Applied {
        /// The conversation as stored now.
        conversation: SyncedConversation,
    },
    /// The base was stale: the device's new messages were appended after what others added.
    Merged {
        /// The conversation as stored now.
        conversation: SyncedConversation,
    },
    /// The base was stale and the changes could not merge: the stored conversation is left
    /// as it was and the device's version became a new conversation, `fork`.
    Forked {
        /// The conversation as stored (another device's version).
        conversation: SyncedConversation,
        /// The device's version, as a new conversation titled `<title> (conflict, <device>
        /// <time>)`.
        fork: SyncedConversation,
    },
}

impl PushOutcome {
    /// Whether the write arrived on a stale revision (the server answers 409 Conflict).
    pub fn was_stale(&self) -> bool {
        !matches!(self, PushOutcome::Applied { .. })
    }
}

/// A page of what changed in an account's conversations after a cursor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Pulled {
    /// The conversations changed, in the order they changed (a deleted one without its
    /// messages).
    pub conversations: Vec<SyncedConversation>,
    /// Ask from this cursor next.
    pub cursor: i64,
    /// Whether more changes wait past `cursor`.
    pub more: bool,
}

/// A deleted conversation, as `Recently deleted` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletedConversation {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it was deleted, ms since the epoch.
    pub deleted_ms: i64,
    /// When it will be purged, ms since the epoch.
    pub purge_ms: i64,
}

/// One line of an account's event stream (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SyncEvent {
    /// The account's cursor is now `cursor`: pull what changed after the device's own.
    Changed {
        /// The account's cursor.
        cursor: i64,
    },
    /// Nothing changed for a while; the stream is alive.
    Ping,
}

/// Longest conversation or message id, characters.
pub const MAX_ID_CHARS: usize = 64;

/// Longest device name kept, characters.
pub const MAX_DEVICE_CHARS: usize = 40;

/// How long a deleted conversation can be restored, ms (30 days).
pub const RESTORE_MS: i64 = 30 * 24 * 3_600_000;

/// Whether `id` can name a conversation or a message: 1 to [`MAX_ID_CHARS`] characters of
/// `A-Z a-z 0-9 - _`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
