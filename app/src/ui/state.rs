//! The page's client-side state: messages, pending attachments, and the turn in flight.
//!
//! Per-message fields are `ArcRwSignal`s so that a streaming answer updates one bubble
//! without re-rendering the list.

use std::sync::atomic::{AtomicU64, Ordering};

use leptos::prelude::*;

use crate::model::{Content, FileData, Part, Role, UploadedFile};

/// A message's lifecycle, shown as `data-status` (see `shared/ui-contract.md`).
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
}

/// One bubble.
#[derive(Clone)]
pub struct Message {
    /// Unique within the page.
    pub id: u64,
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
    /// The browser files behind `attachments`, kept for Retry.
    #[cfg(feature = "hydrate")]
    pub files: send_wrapper::SendWrapper<std::rc::Rc<Vec<web_sys::File>>>,
}

/// A new page-unique id.
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Message {
    /// A model bubble that starts streaming.
    pub fn model() -> Self {
        Message {
            id: next_id(),
            role: Role::Model,
            text: ArcRwSignal::new(String::new()),
            status: ArcRwSignal::new(Status::Streaming),
            attachments: Vec::new(),
            error: ArcRwSignal::new(None),
            #[cfg(feature = "hydrate")]
            files: send_wrapper::SendWrapper::new(std::rc::Rc::new(Vec::new())),
        }
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
            .filter_map(|a| a.uploaded.get_untracked())
            .map(|f| Part {
                file_data: Some(FileData { mime_type: f.mime_type, file_uri: f.uri }),
                ..Part::default()
            })
            .collect();
        let text = self.text.get_untracked();
        if !text.trim().is_empty() {
            parts.push(Part::text(text));
        }
        Content { role: self.role, parts }
    }
}

/// The chat: its messages and what the composer shows.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Messages, oldest first.
    pub messages: RwSignal<Vec<Message>>,
    /// True from Send until the first token (or a failure).
    pub typing: RwSignal<bool>,
    /// True while a turn (uploads + answer) is in flight.
    pub busy: RwSignal<bool>,
}

impl Chat {
    /// An empty chat.
    pub fn new() -> Self {
        Chat { messages: RwSignal::new(Vec::new()), typing: RwSignal::new(false), busy: RwSignal::new(false) }
    }

    /// The conversation to send: accepted user turns and complete answers.
    pub fn request_contents(&self) -> Vec<Content> {
        self.messages.with_untracked(|messages| {
            messages
                .iter()
                .filter(|m| matches!(m.status.get_untracked(), Status::Sent | Status::Done))
                .map(Message::request_content)
                .filter(|c| !c.parts.is_empty())
                .collect()
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
