//! The models a person may pick (`PARLEY_MODELS`), what Gemini says of each (`models.get`:
//! `displayName`, `inputTokenLimit`), and the context budget (`PARLEY_CONTEXT_BUDGET`) that
//! decides when the oldest turns are summarized.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use parley_protocol::model::ModelChoice;

use crate::ChatError;

/// The allow-list of models and what is known of them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Models {
    /// The models offered, the default first, no repeats.
    allowed: Vec<ModelEntry>,
    /// `models.get` answers, by model id: fetched at start-up, or on first use when that failed.
    known: Arc<RwLock<HashMap<String, gemini::Model>>>,
    /// When `models.get` last failed, by model id: not asked again for [`ASK_AGAIN_AFTER`].
    failed: Arc<RwLock<HashMap<String, std::time::Instant>>>,
}

/// How long a model Gemini could not describe is not asked about again.
const ASK_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// Heaviest weight a model may carry in the chat rate limit.
pub const MAX_WEIGHT: u32 = 1_000;

/// One entry of `PARLEY_MODELS`: a model id (with or without `models/`) and, after `*`, how
/// many chat requests one request with it counts as in the chat rate limit — `gemini-2.5-pro*4`
/// (default 1), so that a dearer model is asked less often on the site's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The model id, without `models/` (empty for an empty entry, which is skipped).
    pub id: String,
    /// Chat requests one request with it counts as, 1 to [`MAX_WEIGHT`].
    pub weight: u32,
}

impl std::str::FromStr for ModelEntry {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, weight) = match text.split_once('*') {
            Some((id, weight)) => {
                let weight: u32 = weight.trim().parse().map_err(|_| {
                    format!(
                        "“{text}”: write a model's weight as a whole number, e.g. gemini-2.5-pro*4"
                    )
                })?;
                if !(1..=MAX_WEIGHT).contains(&weight) {
                    return Err(format!("“{text}”: a weight is from 1 to {MAX_WEIGHT}"));
                }
                (id, weight)
            }
            None => (text, 1),
        };
        Ok(ModelEntry { id: bare(id.trim()).to_string(), weight })
    }
}

impl Models {
    /// `default` (`PARLEY_MODEL`) and the others a person may pick (`PARLEY_MODELS`). The
    /// default is always allowed and comes first (with the weight its entry gives, else 1).
    pub fn new(default: &str, allowed: &[ModelEntry]) -> Self {
        let default = bare(default.trim());
        let weight_of_default =
            allowed.iter().find(|m| m.id == default).map_or(1, |entry| entry.weight);
        let mut entries = vec![ModelEntry { id: default.to_string(), weight: weight_of_default }];
        for entry in allowed.iter().filter(|m| !m.id.is_empty()) {
            if !entries.iter().any(|known| known.id == entry.id) {
                entries.push(entry.clone());
            }
        }
        Models { allowed: entries, known: Arc::default(), failed: Arc::default() }
    }

    /// How many chat requests one request with model `id` counts as (1 for a model not
    /// offered).
    pub fn weight(&self, id: &str) -> u32 {
        self.allowed.iter().find(|m| m.id == id).map_or(1, |m| m.weight)
    }

    /// The default model's id.
    pub fn default_id(&self) -> &str {
        &self.allowed[0].id
    }

    /// Asks Gemini (`models.get`) about every allowed model not known yet; one that cannot be
    /// had is logged and asked about again on its first use.
    pub async fn learn(&self, gemini: &gemini::Client) {
        for entry in self.allowed.clone() {
            self.info(gemini, &entry.id).await;
        }
    }

    /// What Gemini says of `id`, asked once; after a failure (logged), not asked again for
    /// [`ASK_AGAIN_AFTER`].
    async fn info(&self, gemini: &gemini::Client, id: &str) -> Option<gemini::Model> {
        if let Some(model) = self.read().get(id) {
            return Some(model.clone());
        }
        let failed =
            self.failed.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).copied();
        if failed.is_some_and(|at| at.elapsed() < ASK_AGAIN_AFTER) {
            return None;
        }
        match gemini.get_model(id).await {
            Ok(model) => {
                self.known
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id.to_string(), model.clone());
                Some(model)
            }
            Err(e) => {
                crate::note_upstream_error(&e);
                tracing::warn!(
                    model = id,
                    "models.get failed: a budget in % of its limit does nothing until it answers"
                );
                self.failed
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id.to_string(), std::time::Instant::now());
                None
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, gemini::Model>> {
        self.known.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The model a request uses: `asked` (with or without `models/`) when it is allowed, the
    /// default when nothing is asked.
    ///
    /// # Errors
    /// [`ChatError::BadRequest`] naming the allowed models when `asked` is not one of them.
    pub fn choose(&self, asked: Option<&str>) -> Result<String, ChatError> {
        let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(self.default_id().to_string());
        };
        let id = bare(asked);
        if self.allowed.iter().any(|m| m.id == id) {
            return Ok(id.to_string());
        }
        let shown: String = id.chars().take(80).collect();
        let offered: Vec<&str> = self.allowed.iter().map(|m| m.id.as_str()).collect();
        Err(ChatError::BadRequest(format!(
            "the model “{shown}” is not offered here; choose one of: {}.",
            offered.join(", ")
        )))
    }

