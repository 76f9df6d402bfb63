//! A stored conversation (its export text and [`SyncMeta`]) ⇄ the form it is synced in
//! ([`SyncedConversation`]). Pure functions, the same in both builds, so they are tested here.
//!
//! Which message is new or changed is decided by content: the page remembers, per message, the
//! revision it last had from the server and a hash of its JSON then; a message whose JSON
//! hashes differently now (edited, its File replaced) is sent without a revision, as a change.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    sync::{Push, SyncedConversation, SyncedMessage, MAX_DEVICE_CHARS},
    transcript::Transcript,
};

/// The export format's fields that travel as a conversation's `meta`.
const META_FIELDS: [&str; 4] = ["conversation_summaries", "uploaded_files", "model", "cache_files"];

/// What the page knows of a conversation's copy on the server (kept as JSON beside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncMeta {
    /// The revision the page last had from the server; 0 when the server never had it.
    #[serde(default)]
    pub base: i64,
    /// When it was made, ms since the epoch (0: not known; the first push says now).
    #[serde(default)]
    pub created_ms: i64,
    /// Per message of the export's `conversation`, in its order: `[id, revision, hash]` — its
    /// id, the revision it was last synced at (`None`: never) and the [`hash`] of its JSON then.
    #[serde(default)]
    pub messages: Vec<(String, Option<i64>, u64)>,
    /// The SHA-256 of the content the server refused as it is (too large, malformed): not sent
    /// again until it changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refused: String,
}

