//! What each call on the site's key costs: Gemini's price per model ([`Prices`]) applied to
//! the tokens its `usageMetadata` reports ([`Tokens`]).
//!
//! The defaults (`prices.toml`, embedded) are Google's published prices
//! (<https://ai.google.dev/gemini-api/docs/pricing>, as of 2026-03-30; see
//! `docs/budgets.md`); `PARLEY_PRICES` names a file in the same form whose models replace
//! them. A model offered without a price is refused at start-up ([`Prices::check`]), never
//! priced at zero.

use std::{collections::HashMap, path::Path};

use serde::Deserialize;

/// The price table shipped with Parley.
const DEFAULTS: &str = include_str!("prices.toml");

/// One model's prices, US dollars per 1,000,000 tokens (`cache_storage`: per 1,000,000 tokens
/// per hour), as the price file writes them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Prompt tokens not read from a cache.
    pub input: f64,
    /// Audio prompt tokens, when they cost otherwise.
    #[serde(default)]
    pub audio_input: Option<f64>,
    /// Output tokens, thinking included.
    pub output: f64,
    /// Prompt tokens read from a context cache (when caching is offered for the model).
    #[serde(default)]
    pub cached: Option<f64>,
    /// Audio tokens read from a context cache, when they cost otherwise.
    #[serde(default)]
    pub audio_cached: Option<f64>,
    /// Keeping a context cache, per 1,000,000 tokens per hour.
    #[serde(default)]
    pub cache_storage: Option<f64>,
    /// Prompts longer than this many tokens pay the `long` prices.
    #[serde(default)]
    pub long_from: Option<u64>,
    /// The prices past `long_from`.
    #[serde(default)]
    pub long: Option<LongPrice>,
}

/// The prices of a long prompt (past [`ModelPrice::long_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongPrice {
    /// Prompt tokens not read from a cache.
    pub input: f64,
    /// Output tokens, thinking included.
    pub output: f64,
    /// Prompt tokens read from a cache.
    #[serde(default)]
    pub cached: Option<f64>,
}

/// The price file: `[models."<id>"]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    models: HashMap<String, ModelPrice>,
}

/// The tokens of one call, as Gemini reports them (or, for a call cut short, as received).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// `promptTokenCount` (cached tokens included).
    pub prompt: u64,
    /// Of those, audio (`promptTokensDetails`).
    pub audio_prompt: u64,
    /// `cachedContentTokenCount`.
    pub cached: u64,
    /// Of those, audio (`cacheTokensDetails`).
    pub audio_cached: u64,
    /// `candidatesTokenCount`.
    pub output: u64,
    /// `thoughtsTokenCount`.
    pub thinking: u64,
    /// Tokens written into a new context cache (priced as input).
    pub cache_write: u64,
    /// A context cache kept: its tokens times the seconds it is kept for.
    pub cache_token_seconds: u64,
}

impl Tokens {
    /// The tokens of Gemini's `usageMetadata`.
    pub fn of(usage: &gemini::UsageMetadata) -> Tokens {
        let audio = |details: &[gemini::ModalityTokenCount]| {
            details
                .iter()
                .filter(|d| d.modality == gemini::Modality::Audio)
                .map(|d| d.token_count)
                .sum()
        };
        Tokens {
            prompt: usage.prompt_token_count,
            audio_prompt: audio(&usage.prompt_tokens_details),
            cached: usage.cached_content_token_count,
            audio_cached: audio(&usage.cache_tokens_details),
            output: usage.candidates_token_count,
            thinking: usage.thoughts_token_count,
            ..Tokens::default()
        }
    }

    /// The ledger's row of one call of these tokens costing `nano_usd`.
    pub fn ledger(&self, nano_usd: i64) -> parley_store::Usage {
        let n = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        parley_store::Usage {
            calls: 1,
            prompt_tokens: n(self.prompt),
            cached_tokens: n(self.cached),
            output_tokens: n(self.output),
            thinking_tokens: n(self.thinking),
            cache_write_tokens: n(self.cache_write),
            nano_usd,
        }
    }
}

