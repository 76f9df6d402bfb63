//! The models the emulator serves, with Gemini's own limits: what `models.list` answered for
//! them (November–December 2025, <https://ai.google.dev/api/models#method:-models.list>;
//! <https://ai.google.dev/gemini-api/docs/models>), and the smallest context cache each takes
//! (<https://ai.google.dev/gemini-api/docs/caching>; see `docs/gemini-protocol.md`).
//! `generateContent`, `countTokens` and `cachedContents.create` refuse any other model with
//! Gemini's 404.

use serde_json::{json, Value};

/// One model: the fields of its `models.get` resource, and its caching minimum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// The bare id, e.g. `gemini-2.5-flash` (the resource name is `models/{id}`).
    pub id: &'static str,
    /// `version`, e.g. `001` or `3-pro-preview-11-2025`.
    pub version: &'static str,
    /// `displayName`, e.g. `Gemini 2.5 Flash`.
    pub display_name: &'static str,
    /// `description`.
    pub description: &'static str,
    /// `inputTokenLimit`, tokens.
    pub input_token_limit: u64,
    /// `outputTokenLimit`, tokens.
    pub output_token_limit: u64,
    /// `topK` (`temperature` is 1, `topP` 0.95 and `maxTemperature` 2 for all of them).
    pub top_k: u32,
    /// `thinking`: the model thinks before it answers (answers report `thoughtsTokenCount`).
    pub thinking: bool,
    /// The fewest tokens a `cachedContents.create` takes for this model.
    pub min_cache_tokens: u64,
}

/// What every model here supports (`supportedGenerationMethods`).
pub const METHODS: [&str; 4] =
    ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"];

/// The models served, in `models.list` order.
pub const MODELS: &[ModelInfo] = &[
    ModelInfo {
        id: "gemini-2.5-flash",
        version: "001",
        display_name: "Gemini 2.5 Flash",
        description: "Stable version of Gemini 2.5 Flash, our mid-size multimodal model that \
                      supports up to 1 million tokens, released in June of 2025.",
        input_token_limit: 1_048_576,
        output_token_limit: 65_536,
        top_k: 64,
        thinking: true,
        min_cache_tokens: 1024,
    },
    ModelInfo {
        id: "gemini-2.5-pro",
        version: "2.5",
        display_name: "Gemini 2.5 Pro",
        description: "Stable release (June 17th, 2025) of Gemini 2.5 Pro",
        input_token_limit: 1_048_576,
        output_token_limit: 65_536,
        top_k: 64,
        thinking: true,
        min_cache_tokens: 4096,
    },
    ModelInfo {
        id: "gemini-2.0-flash",
        version: "2.0",
        display_name: "Gemini 2.0 Flash",
        description: "Gemini 2.0 Flash",
        input_token_limit: 1_048_576,
        output_token_limit: 8192,
        top_k: 40,
        thinking: false,
        min_cache_tokens: 4096,
    },
    ModelInfo {
        id: "gemini-2.5-flash-lite",
        version: "001",
        display_name: "Gemini 2.5 Flash-Lite",
        description: "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025",
        input_token_limit: 1_048_576,
        output_token_limit: 65_536,
        top_k: 64,
        thinking: true,
        min_cache_tokens: 2048,
    },
    ModelInfo {
        id: "gemini-3-pro-preview",
        version: "3-pro-preview-11-2025",
        display_name: "Gemini 3 Pro Preview",
        description: "Gemini 3 Pro Preview",
        input_token_limit: 1_048_576,
        output_token_limit: 65_536,
        top_k: 64,
        thinking: true,
        min_cache_tokens: 4096,
    },
    ModelInfo {
        id: "gemini-3-flash-preview",
        version: "3-flash-preview-12-2025",
        display_name: "Gemini 3 Flash Preview",
        description: "Gemini 3 Flash Preview",
        input_token_limit: 1_048_576,
        output_token_limit: 65_536,
        top_k: 64,
        thinking: true,
        min_cache_tokens: 1024,
    },
];

/// The model `id` (`gemini-2.5-flash` or `models/gemini-2.5-flash`), if it is served.
pub fn find(id: &str) -> Option<&'static ModelInfo> {
    let id = id.strip_prefix("models/").unwrap_or(id);
    MODELS.iter().find(|m| m.id == id)
}

impl ModelInfo {
    /// Whether answers carry a `thoughtSignature` on an empty last text part, as Gemini 3
    /// models' do (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
    pub fn signs_thoughts(&self) -> bool {
        self.id.starts_with("gemini-3")
    }

    /// The `Model` resource as `models.get` writes it (`thinking` only when true, as Gemini
    /// leaves it out for older models).
    pub fn resource(&self) -> Value {
        let mut model = json!({
            "name": format!("models/{}", self.id),
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": METHODS,
            "temperature": 1,
            "topP": 0.95,
            "topK": self.top_k,
            "maxTemperature": 2,
        });
        if self.thinking {
            model["thinking"] = json!(true);
        }
        model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_find_a_model_and_others_none() {
        assert_eq!(find("models/gemini-2.5-pro").map(|m| m.id), Some("gemini-2.5-pro"));
        assert_eq!(find("gemini-2.5-flash").map(|m| m.min_cache_tokens), Some(1024));
        assert!(find("gemini-1.0-pro").is_none() && find("").is_none());
        assert!(find("gemini-3-pro-preview").unwrap().signs_thoughts());
        assert!(!find("gemini-2.5-flash").unwrap().signs_thoughts());
        assert!(find("gemini-2.0-flash").unwrap().resource().get("thinking").is_none());
    }
}
