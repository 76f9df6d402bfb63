//! Budgets on the site's key, as the operator sees them: the settings ([`BudgetArgs`]), the
//! `/admin` page ([`admin`]) and `parley usage` ([`usage`]). Metering and enforcing are the
//! engine's ([`parley_chat::budget`]).

pub mod admin;
mod page;
pub mod usage;

use std::path::PathBuf;

use parley_chat::budget::{BudgetConfig, BudgetSetting, Budgets, Prices};

use crate::error::ServerError;

/// What each person, and the site, may spend on the key.
#[derive(Debug, Clone, clap::Args)]
pub struct BudgetArgs {
    /// What each anonymous session may spend on the site's key: `off`, dollars per UTC day or
    /// month (`$0.25/day`, `$20/month`) or tokens (`2M tokens/day`). An address may spend four
    /// times it.
    #[arg(long = "budget-anonymous", env = "PARLEY_BUDGET_ANONYMOUS", default_value = "off")]
    pub anonymous: BudgetSetting,

    /// What each signed-in account may spend (an operator may set one account's own on
    /// `/admin`): `off`, `$5/day`, `$20/month`, `2M tokens/day`.
    #[arg(long = "budget-account", env = "PARLEY_BUDGET_ACCOUNT", default_value = "off")]
    pub account: BudgetSetting,

    /// What the whole site may spend on the key: a hard stop for everyone once reached, until
    /// it renews at 00:00 UTC. `off` for none.
    #[arg(long = "budget-site", env = "PARLEY_BUDGET_SITE", default_value = "$10/day")]
    pub site: BudgetSetting,

    /// A price file (TOML: `[models."<id>"]` with `input`, `output`, `cached`,
    /// `cache_storage`, … in dollars per 1M tokens) whose models replace the built-in prices.
    /// A model offered without a price is refused at start-up.
    #[arg(long = "prices", env = "PARLEY_PRICES")]
    pub prices: Option<PathBuf>,
}

impl BudgetArgs {
    /// The meter and budgets over `store`, every one of `models` priced.
    ///
    /// # Errors
    /// [`ServerError::Config`] when the price file cannot be read or a model has no price.
    pub fn budgets<'a>(
        &self,
        store: parley_store::Store,
        models: impl IntoIterator<Item = &'a str>,
    ) -> Result<Budgets, ServerError> {
        let prices = Prices::load(self.prices.as_deref())
            .map_err(|e| ServerError::Config(format!("PARLEY_PRICES: {e}")))?;
        prices.check(models).map_err(|e| ServerError::Config(e.to_string()))?;
        let config =
            BudgetConfig { anonymous: self.anonymous, account: self.account, site: self.site };
        let clock: parley_chat::budget::Clock = std::sync::Arc::new(parley_files::time::now_ms);
        Ok(Budgets::new(store, prices, config, clock))
    }
}
