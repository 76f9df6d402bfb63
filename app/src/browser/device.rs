//! This browser as a device: its name (for a conflict's copy), small settings kept in
//! `localStorage`, a timer, and whether the connection came back.

use wasm_bindgen::{closure::Closure, JsCast};

/// A short name for this browser, e.g. `Chrome on Linux` (from the user agent; a label for
/// people, never trusted).
pub fn name() -> String {
    let agent = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    let browser =
        [("Firefox/", "Firefox"), ("Edg/", "Edge"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
            .into_iter()
            .find(|(mark, _)| agent.contains(mark))
            .map_or("Browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(mark, _)| agent.contains(mark))
    .map_or("this device", |(_, name)| name);
    format!("{browser} on {system}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The `localStorage` item `key`, if set (and storage is allowed).
pub fn setting(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Sets the `localStorage` item `key` (nothing when storage is not allowed).
pub fn set_setting(key: &str, value: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(key, value);
    }
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Calls `then` each time the browser goes back online, for the page's lifetime.
pub fn on_online(then: impl Fn() + 'static) {
    let Some(window) = web_sys::window() else { return };
    let listener = Closure::<dyn Fn()>::new(then);
    let _ = window.add_event_listener_with_callback("online", listener.as_ref().unchecked_ref());
    listener.forget();
}
