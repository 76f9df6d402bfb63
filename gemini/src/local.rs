//! Uploading a local file and waiting for it: pollux's `upload_and_wait_active`
//! (`docs/behaviour.md`), with its parameters, defaults and errors.

use std::path::Path;

use crate::{
    client::Client,
    error::{Error, Result},
    poll::PollPolicy,
    types::{File, FileState},
    upload::{FileSource, UploadRequest},
};

/// Gemini's per-file limit, 2 GB, as 2 GiB = 2 147 483 648 bytes
/// (<https://ai.google.dev/gemini-api/docs/files>; `docs/gemini-protocol.md`).
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How to upload a local file.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Shown in `files.list`; defaults to the file name.
    pub display_name: Option<String>,
    /// MIME type; guessed from the extension when `None` (`application/octet-stream` when
    /// unknown, which Gemini refuses).
    pub mime_type: Option<String>,
    /// How to wait for `ACTIVE`.
    pub poll: PollPolicy,
    /// Largest file accepted, bytes ([`MAX_FILE_BYTES`]); larger ones fail before any network
    /// call (`over-2-gib-refused`).
    pub max_bytes: u64,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            display_name: None,
            mime_type: None,
            poll: PollPolicy::default(),
            max_bytes: MAX_FILE_BYTES,
        }
    }
}

/// An uploaded File that is `ACTIVE`: pollux's `UploadResult` (`id`, `uri`, `state`) plus
/// the whole resource.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadResult {
    /// The bare id, `abc123` of `files/abc123`.
    pub id: String,
    /// The URI for `fileData.fileUri`.
    pub uri: String,
    /// Always [`FileState::Active`].
    pub state: FileState,
    /// The File as last read.
    pub file: File,
}

impl Client {
    /// Uploads the file at `path` (each chunk streamed from disk: [`Client::upload_from`]) and
    /// waits until it is `ACTIVE`.
    ///
    /// # Errors
    /// Before any network call: [`Error::FileNotFound`] for a missing path (or a directory),
    /// [`Error::TooLarge`] over `options.max_bytes`. Then the errors of
    /// [`Client::upload_from`] and [`Client::wait_active`]: [`Error::NotActiveInTime`] on
    /// timeout, [`Error::UploadFailed`] (state and details) on `FAILED`, each after one
    /// DELETE when `options.poll.cleanup_on_timeout`.
    pub async fn upload_and_wait_active(
        &self,
        path: impl AsRef<Path>,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        let path = path.as_ref();
        let not_found = || Error::FileNotFound { path: path.to_path_buf() };
        let meta = tokio::fs::metadata(path).await.map_err(|_| not_found())?;
        if !meta.is_file() {
            return Err(not_found());
        }
        if meta.len() > options.max_bytes {
            return Err(Error::TooLarge { size: meta.len(), limit: options.max_bytes });
        }
        let mime_type = options.mime_type.clone().unwrap_or_else(|| {
            mime_guess::from_path(path).first_or_octet_stream().essence_str().to_string()
        });
        let display_name = options
            .display_name
            .clone()
            .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()));
        let req = UploadRequest { display_name, mime_type, size_bytes: meta.len() };
        let uploaded = self.upload_from(&req, &FileSource::new(path)).await?;
        let active = self.wait_active(uploaded, &options.poll).await?;
        Ok(UploadResult {
            id: active.id().to_string(),
            uri: active.uri.clone(),
            state: active.state.clone(),
            file: active,
        })
    }
}