impl SyncMeta {
    /// Read from its JSON; a missing or unreadable one is a conversation never synced.
    pub fn parse(text: &str) -> SyncMeta {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// As stored.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// After the page saved the conversation with messages `keys` (in order): each message
    /// that stays keeps what is known of it; a new one is known to no server.
    pub fn relink(&mut self, keys: &[String]) {
        let mut known: std::collections::HashMap<String, (Option<i64>, u64)> =
            self.messages.drain(..).map(|(id, revision, hash)| (id, (revision, hash))).collect();
        self.messages = keys
            .iter()
            .map(|key| {
                let (revision, hash) = known.remove(key).unwrap_or((None, 0));
                (key.clone(), revision, hash)
            })
            .collect();
    }

    /// The message ids, in order.
    pub fn keys(&self) -> Vec<String> {
        self.messages.iter().map(|(id, _, _)| id.clone()).collect()
    }
}

/// A 64-bit FNV-1a hash of a message's JSON: enough to tell whether it changed since it was
/// synced (the server keeps the revision of a message whose body did not change).
pub fn hash(message: &Value) -> u64 {
    serde_json::to_string(message)
        .unwrap_or_default()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What a push needs of a stored conversation besides its export text.
pub struct Stored<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its title.
    pub title: &'a str,
    /// Last change here, ms since the epoch.
    pub updated_ms: i64,
    /// What is known of its server copy.
    pub meta: &'a SyncMeta,
}

/// The write of a stored conversation: each message with its id and — when its JSON is what
/// was synced — the revision it was synced at; `None` when the export text is not readable.
/// Messages the meta does not name (a record from before sync) get `new_key()`s.
pub fn to_push(
    stored: &Stored,
    export: &str,
    device: &str,
    mut new_key: impl FnMut() -> String,
) -> Option<Push> {
    let Value::Object(mut root) = serde_json::from_str::<Value>(export).ok()? else {
        return None;
    };
    let conversation = match root.remove("conversation") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let messages = conversation
        .into_iter()
        .enumerate()
        .map(|(at, message)| {
            let known = stored.meta.messages.get(at);
            let id = known.map_or_else(&mut new_key, |(id, _, _)| id.clone());
            let revision = known
                .filter(|(_, _, synced)| *synced == hash(&message))
                .and_then(|(_, revision, _)| *revision);
            SyncedMessage { id, revision, message }
        })
        .collect();
    let meta: Map<String, Value> = META_FIELDS
        .iter()
        .filter_map(|field| Some((field.to_string(), root.remove(*field)?)))
        .collect();
    let created_ms =
        if stored.meta.created_ms > 0 { stored.meta.created_ms } else { stored.updated_ms };
    Some(Push {
        conversation: SyncedConversation {
            id: stored.id.to_string(),
            revision: 0,
            title: stored.title.to_string(),
            meta: Value::Object(meta),
            created_ms,
            updated_ms: stored.updated_ms,
            deleted_ms: None,
            messages,
        },
        base: stored.meta.base,
        device: device.chars().take(MAX_DEVICE_CHARS).collect(),
    })
}

/// A conversation from the server as the page stores it: its export text and what is now
/// known of its server copy (every message synced at its revision). `None` when it is not a
/// readable conversation (it is then left alone).
pub fn from_synced(conversation: &SyncedConversation) -> Option<(String, SyncMeta)> {
    let mut root = Map::new();
    root.insert("version".into(), Value::String("1.2".into()));
    root.insert(
        "conversation".into(),
        Value::Array(conversation.messages.iter().map(|m| m.message.clone()).collect()),
    );
    if let Value::Object(meta) = &conversation.meta {
        for field in META_FIELDS {
            if let Some(value) = meta.get(field) {
                root.insert(field.into(), value.clone());
            }
        }
    }
    let text = serde_json::to_string(&Value::Object(root)).ok()?;
    let export = Transcript::from_export(&text).ok()?.to_export();
    // Hashed as the stored export gives them back, so that an untouched message matches.
    let stored = Transcript::from_export(&export).ok()?;
    let messages = conversation
        .messages
        .iter()
        .zip(&stored.conversation)
        .map(|(m, json)| {
            (m.id.clone(), Some(m.revision.unwrap_or(conversation.revision)), hash(json))
        })
        .collect();
    let meta = SyncMeta {
        base: conversation.revision,
        created_ms: conversation.created_ms,
        messages,
        refused: String::new(),
    };
    Some((export, meta))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn synced(messages: Vec<(&str, &str)>) -> SyncedConversation {
        SyncedConversation {
            id: "c1".into(),
            revision: 4,
            title: "Cats".into(),
            meta: json!({"model": "gemini-2.5-pro", "uploaded_files": {}, "cache_files": true,
                "conversation_summaries": []}),
            created_ms: 10,
            updated_ms: 20,
            deleted_ms: None,
            messages: messages
                .into_iter()
                .enumerate()
                .map(|(at, (id, text))| SyncedMessage {
                    id: id.into(),
                    revision: Some(at as i64 + 1),
                    message: json!({"role": if at % 2 == 0 { "user" } else { "model" }, "parts": [{"text": text}]}),
                })
                .collect(),
        }
    }

    #[test]
    fn a_conversation_from_the_server_goes_back_unchanged_with_its_revisions() {
        let from = synced(vec![("m1", "Hello"), ("m2", "Hi")]);
        let (export, meta) = from_synced(&from).unwrap();
        assert_eq!(meta.base, 4);
        assert_eq!(meta.keys(), ["m1", "m2"]);
        let stored = Stored { id: "c1", title: "Cats", updated_ms: 20, meta: &meta };
        let push = to_push(&stored, &export, "Firefox on Linux", || unreachable!()).unwrap();
        assert_eq!(push.base, 4);
        assert_eq!(push.device, "Firefox on Linux");
        assert_eq!(push.conversation.meta, from.meta);
        assert_eq!(push.conversation.created_ms, 10);
        let revisions: Vec<_> = push.conversation.messages.iter().map(|m| m.revision).collect();
        assert_eq!(revisions, [Some(1), Some(2)]);
        assert_eq!(push.conversation.messages, from.messages);
    }

    #[test]
    fn an_edited_message_and_a_new_one_go_without_a_revision() {
        let (export, mut meta) = from_synced(&synced(vec![("m1", "Hello"), ("m2", "Hi")])).unwrap();
        let edited = export.replace("Hello", "Hello there");
        let mut transcript = Transcript::from_export(&edited).unwrap();
        transcript.conversation.push(json!({"role": "user", "parts": [{"text": "More"}]}));
        meta.relink(&["m1".into(), "m2".into(), "m3".into()]);
        let stored = Stored { id: "c1", title: "Cats", updated_ms: 30, meta: &meta };
        let push = to_push(&stored, &transcript.to_export(), "", || unreachable!()).unwrap();
        let sent: Vec<_> =
            push.conversation.messages.iter().map(|m| (m.id.as_str(), m.revision)).collect();
        assert_eq!(sent, [("m1", None), ("m2", Some(2)), ("m3", None)]);
    }

    #[test]
    fn a_record_from_before_sync_gets_ids_and_is_all_new() {
        let export = Transcript {
            conversation: vec![json!({"role": "user", "parts": [{"text": "Old"}]})],
            ..Transcript::default()
        }
        .to_export();
        let meta = SyncMeta::parse("");
        let stored = Stored { id: "c9", title: "Old", updated_ms: 5, meta: &meta };
        let push = to_push(&stored, &export, "", || "mfresh".into()).unwrap();
        assert_eq!(push.base, 0);
        assert_eq!(push.conversation.created_ms, 5);
        assert_eq!(push.conversation.messages[0].id, "mfresh");
        assert_eq!(push.conversation.messages[0].revision, None);
        assert!(to_push(&stored, "not json", "", || unreachable!()).is_none());
    }

    #[test]
    fn relink_keeps_what_stays_and_forgets_what_went() {
        let mut meta = SyncMeta {
            messages: vec![("a".into(), Some(1), 11), ("b".into(), Some(2), 22)],
            ..SyncMeta::default()
        };
        meta.relink(&["b".into(), "c".into()]);
        assert_eq!(meta.messages, [("b".into(), Some(2), 22), ("c".into(), None, 0)]);
        assert_eq!(SyncMeta::parse(&meta.to_text()), meta);
    }
}
