//! [`FilesError`]: what can go wrong in a File's life, for the caller to map to its own
//! answers (the `app` crate turns it into sentences for the page).

use parley_store::StoreError;

use crate::originals::OriginalsError;

/// Why a step of a File's life failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The store failed (disk full, locked, corrupt, unreachable, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store of originals failed, or an upload's body did (see [`OriginalsError`]).
    #[error(transparent)]
    Originals(#[from] OriginalsError),
    /// Gemini refused or failed (upload, `ACTIVE` wait, delete). `file` names the person's
    /// file concerned, when there is one.
    #[error("{source}")]
    Gemini {
        /// What Gemini (or the way to it) said.
        source: gemini::Error,
        /// The display name of the file concerned.
        file: Option<String>,
    },
    /// A File could not be recorded after it reached `ACTIVE` (it was deleted upstream again,
    /// so nothing is left half-done).
    #[error("the File {name} could not be recorded: {source}")]
    NotRecorded {
        /// Gemini's resource name of the File, `files/{id}`.
        name: String,
        /// Why.
        source: StoreError,
    },
}

impl FilesError {
    /// A Gemini failure about the person's file `file`.
    pub fn gemini(source: gemini::Error, file: Option<&str>) -> Self {
        FilesError::Gemini { source, file: file.map(str::to_string) }
    }
}
