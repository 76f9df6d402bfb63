//! `models.countTokens`: what a prompt costs before it is sent
//! (<https://ai.google.dev/api/tokens>).

use serde::{Deserialize, Serialize};

use crate::{
    client::Client,
    error::Result,
    generate::bare_model,
    types::{Content, GenerateContentRequest},
};

/// The answer of `countTokens`: `{"totalTokens": N, "cachedContentTokenCount": M,
/// "promptTokensDetails": [...]}`
/// (<https://ai.google.dev/api/tokens#response-body>), tokens. Absent counts are 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensResponse {
    /// The whole prompt, the cached content included.
    #[serde(default, alias = "total_tokens")]
    pub total_tokens: u64,
    /// The part of it that comes from the request's `cachedContent`.
    #[serde(default, alias = "cached_content_token_count")]
    pub cached_content_token_count: u64,
    /// The prompt's tokens by modality.
    #[serde(default, alias = "prompt_tokens_details", skip_serializing_if = "Vec::is_empty")]
    pub prompt_tokens_details: Vec<crate::types::ModalityTokenCount>,
}

/// The body of `countTokens`: the documented union of `contents` alone and a whole
/// `generateContentRequest` (which must then name its model).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountTokensRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<&'a [Content]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generate_content_request: Option<Wrapped<'a>>,
}

#[derive(Serialize)]
struct Wrapped<'a> {
    model: String,
    #[serde(flatten)]
    request: &'a GenerateContentRequest,
}

impl<'a> CountTokensRequest<'a> {
    /// `{"contents": …}` when the request is only contents; otherwise
    /// `{"generateContentRequest": {"model": "models/{id}", …}}`, so that a system
    /// instruction and a cached content count too.
    fn new(model: &str, req: &'a GenerateContentRequest) -> Self {
        if req.cached_content.is_none() && req.system_instruction.is_none() {
            return CountTokensRequest {
                contents: Some(&req.contents),
                generate_content_request: None,
            };
        }
        let wrapped = Wrapped { model: format!("models/{}", bare_model(model)), request: req };
        CountTokensRequest { contents: None, generate_content_request: Some(wrapped) }
    }
}

impl Client {
    /// `POST {ver}/models/{id}:countTokens`: the tokens `req` would cost `model`
    /// (<https://ai.google.dev/api/tokens#method:-models.counttokens>), the same count
    /// `generateContent` reports as `usageMetadata.promptTokenCount`. `model` may be
    /// `gemini-2.5-flash` or `models/gemini-2.5-flash`. Transient failures are retried (the
    /// call changes nothing).
    ///
    /// # Errors
    /// [`crate::Error::Api`] as for [`Client::generate_content`]: 404 for an unknown model, 403
    /// for an inaccessible File or cached content, 400 for a File not `ACTIVE`.
    pub async fn count_tokens(
        &self,
        model: &str,
        req: &GenerateContentRequest,
    ) -> Result<CountTokensResponse> {
        let url = self.item_url("models", bare_model(model), ":countTokens")?;
        let body = CountTokensRequest::new(model, req);
        self.call_json("countTokens", reqwest::Method::POST, url, Some(&body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Part;

    #[test]
    fn bare_contents_or_the_whole_request() {
        let contents = vec![Content { role: Some("user".into()), parts: vec![Part::text("hi")] }];
        let plain = GenerateContentRequest { contents: contents.clone(), ..Default::default() };
        assert_eq!(
            serde_json::to_value(CountTokensRequest::new("gemini-2.5-flash", &plain)).unwrap(),
            serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );
        let cached = GenerateContentRequest {
            contents,
            cached_content: Some("cachedContents/abc".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(CountTokensRequest::new("models/gemini-2.5-flash", &cached))
                .unwrap(),
            serde_json::json!({"generateContentRequest": {
                "model": "models/gemini-2.5-flash",
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "cachedContent": "cachedContents/abc"
            }})
        );
    }
}
