//! The page's client-side state: messages, pending attachments, and the turn in flight.
//!
//! Per-message fields are `ArcRwSignal`s so that a streaming answer updates one bubble
//! without re-rendering the list.

use std::sync::atomic::{AtomicU64, Ordering};

use leptos::prelude::*;

use crate::model::{CacheState, Content, FileData, Part, Role, Summary, UploadedFile, Usage};

/// A message's lifecycle, shown as `data-status` (see `docs/ui-contract.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Shown optimistically; its uploads are not done yet.
    Pending,
    /// Accepted: every attachment is an `ACTIVE` File.
    Sent,
    /// An answer arriving.
    Streaming,
    /// A complete answer.
    Done,
    /// Failed; the message shows an alert with Retry.
    Error,
}

impl Status {
    /// The `data-status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Streaming => "streaming",
            Status::Done => "done",
            Status::Error => "error",
        }
    }
}

/// A file chosen in the composer, not sent yet.
#[derive(Clone)]
pub struct PendingAttachment {
    /// Unique within the page.
    pub id: u64,
    /// The file's name.
    pub name: String,
    /// Its MIME type as the browser reports it.
    pub mime_type: String,
    /// Size, bytes.
    pub size: u64,
    /// `data:image/jpeg;base64,…` preview fitting 720×720, once made (images only).
    pub preview: ArcRwSignal<Option<String>>,
    /// The browser's file handle.
    #[cfg(feature = "hydrate")]
    pub file: send_wrapper::SendWrapper<web_sys::File>,
}

/// An attachment of a sent message.
#[derive(Clone)]
pub struct Attachment {
    /// The file's name.
    pub name: String,
    /// MIME type.
    pub mime_type: String,
    /// Size, bytes.
    pub size: u64,
    /// The preview, shared with the composer's pending attachment.
    pub preview: ArcRwSignal<Option<String>>,
    /// The `ACTIVE` File, once uploaded.
    pub uploaded: ArcRwSignal<Option<UploadedFile>>,
    /// True when the File is known to be gone (expired or deleted upstream): the message
    /// shows `expired content` and requests carry that text instead.
    pub expired: ArcRwSignal<bool>,
    /// How its upload is going, while it goes.
    pub progress: ArcRwSignal<Option<Progress>>,
}

/// An attachment's upload, as its progress bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bytes going to the server: percent sent.
    Sending(u8),
    /// All bytes sent; Gemini is processing the File until it is `ACTIVE`.
    Processing,
}

/// One bubble.
#[derive(Clone)]
pub struct Message {
    /// Unique within the page.
    pub id: u64,
    /// Its id in the stored conversation and on the server (`m` + 16 hex digits), which a
    /// synced message keeps on every device.
    pub key: String,
    /// Who wrote it.
    pub role: Role,
    /// Its text (an answer grows while it streams).
    pub text: ArcRwSignal<String>,
    /// Where it is in its lifecycle.
    pub status: ArcRwSignal<Status>,
    /// The files sent with it.
    pub attachments: Vec<Attachment>,
    /// The sentence shown in its alert when `status` is `Error`.
    pub error: ArcRwSignal<Option<String>>,
    /// True for an answer stopped before its end (it keeps what arrived).
    pub stopped: ArcRwSignal<bool>,
    /// An answer's token counts, once it is complete.
    pub usage: ArcRwSignal<Option<Usage>>,
    /// An answer's `thoughtSignature`s, sent back with the next requests, never shown.
    pub signatures: ArcStoredValue<Vec<String>>,
    /// The message's JSON as it was imported or stored, written back unchanged on export
    /// (so that fields Parley does not use survive); `None` once Parley changes it.
    pub raw: ArcStoredValue<Option<serde_json::Value>>,
    /// The browser files behind `attachments`, kept for Retry.
    #[cfg(feature = "hydrate")]
    pub files: send_wrapper::SendWrapper<std::rc::Rc<Vec<web_sys::File>>>,
}

pub use crate::model::EXPIRED_CONTENT;

