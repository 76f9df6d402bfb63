//! The crate's one error type.

use std::time::Duration;

use crate::types::FileState;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a Gemini call can fail with.
///
/// No variant ever carries the API key: keys travel in a header and are redacted in `Debug`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No API key was configured (an empty key counts as none).
    #[error("no Gemini API key is configured")]
    MissingCredentials,

    /// Gemini answered with its error envelope
    /// `{"error": {"code", "message", "status", "details"}}`
    /// (<https://ai.google.dev/api/rest> "Errors"; `docs/gemini-protocol.md`).
    #[error("Gemini API error {code} {status}: {message}")]
    Api {
        /// HTTP status code, e.g. `403`.
        code: u16,
        /// RPC status name, e.g. `PERMISSION_DENIED` (empty when the body had none, as
        /// with an API gateway's own errors).
        status: String,
        /// Gemini's human-readable message.
        message: String,
        /// How long the server asked to wait before retrying: `google.rpc.RetryInfo`'s
        /// `retryDelay`, else the `Retry-After` header.
        retry_after: Option<Duration>,
    },

    /// The File reached a terminal state other than `ACTIVE` (e.g. `FAILED`).
    #[error("the File {name} ended in state {state:?}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    UploadFailed {
        /// The File's resource name, `files/{id}`.
        name: String,
        /// The terminal state reported by Gemini.
        state: FileState,
        /// The File's `error.message`, when present.
        details: Option<String>,
    },

    /// The File was still not `ACTIVE` when the poll timeout ran out.
    #[error("the File {name} was not ACTIVE after {waited:?}")]
    NotActiveInTime {
        /// The File's resource name, `files/{id}`.
        name: String,
        /// How long was waited in total.
        waited: Duration,
    },

    /// The server broke the resumable-upload protocol (no `x-goog-upload-url`, a status
    /// other than `final` after the last byte, a finalize answer without a File, …).
    #[error("resumable upload protocol error: {0}")]
    Protocol(String),

    /// The bytes supplied did not match the size declared at `start`.
    #[error("the upload declared {declared} bytes but {actual} were supplied")]
    SizeMismatch {
        /// Size announced in `X-Goog-Upload-Header-Content-Length`, bytes.
        declared: u64,
        /// Bytes the source actually produced (so far), bytes.
        actual: u64,
    },

    /// The caller's byte source failed while it was being uploaded.
    #[error("reading the upload source failed: {0}")]
    Source(String),

    /// A local file to upload does not exist (checked before any network call).
    #[error("no file at {path}")]
    FileNotFound {
        /// The path given.
        path: std::path::PathBuf,
    },

    /// A file over the size limit (Gemini: 2 GB per file), refused before any network call.
    #[error("the file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The file's size, bytes.
        size: u64,
        /// The limit, bytes.
        limit: u64,
    },

    /// A network-level failure (connection refused, reset, timeout, …). The URL it names has
    /// lost its query: an upload session's URL (`upload_id=…`) is a capability and must not
    /// reach a log or a person.
    #[error("network error talking to Gemini: {0}")]
    Transport(reqwest::Error),

    /// A response body that is not the JSON we expect.
    #[error("could not decode Gemini's response: {0}")]
    Decode(String),
}

impl From<reqwest::Error> for Error {
    fn from(mut e: reqwest::Error) -> Self {
        if let Some(url) = e.url_mut() {
            url.set_query(None);
        }
        Error::Transport(e)
    }
}

