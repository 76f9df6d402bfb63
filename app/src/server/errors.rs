//! The one mapping of server-side failures to [`AppError`], each logged here, once, without
//! secrets (the Gemini client never puts a key in an error): [`ToAppError`] for Gemini's, the
//! Files', the store's and the engine's errors ([`OrApp`] for `?`), and [`from_gemini`] when a
//! file's name belongs in the sentence.

use parley_files::{FilesError, IngestError, OriginalsError};

use crate::error::AppError;

/// Maps a Gemini failure to what the person is told. `file` names the file concerned, if any.
pub fn from_gemini(err: gemini::Error, file: Option<&str>) -> AppError {
    tracing::warn!(error = %err, file, "gemini call failed");
    parley_chat::count_upstream_error(&err);
    let name = file.unwrap_or("the file").to_string();
    if err.inaccessible_file_id().is_some() {
        return AppError::FileUnavailable;
    }
    if let Some(mime_type) = err.unsupported_mime_type() {
        return AppError::UnsupportedType { mime_type: mime_type.to_string() };
    }
    match err {
        gemini::Error::Api { code: 429, .. } => AppError::RateLimited,
        gemini::Error::Api { code, message, .. } => AppError::Upstream { code, message },
        gemini::Error::MissingCredentials => {
            AppError::Upstream { code: 401, message: "the server has no Gemini API key".into() }
        }
        gemini::Error::UploadFailed { details, .. } => AppError::ProcessingFailed { name, details },
        gemini::Error::NotActiveInTime { waited, .. } => {
            AppError::NotReadyInTime { name, seconds: waited.as_secs() }
        }
        gemini::Error::SizeMismatch { declared, actual } => AppError::BadUpload(format!(
            "the file had {actual} bytes, not the {declared} announced"
        )),
        // The server's own copy (spooled or retained) could not be read: not the person's fault.
        gemini::Error::Source(message) => {
            tracing::error!(%message, "a stored upload could not be read back");
            AppError::Internal("it could not read the file back from its store".into())
        }
        gemini::Error::TooLarge { size, limit } => AppError::BadUpload(format!(
            "the file is {size} bytes, over Gemini's limit of {limit} bytes"
        )),
        gemini::Error::FileNotFound { .. } => {
            AppError::BadUpload(format!("{name} could not be read"))
        }
        gemini::Error::Protocol(message) | gemini::Error::Decode(message) => {
            AppError::Upstream { code: 502, message }
        }
        gemini::Error::Transport(_) => AppError::Unreachable,
    }
}

/// A server-side failure as the person is told of it: the one mapping of `gemini::Error`,
/// [`FilesError`], [`IngestError`], `StoreError` and `ChatError` into [`AppError`] (logged here, once).
pub trait ToAppError {
    /// The [`AppError`] for this failure.
    fn to_app(self) -> AppError;
}

/// `?` for results failing with a server-side error: `store.find(…).await.or_app()?`.
pub trait OrApp<T> {
    /// The result with its error mapped by [`ToAppError`].
    ///
    /// # Errors
    /// The mapped error.
    fn or_app(self) -> Result<T, AppError>;
}

impl<T, E: ToAppError> OrApp<T> for Result<T, E> {
    fn or_app(self) -> Result<T, AppError> {
        self.map_err(ToAppError::to_app)
    }
}

impl ToAppError for gemini::Error {
    fn to_app(self) -> AppError {
        from_gemini(self, None)
    }
}

impl ToAppError for FilesError {
    fn to_app(self) -> AppError {
        match self {
            FilesError::Gemini { source, file } => from_gemini(source, file.as_deref()),
            FilesError::Originals(OriginalsError::Body(reason)) => {
                AppError::BadUpload(format!("the upload could not be read: {reason}"))
            }
            FilesError::Originals(e @ OriginalsError::TooLong { .. }) => {
                AppError::BadUpload(e.to_string())
            }
            // Every connection busy, or another holder's turn too long: load, not a fault.
            FilesError::Store(e) if e.is_busy() => {
                tracing::warn!(error = %e, "the database is busy");
                AppError::Busy
            }
            FilesError::Store(e) => {
                tracing::error!(error = %e, "the database failed");
                AppError::Internal("its database is unavailable".into())
            }
            FilesError::Originals(e) => {
                tracing::error!(error = %e, "the store of originals failed");
                AppError::Internal("its store of uploaded files is unavailable".into())
            }
            FilesError::NotRecorded { name, source } => {
                tracing::error!(error = %source, file = %name, "an ACTIVE File could not be recorded; deleted upstream");
                AppError::Internal("it could not record the uploaded file".into())
            }
        }
    }
}

impl ToAppError for IngestError<AppError> {
    fn to_app(self) -> AppError {
        match self {
            IngestError::Refused(e) => e,
            IngestError::Files(e) => e.to_app(),
            IngestError::TooLarge { name, size_bytes, limit_bytes } => {
                AppError::TooLarge { name, size_bytes, limit_bytes }
            }
            IngestError::ContentMismatch { name, declared, detected } => {
                AppError::ContentMismatch { name, declared, detected }
            }
            e @ (IngestError::Body(_)
            | IngestError::LongerThanAnnounced { .. }
            | IngestError::ShorterThanAnnounced { .. }
            | IngestError::NotAsDeclared) => AppError::BadUpload(e.to_string()),
        }
    }
}

/// A 403 that taking Files out cannot fix — a second one after the retry, or one naming a
/// File the conversation does not hold — reported with Gemini's own words (billing and key
/// problems give the same text). Other errors map as usual.
pub fn refused_after_retry(err: gemini::Error) -> AppError {
    match err {
        gemini::Error::Api { code: 403, message, .. } => {
            tracing::warn!(%message, "Gemini refused a file again after it was taken out");
            AppError::Upstream { code: 403, message }
        }
        other => from_gemini(other, None),
    }
}

impl ToAppError for parley_store::StoreError {
    fn to_app(self) -> AppError {
        FilesError::from(self).to_app()
    }
}

impl ToAppError for parley_chat::ChatError {
    fn to_app(self) -> AppError {
        use parley_chat::ChatError;
        match self {
            ChatError::BadRequest(why) => AppError::BadRequest(why),
            ChatError::Busy => AppError::Busy,
            ChatError::BudgetSpent(refusal) => {
                tracing::info!(scope = refusal.whose.label(), "a budget refused a request");
                AppError::BudgetSpent { message: refusal.to_string(), sign_in: None }
            }
            ChatError::Gemini { source, file } => from_gemini(source, file.as_deref()),
            ChatError::RefusedAfterRetry(source) => refused_after_retry(source),
            ChatError::Files(e) => e.to_app(),
            ChatError::Store(e) => e.to_app(),
            ChatError::NotFound(what) => AppError::NotFound(what),
            ChatError::Gone(sentence) => AppError::Gone(sentence),
            ChatError::StorageFull { quota } => AppError::StorageFull { quota_bytes: quota },
            ChatError::Internal(what) => {
                tracing::error!(what, "the conversation engine failed");
                AppError::Internal(format!("it could not {what}"))
            }
        }
    }
}
