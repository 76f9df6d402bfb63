//! # parley-chat — Parley's conversation engine, without Leptos
//!
//! One chat turn, from the conversation a page sends to the events of Gemini's answer
//! ([`Engine::turn`]), as a sequence of named steps ([`turn`]): the page's summary put in place
//! of the turns it covers, every File checked and the expired ones replaced, the conversation
//! fitted into the context budget ([`summary`]), its files sent from a context cache
//! ([`caching`]), and — when Gemini refuses — the one fallback its refusal calls for
//! ([`turn::Fallback`]). Around it: the models a person may pick and the context budget
//! ([`models`]), the fair slots towards Gemini ([`slots`]), and the meter and budgets of every
//! call on the site's key ([`budget`]).
//!
//! It acts for a [`Principal`] from a [`ClientAddress`] given to it (it reads no request), and
//! fails with its own [`ChatError`]; the web framework's crate maps that to what the page shows.

pub mod budget;
pub mod caching;
mod error;
pub mod models;
pub mod share;
pub mod slots;
pub mod summary;
pub mod sync;
pub mod turn;

use std::time::Duration;

pub use error::{count_upstream_error, note_upstream_error, ChatError};
use parley_files::Lifecycle;
pub use parley_store::{ClientAddress, Principal};
pub use turn::{file_uris, precheck, uploaded, Answer, Treated, MAX_FILES_PER_REQUEST};

/// What the engine is made of (see [`Engine::new`]).
#[derive(Debug)]
pub struct EngineParts {
    /// Gemini (or the built-in emulator), the store, the retained originals and the rules of a
    /// File's life.
    pub files: Lifecycle,
    /// The models a person may pick (`PARLEY_MODELS`), the default first.
    pub models: models::Models,
    /// When the oldest turns are summarized (`PARLEY_CONTEXT_BUDGET`).
    pub context_budget: models::ContextBudget,
    /// Context caching, when offered (`PARLEY_CONTEXT_CACHING=opt-in`).
    pub caching: Option<caching::CachePolicy>,
    /// Signs the summaries made here (a key derived from the session secret).
    pub summary_signer: summary::Signer,
    /// Calls to Gemini in flight at once, shared fairly between principals and addresses.
    pub slots: slots::UpstreamSlots,
    /// How long a request waits for a slot towards Gemini before it is told the server is busy.
    pub upstream_wait: Duration,
    /// The meter of every call on the key, and the budgets it is held to.
    pub budgets: budget::Budgets,
}

/// The conversation engine. Cheap to share (`Arc` it); every field is its own.
#[derive(Debug)]
pub struct Engine {
    files: Lifecycle,
    models: models::Models,
    context_budget: models::ContextBudget,
    caching: Option<caching::CachePolicy>,
    /// Summaries made lately, so that a failed request's summary is not paid for twice.
    summaries: summary::Memo,
    summary_signer: summary::Signer,
    slots: slots::UpstreamSlots,
    upstream_wait: Duration,
    budgets: budget::Budgets,
}

impl Engine {
    /// The engine made of `parts`.
    pub fn new(parts: EngineParts) -> Engine {
        let EngineParts {
            files,
            models,
            context_budget,
            caching,
            summary_signer,
            slots,
            upstream_wait,
            budgets,
        } = parts;
        Engine {
            files,
            models,
            context_budget,
            caching,
            summaries: summary::Memo::default(),
            summary_signer,
            slots,
            upstream_wait,
            budgets,
        }
    }

    /// The meter and the budgets.
    pub fn budgets(&self) -> &budget::Budgets {
        &self.budgets
    }

    /// Gemini (or the built-in emulator), the store, the retained originals and the rules of a
    /// File's life.
    pub fn files(&self) -> &Lifecycle {
        &self.files
    }

    /// The models a person may pick.
    pub fn models(&self) -> &models::Models {
        &self.models
    }

    /// Whether "Cache files" is offered (`PARLEY_CONTEXT_CACHING=opt-in`).
    pub fn offers_caching(&self) -> bool {
        self.caching.is_some()
    }

    /// The slots towards Gemini (for the metrics).
    pub fn slots(&self) -> &slots::UpstreamSlots {
        &self.slots
    }

    /// A slot towards Gemini for `principal` at `address`, waiting up to the configured wait.
    ///
    /// # Errors
    /// [`ChatError::Busy`] when none frees up in time.
    pub async fn slot(
        &self,
        principal: &Principal,
        address: &ClientAddress,
    ) -> Result<slots::UpstreamSlot, ChatError> {
        self.slots.acquire(principal, address, self.upstream_wait).await
    }
}
