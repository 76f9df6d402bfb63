//! What `parley`'s middleware tells the server functions about a request, through its
//! extensions: the [`Principal`] it acts for, the [`ClientAddress`], the [`UploadAllowance`] that
//! counts upload bytes against the quotas, the [`ChatAllowance`] that counts a dear model's
//! extra weight against the chat rate limits, and the [`UploadBody`] watched by the body guard.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

use leptos::prelude::use_context;
use parley_store::{ClientAddress, Principal};

use crate::error::AppError;

/// Counts the bytes an upload actually delivers against the upload-bytes quotas (per session
/// and per address), as they arrive: a body without `Content-Length` is counted as well as one
/// with it.
pub trait ByteQuota: Send + Sync {
    /// Takes `bytes` more from the quotas (asynchronous: with several replicas the quotas are
    /// kept in their shared database).
    ///
    /// # Errors
    /// [`AppError::TooManyRequests`] (with the wait) when a quota has no room for them.
    fn take(&self, bytes: u64) -> futures::future::BoxFuture<'_, Result<(), AppError>>;
}

/// The upload-bytes quotas of the current request (see [`ByteQuota`]); absent when no quota
/// is configured.
#[derive(Clone)]
pub struct UploadAllowance(pub Arc<dyn ByteQuota>);

impl std::fmt::Debug for UploadAllowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadAllowance")
    }
}

/// Takes more requests from the chat rate limits (per session and per address) of the current
/// request: a chat with a model of weight N (`PARLEY_MODELS`, `gemini-2.5-pro*4`) counts as N
/// requests, of which `parley`'s rate limiter took the first before the body was read.
pub trait RequestQuota: Send + Sync {
    /// Takes `requests` more (asynchronous: with several replicas the limits are kept in their
    /// shared database).
    ///
    /// # Errors
    /// [`AppError::TooManyRequests`] (with the wait) when a limit has no room for them; nothing
    /// is taken then.
    fn take(&self, requests: u32) -> futures::future::BoxFuture<'_, Result<(), AppError>>;
}

/// The chat rate limits of the current request (see [`RequestQuota`]); set on every `chat`.
#[derive(Clone)]
pub struct ChatAllowance(pub Arc<dyn RequestQuota>);

impl std::fmt::Debug for ChatAllowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatAllowance")
    }
}

/// Shared between `parley`'s body guard and `upload_file`. The server function marks when the
/// `file` field of the multipart body is reached: until then only a few KiB may arrive (the
/// guard holds the body back, then cuts it), so that no text field, part header or preamble
/// can grow in memory. The guard records why it cut a body (too much before `file`, too slow),
/// so that the server function can say so instead of "the body failed".
#[derive(Debug, Clone, Default)]
pub struct UploadBody(Arc<UploadBodyState>);

#[derive(Debug, Default)]
struct UploadBodyState {
    file_reached: AtomicBool,
    reached: tokio::sync::Notify,
    cut: Mutex<Option<AppError>>,
}

impl UploadBody {
    /// Marks the `file` field as reached: its bytes stream from here.
    pub fn file_reached(&self) {
        self.0.file_reached.store(true, Ordering::Release);
        self.0.reached.notify_waiters();
    }

    /// True once [`UploadBody::file_reached`] was called.
    pub fn is_file_reached(&self) -> bool {
        self.0.file_reached.load(Ordering::Acquire)
    }

    /// Resolves once [`UploadBody::file_reached`] is called (at once if it was).
    pub async fn wait_file_reached(&self) {
        let reached = self.0.reached.notified();
        if self.is_file_reached() {
            return;
        }
        reached.await;
    }

    /// Records why the guard cut the body.
    pub fn cut(&self, reason: AppError) {
        *self.0.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
    }

    /// Why the guard cut the body, if it did.
    pub fn cut_reason(&self) -> Option<AppError> {
        self.0.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// An extension of the current request, if present.
fn extension<T: Clone + Send + Sync + 'static>() -> Option<T> {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<T>().cloned())
}

/// Who the current request acts for: `parley`'s session middleware puts a [`Principal`] in
/// every request's extensions (from the signed session cookie).
///
/// # Errors
/// [`AppError::Internal`] when the request has none (the middleware is missing).
pub fn principal() -> Result<Principal, AppError> {
    extension::<Principal>()
        .ok_or_else(|| AppError::Internal("the request has no browser session".into()))
}

/// What `parley` put in the request about signing in (the providers, who is signed in); the
/// default — nothing offered, nobody signed in — outside its middleware.
pub fn sign_in_view() -> crate::account::SignInView {
    let mut view = extension::<crate::account::SignInView>().unwrap_or_default();
    let query =
        use_context::<http::request::Parts>().and_then(|p| p.uri.query().map(str::to_string));
    view.failure =
        query.as_deref().and_then(crate::account::SignInFailure::in_query).map(|f| f.to_string());
    view
}

/// The current request's client address (`unknown` outside `parley`'s middleware).
pub fn client_address() -> ClientAddress {
    extension::<ClientAddress>().unwrap_or_else(|| ClientAddress("unknown".into()))
}

/// The current request's upload-bytes quotas, when any is configured.
pub fn upload_allowance() -> Option<UploadAllowance> {
    extension::<UploadAllowance>()
}

/// The current chat's [`ChatAllowance`], when `parley`'s rate limiter set one.
pub fn chat_allowance() -> Option<ChatAllowance> {
    extension::<ChatAllowance>()
}

/// The current upload's [`UploadBody`], when `parley`'s body guard set one.
pub fn upload_body() -> Option<UploadBody> {
    extension::<UploadBody>()
}
