//! Code blocks in answers coloured by highlight.js (`public/vendor/highlight/`), loaded the
//! first time an answer holds a code block. highlight.js reads each block's text and writes
//! escaped spans, so it adds no markup from the answer itself.

use std::cell::RefCell;

use wasm_bindgen::{closure::Closure, JsCast, JsValue};

const SCRIPT: &str = "/vendor/highlight/highlight.min.js";

thread_local! {
    /// Blocks waiting for the script, `None` once it has loaded (or failed).
    static WAITING: RefCell<Option<Vec<web_sys::Element>>> = const { RefCell::new(Some(Vec::new())) };
    static REQUESTED: RefCell<bool> = const { RefCell::new(false) };
}

/// Highlights the `pre code` blocks under `root` (now, or once the script has loaded).
pub fn highlight_within(root: &web_sys::Element) {
    let Ok(blocks) = root.query_selector_all("pre code") else { return };
    if blocks.length() == 0 {
        return;
    }
    if let Some(hljs) = hljs() {
        apply(&hljs, root);
        return;
    }
    WAITING.with(|w| {
        if let Some(list) = w.borrow_mut().as_mut() {
            list.push(root.clone());
        }
    });
    load();
}

fn hljs() -> Option<JsValue> {
    let window = web_sys::window()?;
    js_sys::Reflect::get(&window, &JsValue::from_str("hljs")).ok().filter(JsValue::is_object)
}

fn apply(hljs: &JsValue, root: &web_sys::Element) {
    let Ok(function) = js_sys::Reflect::get(hljs, &JsValue::from_str("highlightElement")) else {
        return;
    };
    let Some(function) = function.dyn_ref::<js_sys::Function>() else { return };
    let Ok(blocks) = root.query_selector_all("pre code:not([data-highlighted])") else { return };
    for i in 0..blocks.length() {
        if let Some(block) = blocks.item(i) {
            let _ = function.call1(hljs, &block);
        }
    }
}

fn load() {
    if REQUESTED.with(|r| r.replace(true)) {
        return;
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(script) = document.create_element("script") else { return };
    let _ = script.set_attribute("src", SCRIPT);
    let _ = script.set_attribute("async", "");
    let done = Closure::once_into_js(move || {
        let waiting = WAITING.with(|w| w.borrow_mut().take()).unwrap_or_default();
        if let Some(hljs) = hljs() {
            for root in waiting {
                apply(&hljs, &root);
            }
        }
    });
    let _ = script.add_event_listener_with_callback("load", done.unchecked_ref());
    if let Some(head) = document.head() {
        let _ = head.append_child(&script);
    }
}
