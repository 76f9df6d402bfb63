//! The conflict rule: what a device's write of a conversation becomes, given what is stored.
//! Pure — the store runs it inside the account's turn ([`parley_store::conversations`]).
//!
//! * Nothing stored (or only a purged tombstone): the conversation is made.
//! * Sent on the latest revision: taken as sent. Each message keeps its revision when its
//!   body is unchanged and gets the new one otherwise.
//! * Sent on a stale revision:
//!   * the device changed nothing (it only had not heard of others' changes): nothing is
//!     written, the device adopts what is stored;
//!   * the device only appended, after messages still stored as it saw them: its messages go
//!     after everything stored (appends from two devices merge in order);
//!   * anything else (it edited, removed or regenerated a message while another device
//!     appended, edited or removed): the stored conversation is left alone and the device's
//!     version becomes a new conversation titled `<title> (conflict, <device> <time>)`.
//!
//! A message sent again that is already stored as sent (a retry after a lost answer) counts
//! as synced, so retrying a write never makes a conflict. A write that would take the
//! account past its storage is refused unless it makes the account smaller.

use std::collections::{HashMap, HashSet};

use parley_store::conversations::{Conversation, Decision, Message};
use serde_json::{Map, Value};

/// A device's write, checked as an import is (ids, sizes, shapes): message bodies are JSON
/// text.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The conversation's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its meta (a JSON object).
    pub meta: Map<String, Value>,
    /// When the device made it, ms since the epoch.
    pub created_ms: i64,
    /// When the device last changed it, ms since the epoch.
    pub updated_ms: i64,
    /// The revision the device last had (0: it made this conversation).
    pub base: i64,
    /// Its messages: id, the revision the device had it at, and the body.
    pub messages: Vec<(String, Option<i64>, String)>,
}

/// What the write became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken as sent (or nothing needed changing on the latest revision).
    Applied,
    /// Stale, and the device had nothing of its own to add.
    Unchanged,
    /// Stale: the device's new messages appended after the others'.
    Merged,
    /// Stale and not mergeable: the device's version is the new conversation `fork`.
    Forked {
        /// The new conversation's id.
        fork: String,
    },
    /// The account's storage would go past its quota.
    OverQuota,
}

/// Around a decision: the account's storage and quota, the time, and what names a fork.
#[derive(Debug, Clone)]
pub struct Context {
    /// The account's quota, bytes.
    pub quota: u64,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// The id a fork would get.
    pub fork_id: String,
    /// The fork's title suffix: `(conflict, <device> <time>)`.
    pub fork_suffix: String,
}

/// The decision for `incoming` over `stored`, with the account at `account_bytes`.
pub fn decide(
    stored: Option<&Conversation>,
    incoming: Incoming,
    account_bytes: u64,
    context: &Context,
) -> Decision<Outcome> {
    let Some(stored) = stored.filter(|s| !s.purged) else {
        let revision = stored.map_or(1, |s| s.revision + 1);
        let made = whole(&incoming, incoming.id.clone(), incoming.title.clone(), revision);
        return within_quota(account_bytes, 0, made, Outcome::Applied, context);
    };
    if incoming.base == stored.revision {
        return on_latest(stored, incoming, account_bytes, context);
    }
    let by_id: HashMap<&str, (usize, &Message)> =
        stored.messages.iter().enumerate().map(|(i, m)| (m.id.as_str(), (i, m))).collect();
    let mut appended: Vec<&(String, Option<i64>, String)> = Vec::new();
    let (mut own_changes, mut mergeable) = (false, true);
    let mut last_synced: Option<usize> = None;
    for sent in &incoming.messages {
        let (id, revision, body) = sent;
        let synced_at = match (revision, by_id.get(id.as_str())) {
            // Already stored as sent: a retry, or a message the device had as it is.
            (None, Some((at, old))) if old.body == *body => Some(*at),
            (Some(r), Some((at, old))) if old.revision == *r && old.body == *body => Some(*at),
            // Made here, new to the server.
            (None, None) => {
                own_changes = true;
                appended.push(sent);
                None
            }
            // Changed here, or changed or removed by another device since.
            (None, Some(_)) => {
                own_changes = true;
                mergeable = false;
                None
            }
            (Some(_), _) => {
                mergeable = false;
                None
            }
        };
        if let Some(at) = synced_at {
            // Only appends merge: nothing new before a synced message, nothing reordered.
            if !appended.is_empty() || last_synced.is_some_and(|last| at < last) {
                own_changes = true;
                mergeable = false;
            }
            last_synced = Some(at);
        }
    }
    let sent_ids: HashSet<&str> = incoming.messages.iter().map(|(id, _, _)| id.as_str()).collect();
    if stored
        .messages
        .iter()
        .any(|m| m.revision <= incoming.base && !sent_ids.contains(m.id.as_str()))
    {
        // The device removed a message it had (an edit or a regenerate cuts the tail).
        own_changes = true;
        mergeable = false;
    }
    if !own_changes {
        return Decision::Keep(Outcome::Unchanged);
    }
    if mergeable {
        let revision = stored.revision + 1;
        let mut merged = stored.clone();
        merged.revision = revision;
        merged.deleted_ms = None;
        merged.updated_ms = stored.updated_ms.max(incoming.updated_ms);
        merged.meta = merge_meta(&stored.meta, &incoming.meta);
        merged.messages.extend(appended.into_iter().map(|(id, _, body)| Message {
            id: id.clone(),
            revision,
            body: body.clone(),
        }));
        return within_quota(account_bytes, stored.bytes(), merged, Outcome::Merged, context);
    }
    let title = format!("{} {}", incoming.title, context.fork_suffix);
    let mut fork = whole(&incoming, context.fork_id.clone(), title, 1);
    fork.created_ms = context.now_ms;
    let outcome = Outcome::Forked { fork: context.fork_id.clone() };
    within_quota(account_bytes, 0, fork, outcome, context)
}