    /// The allowed models as the "Model" select lists them, the default first.
    pub fn choices(&self) -> Vec<ModelChoice> {
        let known = self.read();
        self.allowed
            .iter()
            .map(|ModelEntry { id, .. }| {
                let model = known.get(id);
                ModelChoice {
                    id: id.clone(),
                    display_name: model
                        .map(|m| m.display_name.clone())
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| id.clone()),
                    input_token_limit: model.map_or(0, |m| m.input_token_limit),
                }
            })
            .collect()
    }

    /// The most tokens a request to `id` may have, when Gemini says its `inputTokenLimit`:
    /// one under it, as Gemini refuses "The input token count (N) exceeds the maximum number
    /// of tokens allowed (1048575)." for a model whose `inputTokenLimit` is 1,048,576
    /// (`docs/gemini-protocol.md`).
    pub async fn input_token_limit(&self, gemini: &gemini::Client, id: &str) -> Option<u64> {
        let limit = self.info(gemini, id).await.map(|m| m.input_token_limit)?;
        (limit > 1).then(|| limit - 1)
    }

    /// `id`'s `outputTokenLimit` (what `models.get` says), when known.
    pub async fn output_token_limit(&self, gemini: &gemini::Client, id: &str) -> Option<u64> {
        self.info(gemini, id).await.map(|m| m.output_token_limit).filter(|l| *l > 0)
    }
}

/// `gemini-2.5-flash` from `models/gemini-2.5-flash`.
fn bare(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// How many prompt tokens a request may send before its oldest turns are summarized
/// (`PARLEY_CONTEXT_BUDGET`): a count (`200000`) or a share of the model's
/// `inputTokenLimit` (`80%`, the default); `0` or `off` never summarizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ContextBudget {
    /// Never summarize.
    Off,
    /// At most this many tokens.
    Tokens(u64),
    /// At most this share (0–1] of the model's `inputTokenLimit`.
    Share(f64),
}

impl Default for ContextBudget {
    fn default() -> Self {
        ContextBudget::Share(0.8)
    }
}

impl ContextBudget {
    /// The budget in tokens for a model whose `inputTokenLimit` is `limit` (`None` when the
    /// budget is a share and the limit is unknown, or when it is off).
    pub fn tokens(self, limit: Option<u64>) -> Option<u64> {
        match self {
            ContextBudget::Off => None,
            ContextBudget::Tokens(n) => Some(n),
            ContextBudget::Share(share) => limit.map(|l| (l as f64 * share).floor() as u64),
        }
    }
}

impl std::str::FromStr for ContextBudget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "0" || text.eq_ignore_ascii_case("off") {
            return Ok(ContextBudget::Off);
        }
        if let Some(percent) = text.strip_suffix('%') {
            let percent: f64 = percent
                .trim()
                .parse()
                .map_err(|_| format!("“{text}” is not a percentage such as 80%"))?;
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(format!("{percent}% is not between 0 and 100%"));
            }
            return Ok(ContextBudget::Share(percent / 100.0));
        }
        let tokens: u64 = text.replace('_', "").parse().map_err(|_| {
            format!("“{text}” is neither a token count (200000) nor a percentage (80%)")
        })?;
        Ok(ContextBudget::Tokens(tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_comes_first_and_others_are_refused() {
        let entries: Vec<ModelEntry> = ["models/gemini-2.5-pro*4", "gemini-2.5-flash", " "]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
        let models = Models::new("gemini-2.5-flash", &entries);
        let ids: Vec<String> = models.choices().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["gemini-2.5-flash", "gemini-2.5-pro"]);
        assert_eq!((models.weight("gemini-2.5-flash"), models.weight("gemini-2.5-pro")), (1, 4));
        for bad in ["gemini-2.5-pro*", "gemini-2.5-pro*0", "gemini-2.5-pro*two", "x*1001"] {
            assert!(bad.parse::<ModelEntry>().is_err(), "{bad}");
        }
        let heavy_default: ModelEntry = "gemini-2.5-flash*2".parse().unwrap();
        assert_eq!(Models::new("gemini-2.5-flash", &[heavy_default]).weight("gemini-2.5-flash"), 2);
        assert_eq!(models.choose(None).unwrap(), "gemini-2.5-flash");
        assert_eq!(models.choose(Some("models/gemini-2.5-pro")).unwrap(), "gemini-2.5-pro");
        let refused = models.choose(Some("gemini-1.0-ultra")).unwrap_err();
        assert!(refused.to_string().contains("gemini-1.0-ultra"), "{refused}");
    }

    #[test]
    fn budgets_are_counts_or_shares() {
        assert_eq!("80%".parse::<ContextBudget>().unwrap().tokens(Some(1_000_000)), Some(800_000));
        assert_eq!("200_000".parse::<ContextBudget>().unwrap().tokens(None), Some(200_000));
        assert_eq!("off".parse::<ContextBudget>().unwrap().tokens(Some(10)), None);
        assert_eq!(ContextBudget::default().tokens(None), None);
        assert!("150%".parse::<ContextBudget>().is_err());
        assert!("lots".parse::<ContextBudget>().is_err());
    }
}
