//! Turning picked files into pending attachments, each image with its preview.

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use web_sys::HtmlInputElement;

use crate::ui::state::{next_id, PendingAttachment};

/// Adds the files of a file input's `change` event, then clears the input so that the same
/// file can be picked again.
pub fn from_input(ev: &web_sys::Event, pending: RwSignal<Vec<PendingAttachment>>) {
    let input: HtmlInputElement = event_target(ev);
    if let Some(list) = input.files() {
        let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.item(i)).collect();
        add(files, pending);
    }
    input.set_value("");
}

/// Adds `files` as pending attachments and starts making image previews.
pub fn add(files: Vec<web_sys::File>, pending: RwSignal<Vec<PendingAttachment>>) {
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
