//! The light/dark theme: the system's by default, or the person's explicit choice, kept in
//! `localStorage["parley-theme"]` and applied as `data-theme` on `<html>` (the stylesheet
//! follows `prefers-color-scheme` unless that attribute says otherwise).

const KEY: &str = "parley-theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn root() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.document_element()
}

/// Applies the stored choice, if any; returns whether the page is now dark.
pub fn restore() -> bool {
    let stored = storage().and_then(|s| s.get_item(KEY).ok().flatten());
    match stored.as_deref() {
        Some(theme @ ("dark" | "light")) => {
            if let Some(root) = root() {
                let _ = root.set_attribute("data-theme", theme);
            }
            theme == "dark"
        }
        _ => system_is_dark(),
    }
}

/// Chooses dark (`true`) or light explicitly, and remembers it.
pub fn choose(dark: bool) {
    let theme = if dark { "dark" } else { "light" };
    if let Some(root) = root() {
        let _ = root.set_attribute("data-theme", theme);
    }
    if let Some(storage) = storage() {
        // A full or blocked storage only means the choice is not remembered.
        let _ = storage.set_item(KEY, theme);
    }
}

fn system_is_dark() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
        .is_some_and(|m| m.matches())
}
