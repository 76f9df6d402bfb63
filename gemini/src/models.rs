//! `models.list` and `models.get`: which models there are and their limits
//! (<https://ai.google.dev/api/models>).

use serde::{Deserialize, Serialize};

use crate::{
    client::{with_query, Client},
    error::Result,
    generate::bare_model,
};

/// A model and its limits (<https://ai.google.dev/api/models#Model>). Every field may be
/// absent on the wire and then holds its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// Resource name, `models/{id}`, e.g. `models/gemini-2.5-flash`.
    #[serde(default)]
    pub name: String,
    /// The base model's name, when Gemini gives one (it usually does not).
    #[serde(default, alias = "base_model_id", skip_serializing_if = "Option::is_none")]
    pub base_model_id: Option<String>,
    /// Version, e.g. `001`, `2.5` or `3-pro-preview-11-2025`.
    #[serde(default)]
    pub version: String,
    /// Human name, e.g. `Gemini 2.5 Flash` (up to 128 characters).
    #[serde(default, alias = "display_name")]
    pub display_name: String,
    /// A short description.
    #[serde(default)]
    pub description: String,
    /// The most tokens a prompt may have, tokens (1,048,576 for Gemini 2.5 Flash).
    #[serde(default, alias = "input_token_limit")]
    pub input_token_limit: u64,
    /// The most tokens an answer may have, tokens (65,536 for Gemini 2.5 Flash).
    #[serde(default, alias = "output_token_limit")]
    pub output_token_limit: u64,
    /// The API methods the model takes, e.g. `generateContent`, `countTokens`,
    /// `createCachedContent`, `batchGenerateContent`.
    #[serde(default, alias = "supported_generation_methods")]
    pub supported_generation_methods: Vec<String>,
    /// Whether the model thinks before it answers (absent, hence `false`, on older models).
    #[serde(default)]
    pub thinking: bool,
    /// Default sampling temperature, 0 to `max_temperature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Highest temperature the model takes.
    #[serde(default, alias = "max_temperature", skip_serializing_if = "Option::is_none")]
    pub max_temperature: Option<f64>,
    /// Default nucleus-sampling probability mass, 0 to 1.
    #[serde(default, alias = "top_p", skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Default number of tokens top-k sampling considers.
    #[serde(default, alias = "top_k", skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
}

impl Model {
    /// The bare id, as `generateContent` takes it: `gemini-2.5-flash` for
    /// `models/gemini-2.5-flash`.
    pub fn id(&self) -> &str {
        bare_model(&self.name)
    }
}

/// One page of `models.list`: `{"models": [...], "nextPageToken": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelList {
    /// The models of this page.
    #[serde(default)]
    pub models: Vec<Model>,
    /// The token of the next page; absent on the last one.
    #[serde(default, alias = "next_page_token", skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Models asked for per page: the most `models.list` gives
/// (<https://ai.google.dev/api/models#method:-models.list>: "at most 1000 models per page").
const PAGE_SIZE: &str = "1000";

impl Client {
    /// `GET {ver}/models?pageSize=1000&pageToken=…`: one page of the models the key may use
    /// (<https://ai.google.dev/api/models#method:-models.list>). Transient failures are retried.
    ///
    /// # Errors
    /// [`crate::Error::Api`] for a bad page token or key; transport and decode errors.
    pub async fn list_models(&self, page_token: Option<&str>) -> Result<ModelList> {
        let url = with_query(
            self.api_url("models")?,
            &[("pageSize", Some(PAGE_SIZE)), ("pageToken", page_token)],
        );
        self.call_json("models.list", reqwest::Method::GET, url, None::<&()>).await
    }

    /// `GET {ver}/models/{id}`: one model (<https://ai.google.dev/api/models#method:-models.get>).
    /// `model` may be `gemini-2.5-flash` or `models/gemini-2.5-flash`. Transient failures are
    /// retried.
    ///
    /// # Errors
    /// [`crate::Error::Api`] with code 404 (`NOT_FOUND`) for a model Gemini does not have.
    pub async fn get_model(&self, model: &str) -> Result<Model> {
        let url = self.item_url("models", bare_model(model), "")?;
        self.call_json("models.get", reqwest::Method::GET, url, None::<&()>).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_parses_as_models_list_gives_it() {
        let json = r#"{"name":"models/gemini-2.0-flash","version":"2.0","displayName":"Gemini 2.0 Flash",
            "description":"Gemini 2.0 Flash","inputTokenLimit":1048576,"outputTokenLimit":8192,
            "supportedGenerationMethods":["generateContent","countTokens"],"temperature":1,"topP":0.95,
            "topK":40,"maxTemperature":2}"#;
        let model: Model = serde_json::from_str(json).unwrap();
        assert_eq!(model.id(), "gemini-2.0-flash");
        assert_eq!((model.input_token_limit, model.output_token_limit), (1_048_576, 8192));
        assert!(!model.thinking, "absent means no thinking");
        assert_eq!(model.top_k, Some(40));
        let snake: Model =
            serde_json::from_str(r#"{"name":"models/x","input_token_limit":5,"top_k":3}"#).unwrap();
        assert_eq!((snake.input_token_limit, snake.top_k), (5, Some(3)));
        let out = serde_json::to_value(&snake).unwrap();
        assert_eq!(out["inputTokenLimit"], 5);
        assert!(out.get("temperature").is_none());
    }
}