impl Error {
    /// Whether trying again may succeed: 429, 500, 502, 503 and 504 answers, failed
    /// connections and timeouts. Never other 4xx answers.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { code, .. } => matches!(code, 429 | 500 | 502 | 503 | 504),
            Error::Transport(e) => {
                e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
            }
            _ => false,
        }
    }

    /// The delay the server asked for, for [`Error::Api`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The bare file id named by a 403 `PERMISSION_DENIED` "You do not have permission to
    /// access the File X or it may not exist." — in either of the forms seen in the wild
    /// (`File abc123` and `File files/abc123`, `403-names-the-file-both-ways` in
    /// `docs/behaviour.md`).
    pub fn inaccessible_file_id(&self) -> Option<&str> {
        let Error::Api { code: 403, message, .. } = self else { return None };
        let rest = message.split("access the File ").nth(1)?;
        let token = rest.split_whitespace().next()?;
        let id = token.strip_prefix("files/").unwrap_or(token);
        (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some(id)
    }

    /// The MIME type of a 400 "Unsupported MIME type: X" — Gemini cannot read that kind of
    /// file (`generateContent`, `countTokens`; <https://ai.google.dev/gemini-api/docs/file-input-methods>).
    pub fn unsupported_mime_type(&self) -> Option<&str> {
        let Error::Api { code: 400, message, .. } = self else { return None };
        message.strip_prefix("Unsupported MIME type: ").map(str::trim).filter(|m| !m.is_empty())
    }

    /// `(tokens, minimum)` of a 400 refusing a `cachedContents` below the model's minimum, e.g.
    /// "Cached content is too small. total_token_count=300, min_total_token_count=1024"
    /// (<https://ai.google.dev/gemini-api/docs/caching>); `tokens` is 0 when not given.
    pub fn cache_too_small(&self) -> Option<(u64, u64)> {
        let Error::Api { code: 400, message, .. } = self else { return None };
        let number_after = |key: &str| -> Option<u64> {
            let at = message.find(key)? + key.len();
            let digits: String = message[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let minimum = number_after("min_total_token_count=")?;
        Some((number_after(" total_token_count=").unwrap_or(0), minimum))
    }

    /// Whether this says a `cachedContents` resource is gone (expired, deleted) — or was never
    /// the caller's: 403 or 404 "CachedContent not found (or permission denied)".
    pub fn is_cache_gone(&self) -> bool {
        matches!(self, Error::Api { code: 403 | 404, message, .. }
            if message.contains("CachedContent not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(message: &str) -> Error {
        Error::Api {
            code: 403,
            status: "PERMISSION_DENIED".into(),
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn refusals_are_classified_by_what_gemini_says() {
        let api = |code, message: &str| Error::Api {
            code,
            status: "INVALID_ARGUMENT".into(),
            message: message.into(),
            retry_after: None,
        };
        let small = api(
            400,
            "Cached content is too small. total_token_count=300, min_total_token_count=1024",
        );
        assert_eq!(small.cache_too_small(), Some((300, 1024)));
        assert_eq!(api(400, "min_total_token_count=4096").cache_too_small(), Some((0, 4096)));
        assert_eq!(api(400, "The input token count (9) exceeds").cache_too_small(), None);
        assert_eq!(
            api(400, "Unsupported MIME type: image/tiff").unsupported_mime_type(),
            Some("image/tiff")
        );
        assert_eq!(api(415, "Unsupported MIME type: x/y").unsupported_mime_type(), None);
        let gone = api(403, "CachedContent not found (or permission denied)");
        assert!(gone.is_cache_gone() && api(404, "CachedContent not found").is_cache_gone());
        assert!(!forbidden("You do not have permission to access the File a").is_cache_gone());
    }

    #[test]
    fn inaccessible_file_id_parses_both_forms() {
        let bare = forbidden(
            "You do not have permission to access the File 3pkmvw1slxx8 or it may not exist.",
        );
        assert_eq!(bare.inaccessible_file_id(), Some("3pkmvw1slxx8"));
        let prefixed = forbidden(
            "You do not have permission to access the File files/abc123 or it may not exist.",
        );
        assert_eq!(prefixed.inaccessible_file_id(), Some("abc123"));
        assert_eq!(
            forbidden("Method doesn't allow unregistered callers").inaccessible_file_id(),
            None
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn forbidden(message: String) -> Error {
        Error::Api { code: 403, status: "PERMISSION_DENIED".into(), message, retry_after: None }
    }

    proptest! {
        /// Any 403 text: no panic, and an id only of letters, digits and `-`.
        #[test]
        fn any_message_parses_to_nothing_or_a_clean_id(message in "\\PC*") {
            if let Some(id) = forbidden(message).inaccessible_file_id() {
                prop_assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            }
        }

        /// Gemini's text names the File bare or as `files/…` (`403-names-the-file-both-ways`): the
        /// id comes out of both.
        #[test]
        fn both_forms_give_the_id(id in "[a-z0-9][a-z0-9-]{0,39}", prefixed in any::<bool>(), tail in "( or it may not exist\\.)?") {
            let named = if prefixed { format!("files/{id}") } else { id.clone() };
            let error = forbidden(format!("You do not have permission to access the File {named}{tail}"));
            prop_assert_eq!(error.inaccessible_file_id(), Some(id.as_str()));
            let other = Error::Api { code: 400, status: "INVALID_ARGUMENT".into(), message: format!("access the File {id}"), retry_after: None };
            prop_assert_eq!(other.inaccessible_file_id(), None);
        }
    }
}
