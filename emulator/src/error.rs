//! Gemini's error envelope: `{"error": {"code", "message", "status", "details"?}}` with
//! `Content-Type: application/json; charset=UTF-8` (`shared/gemini-files-api.md` §5).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error answer, with Gemini's exact texts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {status}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub code: StatusCode,
    /// RPC status name, e.g. `PERMISSION_DENIED`.
    pub status: &'static str,
    /// The message, verbatim as Gemini words it.
    pub message: String,
    /// Optional `details` array.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    fn new(code: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, status, message: message.into(), details: None }
    }

    /// 403: a missing, expired, deleted or foreign File.
    pub fn file_inaccessible(id: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("You do not have permission to access the File {id} or it may not exist."),
        )
    }

    /// 400: a File used while still `PROCESSING`.
    pub fn file_not_active(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            format!("The File {id} is not in an ACTIVE state and usage is not allowed."),
        )
    }

    /// 400: a `fileUri` that is not a Files-API URI.
    pub fn bad_file_uri(uri: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", format!("Invalid or unsupported file uri: {uri}"))
    }

    /// 400: the generic refusal.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// 400: an upload MIME type Gemini does not take.
    pub fn unsupported_mime(mime: &str) -> Self {
        Self::invalid_argument(format!("Unsupported MIME type: {mime}"))
    }

    /// 404: an unknown model.
    pub fn model_not_found(model: &str, version: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version {version}, or is not supported for \
                 generateContent. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        )
    }

    /// 404: no such route.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.")
    }

    /// 403: no API key at all.
    pub fn unregistered_caller() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// 400: a key that is not the configured one.
    pub fn invalid_key() -> Self {
        let message = "API key not valid. Please pass a valid API key.";
        ApiError {
            details: Some(json!([
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}
            ])),
            ..Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code.as_u16(), "message": self.message, "status": self.status});
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.code, self.body().to_string()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
        res
    }
}
