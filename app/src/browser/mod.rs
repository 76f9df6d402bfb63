//! Web APIs only (feature `hydrate`), knowing nothing of the page's state: JPEG previews,
//! IndexedDB, uploads with progress (XHR), SHA-256 in a worker, random ids (Web Crypto),
//! DOMPurify, highlight.js, the theme setting, this browser's name, settings and connectivity.

pub mod device;
pub mod digest;
pub mod highlight;
pub mod preview;
pub mod random;
pub mod sanitize;
pub mod store;
pub mod theme;
pub mod xhr;

/// Sets `data-hydrated="true"` on `<html>`: the page now reacts to input.
pub fn mark_hydrated() {
    if let Some(root) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
