//! Turning picked files into pending attachments, each image with its preview.

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use crate::ui::state::{next_id, PendingAttachment};

/// Adds the files of a file input's `change` event, then clears the input so that the same
/// file can be picked again.
pub fn from_input(ev: &web_sys::Event, pending: RwSignal<Vec<PendingAttachment>>) {
    take_files(&event_target(ev), pending);
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
    let find = |selector: &str| document.as_ref().and_then(|d| d.query_selector(selector).ok().flatten());
    let draft = find(r#"textarea[aria-label="Message"]"#)
        .and_then(|e| e.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
        .map(|t| t.value())
        .unwrap_or_default();
    let input = find(r#"input[type="file"][aria-label="Attach files"]"#).and_then(|e| e.dyn_into::<HtmlInputElement>().ok());
    let files = input.as_ref().map(files_of).unwrap_or_default();
    EarlyInput { draft, files, input }
}

impl EarlyInput {
    /// Puts the early draft and files into the composer's state, once.
    pub fn apply(&self, draft: RwSignal<String>, pending: RwSignal<Vec<PendingAttachment>>) {
        if !self.draft.is_empty() && draft.get_untracked().is_empty() {
            draft.set(self.draft.clone());
        }
        if !self.files.is_empty() {
            add(self.files.clone(), pending);
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

/// Adds the files of `input` and clears it.
fn take_files(input: &HtmlInputElement, pending: RwSignal<Vec<PendingAttachment>>) {
    add(files_of(input), pending);
    input.set_value("");
}

/// Adds `files` as pending attachments and starts making image previews.
fn add(files: Vec<web_sys::File>, pending: RwSignal<Vec<PendingAttachment>>) {
    for file in files {
        let mime_type = file.type_();
        let item = PendingAttachment {
            id: next_id(),
            name: file.name(),
            mime_type: mime_type.clone(),
            size: file.size() as u64,
            preview: ArcRwSignal::new(None),
            file: SendWrapper::new(file.clone()),
        };
        if super::preview::can_preview(&mime_type) {
            let slot = item.preview.clone();
            leptos::task::spawn_local(async move {
                match super::preview::jpeg_preview(&file).await {
                    Ok(url) => slot.set(Some(url)),
                    // Undecodable images (HEIC in Chromium, say) keep their file chip.
                    Err(e) => leptos::logging::warn!("no preview for {}: {e}", file.name()),
                }
            });
        }
        pending.update(|p| p.push(item));
    }
}
