//! The one mapping from `gemini::Error` to [`AppError`].

use crate::error::AppError;

/// Maps a Gemini failure to what the person is told. `file` names the file concerned, if
/// any. Every error is logged here, once, without secrets (the client never puts the key in
/// an error).
pub fn from_gemini(err: gemini::Error, file: Option<&str>) -> AppError {
    tracing::warn!(error = %err, file, "gemini call failed");
    let name = file.unwrap_or("the file").to_string();
    if err.inaccessible_file_id().is_some() {
        return AppError::FileUnavailable;
    }
    match err {
        gemini::Error::Api { code: 400, message, .. } if message.starts_with("Unsupported MIME type: ") => {
            AppError::UnsupportedType { mime_type: message["Unsupported MIME type: ".len()..].to_string() }
        }
        gemini::Error::Api { code: 429, .. } => AppError::RateLimited,
        gemini::Error::Api { code, message, .. } => AppError::Upstream { code, message },
        gemini::Error::MissingCredentials => {
            AppError::Upstream { code: 401, message: "the server has no Gemini API key".into() }
        }
        gemini::Error::UploadFailed { details, .. } => AppError::ProcessingFailed { name, details },
        gemini::Error::NotActiveInTime { waited, .. } => AppError::NotReadyInTime { name, seconds: waited.as_secs() },
        gemini::Error::SizeMismatch { declared, actual } => {
            AppError::BadUpload(format!("the file had {actual} bytes, not the {declared} announced"))
        }
        // The server's own copy (spooled or retained) could not be read: not the person's fault.
        gemini::Error::Source(message) => {
            tracing::error!(%message, "a stored upload could not be read back");
            AppError::Transport("the server could not read the file back from its store".into())
        }
        gemini::Error::TooLarge { size, limit } => {
            AppError::BadUpload(format!("the file is {size} bytes, over Gemini's limit of {limit} bytes"))
        }
        gemini::Error::FileNotFound { .. } => AppError::BadUpload(format!("{name} could not be read")),
        gemini::Error::Protocol(message) | gemini::Error::Decode(message) => {
            AppError::Upstream { code: 502, message }
        }
        gemini::Error::Transport(_) => AppError::Unreachable,
    }
}

/// A registry failure as the person is told it (logged here, once).
pub fn registry_failed(e: super::registry::RegistryError) -> AppError {
    tracing::error!(error = %e, "the file registry failed");
    AppError::Transport("the server's file registry is unavailable".into())
}

/// A 403 that taking Files out cannot fix — a second one after the retry, or one naming a
/// File the conversation does not hold — reported with Gemini's own words (billing and
/// key problems give the same text, BC-19). Other errors map as usual.
pub fn refused_after_retry(err: gemini::Error) -> AppError {
    match err {
        gemini::Error::Api { code: 403, message, .. } => {
            tracing::warn!(%message, "Gemini refused a file again after it was taken out");
            AppError::Upstream { code: 403, message }
        }
        other => from_gemini(other, None),
    }
}
