//! [`AppError`]: the one error type of Parley's server functions.
//!
//! Each variant's `Display` is the sentence the page shows in its `role="alert"`; none
//! carries a stack trace, raw JSON or a secret. The server maps `gemini::Error` into it once,
//! in `server::errors`.

use serde::{Deserialize, Serialize};

/// Why a server function failed, in words for the person using Parley.
///
/// On the wire it is serde's externally tagged form (`{"NotFound": "…"}`,
/// `{"TooManyRequests": {"retry_after_secs": 3}}`, `"Busy"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(remote = "Self")]
pub enum AppError {
    /// A request Parley does not take as it is (an empty conversation, more Files than one
    /// request may name, more URIs than one check takes, a body it could not read); the text
    /// says what to change.
    #[error("The request was not accepted: {0}")]
    BadRequest(String),
    /// The upload request itself was malformed (missing size or type, wrong field order, …).
    #[error("The upload was not understood: {0}")]
    BadUpload(String),
    /// Gemini does not take this kind of file.
    #[error("Gemini does not accept {mime_type} files.")]
    UnsupportedType {
        /// The refused MIME type.
        mime_type: String,
    },
    /// The file is larger than this server accepts (`PARLEY_MAX_FILE_BYTES`).
    #[error("“{name}” is {} — larger than this server accepts ({}).", crate::model::human_size(*size_bytes), crate::model::human_size(*limit_bytes))]
    TooLarge {
        /// The file's name.
        name: String,
        /// Its size, bytes.
        size_bytes: u64,
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The file's bytes are not of the type it claims (MIME spoofing).
    #[error("“{name}” does not look like a {declared} file (its content is {detected}).")]
    ContentMismatch {
        /// The file's name.
        name: String,
        /// The MIME type sent with it.
        declared: String,
        /// The type its magic bytes show.
        detected: String,
    },
    /// What the request names does not exist here — or is not this person's to see: another
    /// principal's conversation, File or link gets the same answer as one that never existed.
    #[error("Not found: {0}")]
    NotFound(String),
    /// What the request names existed but is no more: a shared link revoked by its owner or
    /// past its expiry.
    #[error("{0}")]
    Gone(String),
    /// A state-changing request came from another site (CSRF) and was refused.
    #[error("This request came from another site and was refused.")]
    CrossSite,
    /// This browser or address sent too many requests; the limit clears by itself.
    #[error(
        "Too many requests from this browser; please wait {retry_after_secs} s and try again."
    )]
    TooManyRequests {
        /// Seconds until a request is allowed again.
        retry_after_secs: u64,
    },
    /// The request's body arrived too slowly (under the server's minimum rate) and was cut off.
    #[error("The request arrived too slowly and was stopped: {0}")]
    TooSlow(String),
    /// The server has as many calls to Gemini in flight as it allows; none freed up in time.
    #[error("The server is busy right now. Please try again in a moment.")]
    Busy,
    /// Gemini could not process the file (its File ended `FAILED`).
    #[error("Gemini could not process “{name}”{}.", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ProcessingFailed {
        /// The file's name.
        name: String,
        /// Gemini's reason, when given.
        details: Option<String>,
    },
    /// The File did not become `ACTIVE` before the timeout.
    #[error("“{name}” was still being processed after {seconds} s; please try again.")]
    NotReadyInTime {
        /// The file's name.
        name: String,
        /// Seconds waited.
        seconds: u64,
    },
    /// A File in the conversation can no longer be used (expired, deleted or not ours).
    #[error("A file in this conversation is no longer available on Gemini.")]
    FileUnavailable,
    /// Gemini's quota or rate limit was reached and did not clear within the retries.
    #[error(
        "Gemini is busy right now (its rate limit was reached). Please try again in a moment."
    )]
    RateLimited,
    /// Gemini refused or failed the request.
    #[error("Gemini could not answer ({code}): {message}")]
    Upstream {
        /// HTTP status from Gemini.
        code: u16,
        /// Gemini's message.
        message: String,
    },
    /// The site requires signing in (`PARLEY_SIGN_IN=required`) and the request is not
    /// signed in.
    #[error("Please sign in to use this site.")]
    SignInRequired,
    /// A budget on the site's key has no room for the request: what was spent of which budget,
    /// and when it renews. Nothing was sent to Gemini.
    #[error("{message}")]
    BudgetSpent {
        /// The sentence, e.g. `You have used $0.25 of your budget of $0.25 today. It renews
        /// in 3 h 12 min.`
        message: String,
        /// Where to sign in (a path of this site, `/auth/login/<provider>`), when signing in
        /// would give a larger budget: the page offers `Sign in` there.
        sign_in: Option<String>,
    },
    /// The account's conversations on the server would take more than its storage: the
    /// write is refused (the page keeps it and syncs once there is room).
    #[error(
        "Your account's storage on this site is full ({}). Delete conversations you no longer \
         need: this one is kept on this device and syncs once there is room.",
        crate::model::human_size(*quota_bytes)
    )]
    StorageFull {
        /// The account's storage, bytes.
        quota_bytes: u64,
    },
    /// An operator disabled the account this request is signed in with (behind a trusted
    /// proxy, where Parley cannot sign it out).
    #[error("This account is disabled.")]
    AccountDisabled,
    /// Gemini could not be reached at all.
    #[error("The server could not reach Gemini. Check the connection and try again.")]
    Unreachable,
    /// The server failed on its side: its storage (registry, retained originals) or its
    /// configuration. Details are in the server's log, not here.
    #[error("The server could not complete this request: {0}. Please try again.")]
    Internal(String),
    /// Something between the browser and the server failed (the connection, an answer that
    /// could not be read).
    #[error("The request did not get through: {0}")]
    Transport(String),
}

