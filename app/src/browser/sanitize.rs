//! The last step before an answer's HTML reaches the page: DOMPurify
//! (`public/vendor/dompurify/`, loaded by the shell before the wasm), which parses with the
//! browser's own parser and keeps only harmless HTML. Without DOMPurify nothing is rendered as
//! HTML: the answer is shown as text.

use wasm_bindgen::{JsCast, JsValue};

/// DOMPurify's settings: HTML only (no SVG or MathML), links may keep `target`.
const CONFIG: &str = r#"{"USE_PROFILES": {"html": true}, "ADD_ATTR": ["target"], "FORBID_TAGS": ["style", "form", "img"]}"#;

/// `html` cleaned by DOMPurify, or the escaped `fallback_text` when DOMPurify is missing.
pub fn clean(html: &str, fallback_text: &str) -> String {
    purify(html).unwrap_or_else(|| format!("<p>{}</p>", crate::markdown::escape(fallback_text)))
}

fn purify(html: &str) -> Option<String> {
    let window = web_sys::window()?;
    let purifier = js_sys::Reflect::get(&window, &JsValue::from_str("DOMPurify"))
        .ok()
        .filter(|p| !p.is_undefined())?;
    let sanitize = js_sys::Reflect::get(&purifier, &JsValue::from_str("sanitize")).ok()?;
    let sanitize = sanitize.dyn_ref::<js_sys::Function>()?;
    let config = js_sys::JSON::parse(CONFIG).ok()?;
    sanitize.call2(&purifier, &JsValue::from_str(html), &config).ok()?.as_string()
}
