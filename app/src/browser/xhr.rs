//! The upload request with progress. `fetch` cannot report how much of a request body has
//! gone, so the `upload_file` server function is called with `XMLHttpRequest`, whose
//! `upload.onprogress` can — the same endpoint, body and answer as
//! [`crate::api::upload_file`].

use futures::channel::oneshot;
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{FormData, ProgressEvent, XmlHttpRequest};

use crate::{error::AppError, model::UploadedFile};

/// The `upload_file` endpoint (see [`crate::api::upload_file`]).
const ENDPOINT: &str = <crate::api::UploadFile as leptos::server_fn::ServerFn>::PATH;

/// Posts `form` to `upload_file`, calling `on_progress` with the share of bytes sent
/// (0.0–1.0) as they go, and returns the server's answer.
///
/// # Errors
/// The server function's [`AppError`] (its JSON body), or [`AppError::Transport`] when the
/// request itself fails.
pub async fn upload(
    form: &FormData,
    on_progress: impl Fn(f64) + 'static,
) -> Result<UploadedFile, AppError> {
    let transport = |what: &str| AppError::Transport(what.to_string());
    let xhr = XmlHttpRequest::new().map_err(|_| transport("XMLHttpRequest is unavailable"))?;
    xhr.open("POST", ENDPOINT).map_err(|_| transport("the upload could not start"))?;
    // Without it, server functions answer a plain form post with a redirect.
    let _ = xhr.set_request_header("Accept", "application/json");
    let progress = Closure::<dyn Fn(ProgressEvent)>::new(move |ev: ProgressEvent| {
        if ev.length_computable() && ev.total() > 0.0 {
            on_progress((ev.loaded() / ev.total()).clamp(0.0, 1.0));
        }
    });
    if let Ok(target) = xhr.upload() {
        target.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    let (done, finished) = oneshot::channel::<bool>();
    let done = std::cell::RefCell::new(Some(done));
    let settle = std::rc::Rc::new(move |ok: bool| {
        if let Some(tx) = done.borrow_mut().take() {
            let _ = tx.send(ok);
        }
    });
    let on_load = {
        let settle = settle.clone();
        Closure::<dyn Fn()>::new(move || settle(true))
    };
    let on_error = Closure::<dyn Fn()>::new(move || settle(false));
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(on_error.as_ref().unchecked_ref()));
    xhr.send_with_opt_form_data(Some(form))
        .map_err(|_| transport("the upload could not be sent"))?;
    let loaded = finished.await.unwrap_or(false);
    // The closures must live until the request is over.
    drop((progress, on_load, on_error));
    if !loaded {
        return Err(transport("the connection to the server failed"));
    }
    let status = xhr.status().unwrap_or(0);
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    if (200..300).contains(&status) {
        serde_json::from_str(&body).map_err(|e| transport(&format!("unreadable answer: {e}")))
    } else {
        Err(serde_json::from_str::<AppError>(&body)
            .unwrap_or_else(|_| AppError::Transport(format!("the server answered {status}"))))
    }
}