impl Serialize for AppError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AppError::serialize(self, serializer)
    }
}

/// Read through a [`serde_json::Value`]: the derived reader of this many variants is about
/// 17 KB of wasm, and generic over the deserializer it would be built once per reader the page
/// uses (server-function answers, streamed events); this way it is built once.
impl<'de> Deserialize<'de> for AppError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        from_value(value).map_err(serde::de::Error::custom)
    }
}

fn from_value(value: serde_json::Value) -> Result<AppError, serde_json::Error> {
    AppError::deserialize(value)
}

impl AppError {
    /// The HTTP status a server function answers with when it fails this way: 4xx for what
    /// the request got wrong, 500 for the server's own failures, 502/503/504 for what Gemini
    /// did or how busy the server is.
    pub fn http_status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status_code())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn status_code(&self) -> u16 {
        match self {
            AppError::BadUpload(_) | AppError::BadRequest(_) => 400,
            AppError::UnsupportedType { .. } | AppError::ContentMismatch { .. } => 415,
            AppError::TooLarge { .. } => 413,
            AppError::StorageFull { .. } => 507,
            AppError::CrossSite | AppError::AccountDisabled => 403,
            AppError::SignInRequired => 401,
            AppError::NotFound(_) => 404,
            AppError::Gone(_) => 410,
            AppError::TooManyRequests { .. } | AppError::BudgetSpent { .. } => 429,
            AppError::Busy => 503,
            AppError::TooSlow(_) => 408,
            AppError::ProcessingFailed { .. } => 422,
            AppError::FileUnavailable => 410,
            AppError::Upstream { code: 429, .. } | AppError::RateLimited => 429,
            AppError::Upstream { .. } | AppError::Unreachable => 502,
            AppError::NotReadyInTime { .. } => 504,
            AppError::Internal(_) | AppError::Transport(_) => 500,
        }
    }
}

/// A failure of the server-function machinery itself (the request did not get through, the
/// answer could not be read) as the page shows it.
#[cfg(feature = "server-fn")]
impl server_fn::error::FromServerFnError for AppError {
    type Encoder = server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_serde_s_external_tagging_both_ways() {
        for (error, json) in [
            (AppError::Busy, r#""Busy""#),
            (AppError::NotFound("conversation".into()), r#"{"NotFound":"conversation"}"#),
            (
                AppError::TooManyRequests { retry_after_secs: 3 },
                r#"{"TooManyRequests":{"retry_after_secs":3}}"#,
            ),
            (
                AppError::BudgetSpent { message: "m".into(), sign_in: None },
                r#"{"BudgetSpent":{"message":"m","sign_in":null}}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&error).unwrap(), json);
            assert_eq!(serde_json::from_str::<AppError>(json).unwrap(), error);
            assert_eq!(serde_json::from_slice::<AppError>(json.as_bytes()).unwrap(), error);
        }
        let refused = serde_json::from_str::<AppError>(r#"{"NoSuchThing":1}"#).unwrap_err();
        assert!(refused.to_string().contains("unknown variant"), "{refused}");
    }
}