/// Why a price table was refused.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The file could not be read.
    #[error("the price file {path} could not be read: {error}")]
    Read {
        /// Its path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not a price table.
    #[error("the price file {path} is not a price table: {error}")]
    Parse {
        /// Its path.
        path: String,
        /// What is wrong, with the line.
        error: String,
    },
    /// A price is negative or not a number.
    #[error("the price of {model} is not a number of dollars at least 0")]
    Invalid {
        /// The model.
        model: String,
    },
    /// A model offered has no price.
    #[error(
        "{model} has no price: add it to the file PARLEY_PRICES names (dollars per 1M tokens)"
    )]
    Missing {
        /// The model.
        model: String,
    },
}

/// The price table: per model, in pico-dollars (10⁻¹²) per token, exact for any price with
/// up to six decimals per million tokens.
#[derive(Debug, Clone)]
pub struct Prices {
    models: HashMap<String, ModelPrice>,
}

impl Prices {
    /// The defaults, with `file`'s models (a path to a price file) replacing theirs.
    ///
    /// # Errors
    /// [`PriceError`] when the file cannot be read, is not a price table, or holds a negative
    /// price.
    pub fn load(file: Option<&Path>) -> Result<Prices, PriceError> {
        let mut models = parse(DEFAULTS, "(built in)")?;
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|error| PriceError::Read { path: shown.clone(), error })?;
            models.extend(parse(&text, &shown)?);
        }
        Ok(Prices { models })
    }

    /// Checks that every one of `models` has a price.
    ///
    /// # Errors
    /// [`PriceError::Missing`] for the first without one.
    pub fn check<'a>(&self, models: impl IntoIterator<Item = &'a str>) -> Result<(), PriceError> {
        match models.into_iter().find(|m| !self.models.contains_key(*m)) {
            Some(model) => Err(PriceError::Missing { model: model.to_string() }),
            None => Ok(()),
        }
    }

    /// What `tokens` cost with `model`, nano-dollars (rounded up); 0 for a model without a
    /// price (none is offered: [`Prices::check`]).
    pub fn cost(&self, model: &str, tokens: &Tokens) -> i64 {
        let Some(price) = self.models.get(model) else { return 0 };
        let long = price.long.filter(|_| price.long_from.is_some_and(|from| tokens.prompt > from));
        let input = long.map_or(price.input, |l| l.input);
        let output = long.map_or(price.output, |l| l.output);
        let cached = long.and_then(|l| l.cached).or(price.cached).unwrap_or(input);
        let audio_input = price.audio_input.unwrap_or(input);
        let audio_cached = price.audio_cached.unwrap_or(cached);
        let fresh = tokens.prompt.saturating_sub(tokens.cached);
        let fresh_audio = tokens.audio_prompt.saturating_sub(tokens.audio_cached).min(fresh);
        let audio_cached_tokens = tokens.audio_cached.min(tokens.cached);
        let pico = [
            (fresh - fresh_audio, input),
            (fresh_audio, audio_input),
            (tokens.cached - audio_cached_tokens, cached),
            (audio_cached_tokens, audio_cached),
            (tokens.output.saturating_add(tokens.thinking), output),
            (tokens.cache_write, input),
        ]
        .iter()
        .map(|(n, dollars)| u128::from(*n) * pico_per_token(*dollars))
        .sum::<u128>()
            + u128::from(tokens.cache_token_seconds)
                * pico_per_token(price.cache_storage.unwrap_or(0.0))
                / 3600;
        i64::try_from(pico.div_ceil(1000)).unwrap_or(i64::MAX)
    }

    /// The most output tokens `nano_usd` pays for with `model` after a prompt of
    /// `prompt_tokens` (thinking is priced as output).
    pub fn output_for(&self, model: &str, prompt_tokens: u64, nano_usd: i64) -> u64 {
        let Some(price) = self.models.get(model) else { return 0 };
        let long = price.long.filter(|_| price.long_from.is_some_and(|from| prompt_tokens > from));
        let per = pico_per_token(long.map_or(price.output, |l| l.output));
        if per == 0 {
            return u64::MAX;
        }
        let pico = u128::try_from(nano_usd.max(0)).unwrap_or(0) * 1000;
        u64::try_from(pico / per).unwrap_or(u64::MAX)
    }
}

/// `dollars` per 1,000,000 tokens as pico-dollars per token.
fn pico_per_token(dollars: f64) -> u128 {
    (dollars * 1e6).round().max(0.0) as u128
}

