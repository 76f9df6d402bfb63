//! Turning picked, dropped and pasted files into pending attachments, each image with its
//! preview. Files Gemini does not take, and files beyond [`MAX_ATTACHMENTS`], are refused
//! here with a notice, before any byte is sent.

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use crate::{
    client::state::{next_id, Chat, PendingAttachment},
    model::{accepted_mime, MAX_ATTACHMENTS},
};

/// Adds the files of a file input's `change` event, then clears the input so that the same
/// file can be picked again.
pub fn from_input(ev: &web_sys::Event, chat: Chat) {
    let input: HtmlInputElement = event_target(ev);
    add(files_of(&input), chat);
    input.set_value("");
}

/// Adds the files dropped on the chat.
pub fn from_drop(ev: &web_sys::DragEvent, chat: Chat) {
    ev.prevent_default();
    if let Some(list) = ev.data_transfer().and_then(|d| d.files()) {
        add((0..list.length()).filter_map(|i| list.item(i)).collect(), chat);
    }
}

/// Adds the files pasted into the message box (a screenshot, say); text pastes as usual.
pub fn from_paste(ev: &web_sys::ClipboardEvent, chat: Chat) {
    let files: Vec<web_sys::File> = ev
        .clipboard_data()
        .and_then(|d| d.files())
        .map(|list| (0..list.length()).filter_map(|i| list.item(i)).collect())
        .unwrap_or_default();
    if !files.is_empty() {
        ev.prevent_default();
        add(files, chat);
    }
}

/// What the person typed or picked in the server-rendered page before hydration (the
/// `input` and `change` events of that moment had no listener yet).
pub struct EarlyInput {
    draft: String,
    files: Vec<web_sys::File>,
    input: Option<HtmlInputElement>,
}

/// Reads the message box and the file input as they are now.
pub fn pre_hydration_input() -> EarlyInput {
    let document = web_sys::window().and_then(|w| w.document());
    let find =
        |selector: &str| document.as_ref().and_then(|d| d.query_selector(selector).ok().flatten());
    let draft = find(r#"textarea[aria-label="Message"]"#)
        .and_then(|e| e.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
        .map(|t| t.value())
        .unwrap_or_default();
    let input = find(r#"input[type="file"][aria-label="Attach files"]"#)
        .and_then(|e| e.dyn_into::<HtmlInputElement>().ok());
    let files = input.as_ref().map(files_of).unwrap_or_default();
    EarlyInput { draft, files, input }
}

impl EarlyInput {
    /// Puts the early draft and files into the composer's state, once.
    pub fn apply(&self, draft: RwSignal<String>, chat: Chat) {
        if !self.draft.is_empty() && draft.get_untracked().is_empty() {
            draft.set(self.draft.clone());
        }
        if !self.files.is_empty() {
            add(self.files.clone(), chat);
        }
        if let Some(input) = &self.input {
            input.set_value("");
        }
    }
}

fn files_of(input: &HtmlInputElement) -> Vec<web_sys::File> {
    input
        .files()
        .map(|list| (0..list.length()).filter_map(|i| list.item(i)).collect())
        .unwrap_or_default()
}

/// Adds `files` as pending attachments and starts making image previews; refuses, with one
/// notice, the types Gemini does not take and anything past [`MAX_ATTACHMENTS`].
fn add(files: Vec<web_sys::File>, chat: Chat) {
    let mut refused = Vec::new();
    let mut over_limit = 0;
    for file in files {
        let Some(mime_type) = accepted_mime(&file.name(), &file.type_()) else {
            refused.push(file.name());
            continue;
        };
        if chat.pending.with_untracked(Vec::len) >= MAX_ATTACHMENTS {
            over_limit += 1;
            continue;
        }
        let item = PendingAttachment {
            id: next_id(),
            name: file.name(),
            mime_type: mime_type.clone(),
            size: file.size() as u64,
            preview: ArcRwSignal::new(None),
            file: SendWrapper::new(file.clone()),
        };
        // Its SHA-256, for asking the server before sending (`find_upload`), beside the preview.
        let _started = crate::browser::digest::start(&file);
        if crate::browser::preview::can_preview(&mime_type) {
            let slot = item.preview.clone();
            leptos::task::spawn_local(async move {
                match crate::browser::preview::jpeg_preview(&file).await {
                    Ok(url) => slot.set(Some(url)),
                    // Undecodable images (HEIC in Chromium, say) keep their file chip.
                    Err(e) => leptos::logging::warn!("no preview for {}: {e}", file.name()),
                }
            });
        }
        chat.pending.update(|p| p.push(item));
    }
    let mut sentences = Vec::new();
    if !refused.is_empty() {
        let names = refused.iter().map(|n| format!("“{n}”")).collect::<Vec<_>>().join(", ");
        sentences.push(format!(
            "{names} can't be sent: Gemini takes images, PDFs, audio, video and text files only."
        ));
    }
    if over_limit > 0 {
        sentences.push(format!(
            "A message can carry at most {MAX_ATTACHMENTS} files; {over_limit} more were left out."
        ));
    }
    chat.notice.set((!sentences.is_empty()).then(|| sentences.join(" ")));
}