/// A new conversation id: `c` + 32 hex digits of 128 random bits from the browser's Web
/// Crypto — unguessable, fit to name a conversation on a server or in a link. Ids of earlier
/// versions (`c` + 16 hex digits from the clock) still load: an id is only ever a key. On the
/// server, where nothing is stored, it is empty.
pub fn new_conversation_id() -> String {
    #[cfg(feature = "hydrate")]
    return format!("c{}", hex::encode(crate::browser::random::bytes::<16>()));
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// A new message id: `m` + 16 hex digits of 64 random bits (empty on the server, where
/// nothing is stored).
pub fn new_message_key() -> String {
    #[cfg(feature = "hydrate")]
    return format!("m{}", hex::encode(crate::browser::random::bytes::<8>()));
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Milliseconds since the Unix epoch (0 on the server, where nothing is stored).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

/// A new page-unique id.
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Message {
    fn new(role: Role, text: String, status: Status, attachments: Vec<Attachment>) -> Self {
        Message {
            id: next_id(),
            key: new_message_key(),
            role,
            text: ArcRwSignal::new(text),
            status: ArcRwSignal::new(status),
            attachments,
            error: ArcRwSignal::new(None),
            stopped: ArcRwSignal::new(false),
            usage: ArcRwSignal::new(None),
            signatures: ArcStoredValue::new(Vec::new()),
            raw: ArcStoredValue::new(None),
            #[cfg(feature = "hydrate")]
            files: send_wrapper::SendWrapper::new(std::rc::Rc::new(Vec::new())),
        }
    }

    /// A model bubble that starts streaming.
    pub fn model() -> Self {
        Message::new(Role::Model, String::new(), Status::Streaming, Vec::new())
    }

    /// A user message just written, shown at once as `pending`.
    #[cfg(feature = "hydrate")]
    pub fn user(text: String, attachments: Vec<Attachment>, files: Vec<web_sys::File>) -> Self {
        Message {
            files: send_wrapper::SendWrapper::new(std::rc::Rc::new(files)),
            ..Message::new(Role::User, text, Status::Pending, attachments)
        }
    }

    /// A message read back from storage or an import: settled, with its JSON kept, and its
    /// id when it has one.
    pub fn restored(
        role: Role,
        text: String,
        attachments: Vec<Attachment>,
        raw: serde_json::Value,
        key: Option<String>,
    ) -> Self {
        let status = if role == Role::User { Status::Sent } else { Status::Done };
        let mut message = Message::new(role, text, status, attachments);
        if let Some(key) = key {
            message.key = key;
        }
        message.raw.set_value(Some(raw));
        message
    }

    /// Marks the message failed with `sentence`.
    pub fn fail(&self, sentence: impl Into<String>) {
        self.error.set(Some(sentence.into()));
        self.status.set(Status::Error);
    }

    /// This message as a request turn: text and `file_data` parts only (never previews).
    fn request_content(&self) -> Content {
        let mut parts: Vec<Part> = self
            .attachments
            .iter()
            .filter_map(|a| {
                if a.expired.get_untracked() {
                    return Some(Part::text(EXPIRED_CONTENT));
                }
                let f = a.uploaded.get_untracked()?;
                Some(Part {
                    file_data: Some(FileData { mime_type: f.mime_type, file_uri: f.uri }),
                    ..Part::default()
                })
            })
            .collect();
        let text = self.text.get_untracked();
        if !text.trim().is_empty() {
            parts.push(Part::text(text));
        }
        parts.extend(self.signatures.get_value().into_iter().map(|signature| Part {
            text: Some(String::new()),
            thought_signature: Some(signature),
            ..Part::default()
        }));
        Content { role: self.role, parts }
    }
}

/// A stored conversation as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Last change, ms since the epoch.
    pub updated: f64,
    /// Length of its stored export text (UTF-16 code units, about its bytes).
    pub size: u32,
}

/// How the signed-in person's conversations stand with the server, as the `Sync` status
/// says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStatus {
    /// Everything here is on the server, and the other devices' changes are here.
    Synced,
    /// Changes are going up or coming down.
    Syncing,
    /// The server cannot be reached; changes made here wait and go when it can.
    Offline,
    /// The server refused a change (e.g. the account's storage is full): the sentence says
    /// why; the change is kept here and goes once it can.
    Refused(String),
}