/// Sent on the latest revision: taken as sent.
fn on_latest(
    stored: &Conversation,
    incoming: Incoming,
    account_bytes: u64,
    context: &Context,
) -> Decision<Outcome> {
    let revision = stored.revision + 1;
    let by_id: HashMap<&str, &Message> =
        stored.messages.iter().map(|m| (m.id.as_str(), m)).collect();
    let messages: Vec<Message> = incoming
        .messages
        .iter()
        .map(|(id, _, body)| match by_id.get(id.as_str()) {
            Some(old) if old.body == *body => (*old).clone(),
            _ => Message { id: id.clone(), revision, body: body.clone() },
        })
        .collect();
    let meta = Value::Object(incoming.meta.clone()).to_string();
    if messages == stored.messages
        && meta == stored.meta
        && incoming.title == stored.title
        && stored.deleted_ms.is_none()
    {
        return Decision::Keep(Outcome::Applied);
    }
    let next = Conversation {
        id: stored.id.clone(),
        revision,
        changed: 0,
        title: incoming.title,
        meta,
        created_ms: stored.created_ms,
        updated_ms: incoming.updated_ms.max(stored.updated_ms),
        deleted_ms: None,
        purged: false,
        messages,
    };
    within_quota(account_bytes, stored.bytes(), next, Outcome::Applied, context)
}

/// `incoming` as a conversation of its own, every message at `revision`.
fn whole(incoming: &Incoming, id: String, title: String, revision: i64) -> Conversation {
    Conversation {
        id,
        revision,
        changed: 0,
        title,
        meta: Value::Object(incoming.meta.clone()).to_string(),
        created_ms: incoming.created_ms,
        updated_ms: incoming.updated_ms,
        deleted_ms: None,
        purged: false,
        messages: incoming
            .messages
            .iter()
            .map(|(id, _, body)| Message { id: id.clone(), revision, body: body.clone() })
            .collect(),
    }
}

/// Writes `conversation` (replacing `replaced_bytes`) unless that takes the account past its
/// quota while making it larger.
fn within_quota(
    account_bytes: u64,
    replaced_bytes: u64,
    conversation: Conversation,
    outcome: Outcome,
    context: &Context,
) -> Decision<Outcome> {
    let after = (account_bytes + conversation.bytes()).saturating_sub(replaced_bytes);
    if after > context.quota && after > account_bytes {
        return Decision::Keep(Outcome::OverQuota);
    }
    Decision::Write(vec![conversation], outcome)
}

/// The stored meta, with the Files the device tracks and the store does not added to its
/// `uploaded_files` (the device's appended messages may use them).
fn merge_meta(stored: &str, incoming: &Map<String, Value>) -> String {
    let mut meta: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    if let Some(Value::Object(theirs)) = incoming.get("uploaded_files") {
        let files = meta.entry("uploaded_files").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ours) = files {
            for (id, file) in theirs {
                ours.entry(id.clone()).or_insert_with(|| file.clone());
            }
        }
    }
    Value::Object(meta).to_string()
}

#[cfg(test)]
mod tests;
