//! Browser-only code (feature `hydrate`): reading picked files, JPEG previews, and running a
//! chat turn against the server functions.

pub mod attach;
pub mod highlight;
pub mod history;
mod preview;
mod store;
pub mod sanitize;
pub mod theme;
pub mod turn;
mod xhr;

/// Sets `data-hydrated="true"` on `<html>`: the page now reacts to input.
pub fn mark_hydrated() {
    if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