impl SyncStatus {
    /// The status's text.
    pub fn label(&self) -> &'static str {
        match self {
            SyncStatus::Synced => "Synced",
            SyncStatus::Syncing => "Syncing…",
            SyncStatus::Offline => "Offline — changes will sync",
            SyncStatus::Refused(_) => "Not synced",
        }
    }
}

/// Messages shown when a conversation opens (the newest), and how many more each "Show
/// earlier messages" adds: a long conversation is rendered a page at a time.
pub const MESSAGES_SHOWN: usize = 100;

/// The chat: its messages and what the composer shows.
#[derive(Clone, Copy)]
pub struct Chat {
    /// The open conversation's id.
    pub id: RwSignal<String>,
    /// Messages, oldest first.
    pub messages: RwSignal<Vec<Message>>,
    /// Index of the first message rendered: the ones before it wait behind "Show earlier
    /// messages".
    pub first_shown: RwSignal<usize>,
    /// The open conversation's `conversation_summaries`, kept as imported.
    pub summaries: StoredValue<serde_json::Value>,
    /// The open conversation's model id (`None`: the site's default).
    pub model: RwSignal<Option<String>>,
    /// The open conversation's "Cache files" switch.
    pub cache_files: RwSignal<bool>,
    /// What "Cache files" did on the last answer.
    pub cache_state: RwSignal<Option<CacheState>>,
    /// The open conversation's latest summary (Parley's element of `summaries`), shown as a note.
    pub summary: RwSignal<Option<Summary>>,
    /// The open conversation's `uploaded_files` tracking, by File id.
    pub tracked: StoredValue<std::collections::BTreeMap<String, crate::transcript::TrackedFile>>,
    /// Every stored conversation, most recent first.
    pub list: RwSignal<Vec<ConversationSummary>>,
    /// Why the last save, load or import failed, shown until dismissed.
    pub storage_error: RwSignal<Option<String>>,
    /// Files picked (or dropped, or pasted) for the next message.
    pub pending: RwSignal<Vec<PendingAttachment>>,
    /// Why the last files offered were refused (or a budget refused the last message), shown
    /// over the composer until dismissed.
    pub notice: RwSignal<Option<String>>,
    /// Where the notice offers to sign in (a budget refused an anonymous visitor whom an
    /// account would let go on).
    pub sign_in_offer: RwSignal<Option<String>>,
    /// The message box's text.
    pub draft: RwSignal<String>,
    /// What is left of this person's budget, as the server last said (`None`: none applies,
    /// or not known yet).
    pub budget: RwSignal<Option<String>>,
    /// True from Send until the first token (or a failure).
    pub typing: RwSignal<bool>,
    /// True while a turn (uploads + answer) is in flight.
    pub busy: RwSignal<bool>,
    /// True while an answer is awaited or streaming: `Stop` is offered.
    pub answering: RwSignal<bool>,
    /// Stops the answer in flight.
    pub stopper: StoredValue<Option<futures::future::AbortHandle>>,
    /// The server revision the open conversation was last loaded at (0: never synced): a
    /// save sends its changes on that revision, so the server merges what others wrote since.
    pub base: StoredValue<i64>,
    /// Whether conversations can be shared by link (`PARLEY_SHARING` is not `off`).
    pub sharing: RwSignal<bool>,
    /// The signed-in account's id (`None`: signed out — conversations stay in this browser).
    pub account: RwSignal<Option<String>>,
    /// How the account's conversations stand with the server (`None`: signed out).
    pub sync: RwSignal<Option<SyncStatus>>,
    /// How many conversations made signed out this browser holds, offered to the account at
    /// its first sign-in here (0: no offer open).
    pub adopt: RwSignal<usize>,
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl Chat {
    /// An empty chat.
    pub fn new() -> Self {
        Chat {
            id: RwSignal::new(new_conversation_id()),
            messages: RwSignal::new(Vec::new()),
            first_shown: RwSignal::new(0),
            summaries: StoredValue::new(serde_json::Value::Array(Vec::new())),
            model: RwSignal::new(None),
            cache_files: RwSignal::new(false),
            cache_state: RwSignal::new(None),
            summary: RwSignal::new(None),
            tracked: StoredValue::new(Default::default()),
            list: RwSignal::new(Vec::new()),
            storage_error: RwSignal::new(None),
            pending: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            sign_in_offer: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            budget: RwSignal::new(None),
            typing: RwSignal::new(false),
            busy: RwSignal::new(false),
            answering: RwSignal::new(false),
            stopper: StoredValue::new(None),
            base: StoredValue::new(0),
            sharing: RwSignal::new(false),
            account: RwSignal::new(None),
            sync: RwSignal::new(None),
            adopt: RwSignal::new(0),
        }
    }

    /// A budget refused the last message before anything was sent to Gemini: the message
    /// goes back into the composer (its text, and its files as attachments to send), and
    /// `sentence` shows over it — with `Sign in`, linking to `sign_in`, when given.
    pub fn give_back(&self, sentence: String, sign_in: Option<String>) {
        let last = self.messages.with_untracked(|m| m.last().cloned());
        if let Some(message) = last.filter(|m| m.role == Role::User) {
            self.messages.update(|m| {
                m.pop();
            });
            let text = message.text.get_untracked();
            if self.draft.with_untracked(|d| d.trim().is_empty()) {
                self.draft.set(text);
            }
            #[cfg(feature = "hydrate")]
            {
                let files = message.files.iter().cloned();
                let items: Vec<PendingAttachment> = message
                    .attachments
                    .iter()
                    .zip(files)
                    .map(|(a, file)| PendingAttachment {
                        id: next_id(),
                        name: a.name.clone(),
                        mime_type: a.mime_type.clone(),
                        size: a.size,
                        preview: a.preview.clone(),
                        file: send_wrapper::SendWrapper::new(file),
                    })
                    .collect();
                self.pending.update(|p| p.extend(items));
            }
        }
        self.notice.set(Some(sentence));
        self.sign_in_offer.set(sign_in);
    }

    /// Stops the answer in flight, keeping what arrived.
    pub fn stop(&self) {
        if let Some(handle) = self.stopper.get_value() {
            handle.abort();
        }
    }

    /// True when `id` is the last message.
    pub fn is_last(&self, id: u64) -> bool {
        self.messages.with(|m| m.last().map(|x| x.id) == Some(id))
    }

    /// Marks every attachment of File `file_uri` as gone, here and in the tracking that is
    /// saved and exported.
    pub fn mark_expired(&self, file_uri: &str) {
        self.messages.with_untracked(|messages| {
            for attachment in messages.iter().flat_map(|m| m.attachments.iter()) {
                if attachment
                    .uploaded
                    .with_untracked(|u| u.as_ref().is_some_and(|f| f.uri == file_uri))
                {
                    attachment.expired.set(true);
                }
            }
        });
        if let Some(id) = crate::transcript::file_id_of(file_uri) {
            self.tracked.update_value(|tracked| {
                let entry = tracked.entry(id.to_string()).or_insert_with(|| {
                    crate::transcript::TrackedFile {
                        upload_time: crate::transcript::upload_time(now_ms()),
                        file_uri: file_uri.to_string(),
                        extra: Default::default(),
                    }
                });
                entry.extra.insert("expired".into(), serde_json::Value::Bool(true));
            });
        }
    }

    /// Points every attachment of File `old_uri` at `file`, which the server now uses in its
    /// place (uploaded again from the retained original): here, in each message's stored JSON,
    /// and in the tracking that is saved and exported (the old id's entry moves to the new id).
    pub fn replace_file(&self, old_uri: &str, file: &UploadedFile) {
        self.messages.with_untracked(|messages| {
            for message in messages {
                let mut touched = false;
                for attachment in &message.attachments {
                    if attachment
                        .uploaded
                        .with_untracked(|u| u.as_ref().is_some_and(|f| f.uri == old_uri))
                    {
                        attachment.uploaded.set(Some(file.clone()));
                        attachment.expired.set(false);
                        touched = true;
                    }
                }
                if touched {
                    message.raw.update_value(|raw| {
                        if let Some(raw) = raw {
                            crate::transcript::rewrite_file_uri(raw, old_uri, &file.uri);
                        }
                    });
                }
            }
        });
        let (Some(old_id), Some(new_id)) =
            (crate::transcript::file_id_of(old_uri), crate::transcript::file_id_of(&file.uri))
        else {
            return;
        };
        self.tracked.update_value(|tracked| {
            let mut entry =
                tracked.remove(old_id).unwrap_or_else(|| crate::transcript::TrackedFile {
                    upload_time: crate::transcript::upload_time(now_ms()),
                    file_uri: String::new(),
                    extra: Default::default(),
                });
            entry.upload_time = crate::transcript::upload_time(now_ms());
            entry.file_uri = file.uri.clone();
            entry.extra.remove("expired");
            match &file.expiration_time {
                Some(t) => entry
                    .extra
                    .insert("expirationTime".into(), serde_json::Value::String(t.clone())),
                None => entry.extra.remove("expirationTime"),
            };
            tracked.insert(new_id.to_string(), entry);
        });
    }

    /// Removes every message after `id`. A summary of turns that are gone is no longer shown
    /// (it stays in `conversation_summaries`; the server would not use it).
    pub fn truncate_after(&self, id: u64) {
        self.messages.update(|m| {
            if let Some(at) = m.iter().position(|x| x.id == id) {
                m.truncate(at + 1);
            }
        });
        // Counted as a summary counts turns: the turns requests send.
        let left = self.request_contents().len();
        if self.summary.with_untracked(|s| s.as_ref().is_some_and(|s| s.turns >= left)) {
            self.summary.set(None);
        }
    }

    /// The conversation to send: accepted user turns and complete answers.
    pub fn request_contents(&self) -> Vec<Content> {
        self.messages.with_untracked(|messages| {
            messages
                .iter()
                .filter(|m| matches!(m.status.get_untracked(), Status::Sent | Status::Done))
                .map(Message::request_content)
                .filter(Content::is_turn)
                .collect()
        })
    }

    /// What the next `chat` request asks for besides the conversation.
    pub fn options(&self) -> crate::model::ChatOptions {
        crate::model::ChatOptions {
            model: self.model.get_untracked(),
            summary: self.summary.get_untracked(),
            cache_files: self.cache_files.get_untracked(),
        }
    }

    /// Keeps a summary the server made: in `conversation_summaries` (exported) and as the note.
    pub fn add_summary(&self, summary: Summary) {
        self.summaries.update_value(|all| {
            if !all.is_array() {
                *all = serde_json::Value::Array(Vec::new());
            }
            if let (Some(list), Ok(value)) = (all.as_array_mut(), serde_json::to_value(&summary)) {
                list.push(value);
            }
        });
        self.summary.set(Some(summary));
    }

    /// Tokens of the conversation's answers so far: (prompt, answer, cached) summed.
    pub fn total_usage(&self) -> Option<Usage> {
        self.messages.with(|messages| {
            let mut total: Option<Usage> = None;
            for usage in messages.iter().filter_map(|m| m.usage.get()) {
                let sum = total.get_or_insert_with(Usage::default);
                sum.prompt_token_count += usage.prompt_token_count;
                sum.candidates_token_count += usage.candidates_token_count;
                sum.cached_content_token_count += usage.cached_content_token_count;
                sum.thoughts_token_count += usage.thoughts_token_count;
                sum.total_token_count += usage.total_token_count;
            }
            total
        })
    }

    /// Appends a message.
    pub fn push(&self, message: Message) {
        self.messages.update(|m| m.push(message));
    }

    /// Removes the message `id`.
    pub fn remove(&self, id: u64) {
        self.messages.update(|m| m.retain(|x| x.id != id));
    }
}
