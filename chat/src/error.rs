//! [`ChatError`]: why a chat turn (or a call of the engine) failed, for the caller to map to its
//! own answers (the `app` crate turns it into the sentences the page shows).

use parley_files::FilesError;
use parley_store::StoreError;

/// Why a step of the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The request is not one the engine takes as it is (an empty conversation, more Files than
    /// one request may name, a model not offered, a turn past the model's input limit); the text
    /// says what to change.
    #[error("{0}")]
    BadRequest(String),
    /// No slot towards Gemini came free in time.
    #[error("the server is busy right now")]
    Busy,
    /// Gemini refused or failed. `file` names the person's file concerned, when there is one.
    #[error("{source}")]
    Gemini {
        /// What Gemini (or the way to it) said.
        source: gemini::Error,
        /// The display name of the file concerned.
        file: Option<String>,
    },
    /// Gemini refused a File again after the Files it named were taken out, or named one the
    /// conversation does not hold: the real cause (billing and key problems give the same 403
    /// text), to be reported in Gemini's own words.
    #[error("{0}")]
    RefusedAfterRetry(gemini::Error),
    /// A step of a File's life failed (a re-upload, the originals).
    #[error(transparent)]
    Files(#[from] FilesError),
    /// A budget on the site's key has no room for the call (see [`crate::budget`]).
    #[error("{0}")]
    BudgetSpent(crate::budget::Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the request names is not the principal's (or does not exist): the same answer
    /// either way.
    #[error("{0} was not found")]
    NotFound(String),
    /// What the request names existed but is no more (a shared link revoked or expired): the
    /// sentence says so.
    #[error("{0}")]
    Gone(String),
    /// The account's conversations would take more than its storage (`PARLEY_STORAGE_PER_ACCOUNT`).
    #[error("the account's storage of {quota} bytes is full")]
    StorageFull {
        /// The account's storage, bytes.
        quota: u64,
    },
    /// The server failed on its side (a lost task).
    #[error("the server could not {0}")]
    Internal(String),
}

impl From<gemini::Error> for ChatError {
    fn from(source: gemini::Error) -> Self {
        ChatError::Gemini { source, file: None }
    }
}

/// Logs a failure of Gemini the engine works around (or reports), once, without secrets (the
/// Gemini client never puts a key in an error), and counts it in
/// `parley_upstream_errors_total` by kind: `429`, `5xx`, `403_file` (a File Gemini no longer
/// gives access to), `transport` (unreachable, dropped, timed out) or `other`.
pub fn note_upstream_error(err: &gemini::Error) {
    tracing::warn!(error = %err, "gemini call failed");
    count_upstream_error(err);
}

/// Counts a failure of Gemini in `parley_upstream_errors_total` (see [`note_upstream_error`]),
/// without logging it.
pub fn count_upstream_error(err: &gemini::Error) {
    let kind = match err {
        _ if err.inaccessible_file_id().is_some() => "403_file",
        gemini::Error::Api { code: 429, .. } => "429",
        gemini::Error::Api { code: 500..=599, .. } => "5xx",
        gemini::Error::Transport(_) => "transport",
        _ => "other",
    };
    metrics::counter!("parley_upstream_errors_total", "kind" => kind).increment(1);
}
