//! Gemini's error envelope: `{"error": {"code", "message", "status", "details"?}}` with
//! `Content-Type: application/json; charset=UTF-8` (`docs/gemini-protocol.md`).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

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
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Invalid or unsupported file uri: {uri}"),
        )
    }

    /// 400: the generic refusal.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// 400: an upload MIME type Gemini does not take.
    pub fn unsupported_mime(mime: &str) -> Self {
        Self::invalid_argument(format!("Unsupported MIME type: {mime}"))
    }

    /// 400: a prompt past the model's input limit (`allowed`: one under its
    /// `inputTokenLimit`, as Gemini counts).
    pub fn input_too_long(tokens: u64, allowed: u64) -> Self {
        Self::invalid_argument(format!(
            "The input token count ({tokens}) exceeds the maximum number of tokens allowed ({allowed})."
        ))
    }

    /// 404: an unknown model, on `generateContent`.
    pub fn model_not_found(model: &str, version: &str) -> Self {
        Self::model_not_found_for(model, version, "generateContent")
    }

    /// 404: an unknown model, on `method` (`generateContent`, `countTokens`,
    /// `createCachedContent`): Gemini's generateContent text with the method named.
    pub fn model_not_found_for(model: &str, version: &str, method: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version {version}, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        )
    }

    /// 404: `models.get` of an unknown model.
    pub fn unknown_model(model: &str, version: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Model is not found: models/{model} for api version {version}"),
        )
    }

    /// 403: a missing, expired, deleted or foreign context cache (on `get`, `patch`,
    /// `delete` and when a request names it).
    pub fn cache_not_found() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "CachedContent not found (or permission denied)",
        )
    }

    /// 400: a context cache below the model's minimum.
    pub fn cache_too_small(total: u64, min: u64) -> Self {
        Self::invalid_argument(format!(
            "Cached content is too small. total_token_count={total}, min_total_token_count={min}"
        ))
    }

    /// 400: a request naming a `cachedContent` that also sets `systemInstruction`, `tools`
    /// or `toolConfig`.
    pub fn cache_with_request_settings() -> Self {
        Self::invalid_argument(
            "CachedContent can not be used with GenerateContent request setting \
             system_instruction, tools or tool_config.\n\nProposed fix: move those values to \
             CachedContent from GenerateContent request.",
        )
    }

    /// 400: a request whose model is not its cache's (both `models/{id}`).
    pub fn cache_model_mismatch(request_model: &str, cache_model: &str) -> Self {
        Self::invalid_argument(format!(
            "Model used by GenerateContent request ({request_model}) and CachedContent \
             ({cache_model}) has to be the same."
        ))
    }

    /// 429: the emulator's own bound on context caches (`crate::caches`); Gemini documents
    /// no such limit, so the text is the emulator's.
    pub fn too_many_caches() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            format!(
                "Too many cached contents: the emulator keeps at most {} per API key ({} MiB), \
                 {} in all ({} MiB). Delete some or let them expire.",
                crate::caches::MAX_PER_OWNER,
                crate::caches::MAX_BYTES_PER_OWNER >> 20,
                crate::caches::MAX_CACHES,
                crate::caches::MAX_BYTES >> 20,
            ),
        )
    }

    /// 400: a JSON value the proto parser refuses, in its words, e.g. `Invalid value at
    /// 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), "soon"`.
    pub fn bad_value(field: &str, proto_type: &str, raw: &Value) -> Self {
        Self::invalid_argument(format!("Invalid value at '{field}' ({proto_type}), {raw}"))
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

    /// 429: quota exhausted for `model`, with Gemini's `QuotaFailure`, `Help` and `RetryInfo`
    /// details, and its message naming the metric, the limit and the model and ending
    /// "Please retry in Ns." (`docs/gemini-protocol.md`; the delay is a proto Duration such
    /// as `"15s"`).
    pub fn rate_limited(model: &str, retry_delay: std::time::Duration) -> Self {
        const METRIC: &str =
            "generativelanguage.googleapis.com/generate_content_free_tier_requests";
        ApiError {
            details: Some(json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": METRIC,
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": "10"}]},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                 "retryDelay": crate::faults::proto_duration(retry_delay)}
            ])),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                format!(
                    "You exceeded your current quota, please check your plan and billing details. \
                     For more information on this error, head to: \
                     https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current \
                     usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: \
                     {METRIC}, limit: 10, model: {model}\nPlease retry in {}s.",
                    retry_delay.as_secs_f64()
                ),
            )
        }
    }

    /// 500: Gemini's internal error.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        )
    }

    /// 503: the model is overloaded.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error =
            json!({"code": self.code.as_u16(), "message": self.message, "status": self.status});
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_delay().map(|d| d.as_secs_f64().ceil() as u64);
        let mut res = crate::wire::Pretty(self.code, self.body()).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl ApiError {
    /// The `RetryInfo.retryDelay` of the details, if any.
    fn retry_delay(&self) -> Option<std::time::Duration> {
        self.details.as_ref()?.as_array()?.iter().find_map(|d| {
            let text = d.get("retryDelay")?.as_str()?;
            crate::faults::parse_duration(text).ok()
        })
    }
}

/// Azure API Management's own refusal, `401 {"statusCode": 401, "message": …}` — not
/// Google's envelope (`docs/gemini-protocol.md`).
#[derive(Debug, Clone, Copy)]
pub enum GatewayError {
    /// No `Ocp-Apim-Subscription-Key` header and no `subscription-key` query parameter.
    MissingKey,
    /// A subscription key other than the configured one.
    InvalidKey,
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let message = match self {
            GatewayError::MissingKey => {
                "Access denied due to missing subscription key. Make sure to include \
                 subscription key when making requests to an API."
            }
            GatewayError::InvalidKey => {
                "Access denied due to invalid subscription key. Make sure to provide \
                 a valid key for an active subscription."
            }
        };
        let body = json!({"statusCode": 401, "message": message}).to_string();
        let mut res = (StatusCode::UNAUTHORIZED, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}
