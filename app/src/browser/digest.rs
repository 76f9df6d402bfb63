//! The SHA-256 of a file, computed off the main thread by `/hash-worker.js` (a dedicated
//! Worker: Web Crypto for files up to 64 MiB, a streamed hash-wasm SHA-256 above), so that the
//! page can ask the server whether the content is already uploaded before sending it. It
//! starts when the file is attached ([`start`], beside its preview) and is awaited when it is
//! sent ([`sha256`]); each file object is hashed once.

use futures::channel::oneshot;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker};

/// Where the worker script is served (from `public/`).
const WORKER: &str = "/hash-worker.js";

thread_local! {
    /// The hash under way or done for each file object (a `Promise` of the hex digest).
    static STARTED: js_sys::WeakMap = js_sys::WeakMap::new();
}

/// Starts hashing `file` unless it is already under way or done; its `Promise`.
pub fn start(file: &web_sys::File) -> js_sys::Promise {
    STARTED.with(|started| {
        if let Ok(promise) = started.get(file).dyn_into::<js_sys::Promise>() {
            return promise;
        }
        let owned = file.clone();
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            compute(&owned).await.map(JsValue::from).map_err(JsValue::from)
        });
        started.set(file, &promise);
        promise
    })
}

/// Lowercase hex SHA-256 of `file`'s bytes (from the hash [`start`] began, or a new one).
///
/// # Errors
/// A readable sentence when no worker can start or the file cannot be read.
pub async fn sha256(file: &web_sys::File) -> Result<String, String> {
    let hex = JsFuture::from(start(file)).await.map_err(|e| describe(&e))?;
    hex.as_string().ok_or_else(|| "the hash worker gave no digest".into())
}

async fn compute(file: &web_sys::File) -> Result<String, String> {
    let worker = Worker::new(WORKER).map_err(|e| describe(&e))?;
    let (done, answer) = oneshot::channel::<Result<String, String>>();
    let done = std::cell::RefCell::new(Some(done));
    let settle = std::rc::Rc::new(move |outcome: Result<String, String>| {
        if let Some(tx) = done.borrow_mut().take() {
            let _ = tx.send(outcome);
        }
    });
    let on_message = {
        let settle = settle.clone();
        Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            let field = |name: &str| {
                js_sys::Reflect::get(&data, &JsValue::from_str(name))
                    .ok()
                    .and_then(|v| v.as_string())
            };
            settle(match (field("sha256"), field("error")) {
                (Some(sha256), _) => Ok(sha256),
                (None, error) => Err(error.unwrap_or_else(|| "the hash worker failed".into())),
            });
        })
    };
    let on_error = Closure::<dyn Fn()>::new(move || settle(Err("the hash worker failed".into())));
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let outcome = match worker.post_message(file) {
        Ok(()) => answer.await.unwrap_or_else(|_| Err("the hash worker stopped".into())),
        Err(e) => Err(describe(&e)),
    };
    worker.terminate();
    // The closures must live until the worker has answered.
    drop((on_message, on_error));
    outcome
}

fn describe(e: &JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