/// The models of a price file's `text` (`path` names it in errors).
fn parse(text: &str, path: &str) -> Result<HashMap<String, ModelPrice>, PriceError> {
    let file: PriceFile = toml::from_str(text)
        .map_err(|e| PriceError::Parse { path: path.to_string(), error: e.to_string() })?;
    for (model, price) in &file.models {
        let long = price.long.map(|l| [l.input, l.output, l.cached.unwrap_or(0.0)]);
        let all = [price.input, price.output]
            .into_iter()
            .chain(
                [price.audio_input, price.cached, price.audio_cached, price.cache_storage]
                    .into_iter()
                    .flatten(),
            )
            .chain(long.into_iter().flatten());
        if all.into_iter().any(|p| !p.is_finite() || p < 0.0) {
            return Err(PriceError::Invalid { model: model.clone() });
        }
    }
    Ok(file.models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_price_every_offered_model() {
        let prices = Prices::load(None).unwrap();
        prices
            .check([
                "gemini-2.5-flash",
                "gemini-2.5-pro",
                "gemini-2.5-flash-lite",
                "gemini-3-pro-preview",
            ])
            .unwrap();
        assert!(matches!(prices.check(["gemini-9"]), Err(PriceError::Missing { .. })));
    }

    #[test]
    fn cached_tokens_are_charged_once_at_the_cached_rate() {
        let prices = Prices::load(None).unwrap();
        // 1M prompt tokens on 2.5 Flash: $0.30; 1M output: $2.50.
        let plain = Tokens { prompt: 1_000_000, output: 1_000_000, ..Tokens::default() };
        assert_eq!(prices.cost("gemini-2.5-flash", &plain), 2_800_000_000);
        // Of the prompt, 600k from a cache: 400k × 0.30 + 600k × 0.03.
        let cached = Tokens { cached: 600_000, ..plain };
        assert_eq!(
            prices.cost("gemini-2.5-flash", &cached),
            120_000_000 + 18_000_000 + 2_500_000_000
        );
        // Thinking is output; audio its own price.
        let audio = Tokens { prompt: 1000, audio_prompt: 1000, thinking: 100, ..Tokens::default() };
        assert_eq!(prices.cost("gemini-2.5-flash", &audio), 1_000_000 + 250_000);
        // A long prompt on 2.5 Pro pays the long prices.
        let long = Tokens { prompt: 200_001, ..Tokens::default() };
        assert_eq!(prices.cost("gemini-2.5-pro", &long), 500_002_500);
        assert_eq!(
            prices.cost("gemini-2.5-flash", &Tokens { output: 1, ..Tokens::default() }),
            2500
        );
        let one_cached = Tokens { prompt: 1, cached: 1, ..Tokens::default() };
        assert_eq!(prices.cost("gemini-2.5-pro", &one_cached), 125);
        // A cache made: its tokens as input, and an hour of storage.
        let made = Tokens {
            cache_write: 1_000_000,
            cache_token_seconds: 3_600_000_000,
            ..Tokens::default()
        };
        assert_eq!(prices.cost("gemini-2.5-flash", &made), 300_000_000 + 1_000_000_000);
        assert_eq!(prices.output_for("gemini-2.5-flash", 10, 2_500_000), 1000);
    }

    #[test]
    fn a_price_file_replaces_models_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(&path, "[models.\"gemini-2.5-flash\"]\ninput = 1\noutput = 2\n[models.mine]\ninput = 0\noutput = 0\n").unwrap();
        let prices = Prices::load(Some(&path)).unwrap();
        prices.check(["mine", "gemini-2.5-pro"]).unwrap();
        assert_eq!(
            prices.cost("gemini-2.5-flash", &Tokens { prompt: 1_000_000, ..Tokens::default() }),
            1_000_000_000
        );
        std::fs::write(&path, "[models.x]\ninput = -1\noutput = 2\n").unwrap();
        assert!(matches!(Prices::load(Some(&path)), Err(PriceError::Invalid { .. })));
        std::fs::write(&path, "[models.x]\ninput = 1\n").unwrap();
        assert!(matches!(Prices::load(Some(&path)), Err(PriceError::Parse { .. })));
        assert!(matches!(
            Prices::load(Some(&dir.path().join("none"))),
            Err(PriceError::Read { .. })
        ));
    }
}
