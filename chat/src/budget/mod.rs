//! What each person may spend on the site's key, and what they did spend: every call Parley
//! makes on it is metered from Gemini's own `usageMetadata` and priced ([`prices`]), written
//! to the store's ledger for each scope it is charged to (the person's — session or account —,
//! their address's when anonymous, the site's), and, where a budget applies, reserved before it
//! is made ([`Budgets::reserve`]) and settled to what Gemini reports after
//! ([`Meter`]).
//!
//! Budgets (`PARLEY_BUDGET_ANONYMOUS`, `PARLEY_BUDGET_ACCOUNT`, `PARLEY_BUDGET_SITE`, and an
//! account's own, set by an operator) are [`Budget`]s: dollars or tokens per UTC day or month.

pub mod prices;

use std::{str::FromStr, sync::Arc};

use parley_store::{
    usage::{day_of, Hold, Limit, Reserved, Unit, DAY_MS},
    Principal, Scope, Store, StoreError,
};
pub use prices::{PriceError, Prices, Tokens};

use crate::{ChatError, ClientAddress};

/// The period a budget renews on, at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Every day.
    Day,
    /// The first of every month.
    Month,
}

impl Period {
    /// The first UTC day of the period holding `now_ms`, and when the next one starts (ms).
    pub fn bounds(self, now_ms: i64) -> (i64, i64) {
        let today = day_of(now_ms);
        match self {
            Period::Day => (today, (today + 1) * DAY_MS),
            Period::Month => {
                use chrono::{Datelike, Months, NaiveDate};
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
                let date = epoch + chrono::Days::new(u64::try_from(today).unwrap_or(0));
                let first = date.with_day(1).expect("the first of a month");
                let next = first + Months::new(1);
                let days = |d: NaiveDate| (d - epoch).num_days();
                (days(first), days(next) * DAY_MS)
            }
        }
    }

    /// `today` / `this month`.
    fn this(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Month => "this month",
        }
    }
}

/// How much a budget allows per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Nano-dollars (10⁻⁹ US dollars).
    NanoUsd(i64),
    /// Tokens (prompt, output, thinking and cache writes).
    Tokens(i64),
}

impl Amount {
    fn unit(self) -> Unit {
        match self {
            Amount::NanoUsd(_) => Unit::NanoUsd,
            Amount::Tokens(_) => Unit::Tokens,
        }
    }

    fn value(self) -> i64 {
        match self {
            Amount::NanoUsd(n) | Amount::Tokens(n) => n,
        }
    }

    /// `n` in this amount's unit, as people read it: `$0.18`, `1.2M tokens`.
    fn show(self, n: i64) -> String {
        match self {
            Amount::NanoUsd(_) => dollars(n),
            Amount::Tokens(_) => format!("{} tokens", tokens(n)),
        }
    }

    /// This amount times `k`.
    fn times(self, k: i64) -> Amount {
        match self {
            Amount::NanoUsd(n) => Amount::NanoUsd(n.saturating_mul(k)),
            Amount::Tokens(n) => Amount::Tokens(n.saturating_mul(k)),
        }
    }
}

/// `nano` nano-dollars as dollars and cents (`$0.18`; under a cent, `$0.0042`).
fn dollars(nano: i64) -> String {
    let nano = nano.max(0);
    if nano > 0 && nano < 10_000_000 {
        return format!("${:.4}", nano as f64 / 1e9);
    }
    format!("${}.{:02}", nano / 1_000_000_000, (nano % 1_000_000_000) / 10_000_000)
}

/// A token count as people read it: `950`, `12k`, `1.2M`.
fn tokens(n: i64) -> String {
    let n = n.max(0);
    let trim = |x: f64| {
        let text = format!("{x:.1}");
        text.trim_end_matches(".0").to_string()
    };
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", trim(n as f64 / 1e3)),
        _ => format!("{}M", trim(n as f64 / 1e6)),
    }
}

/// A budget: an amount per period (`$0.25/day`, `$20/month`, `2M tokens/day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// How much.
    pub amount: Amount,
    /// Per what.
    pub period: Period,
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let period = match self.period {
            Period::Day => "day",
            Period::Month => "month",
        };
        match self.amount {
            Amount::NanoUsd(n) => {
                let text = format!("{:.9}", n as f64 / 1e9);
                let text = text.trim_end_matches('0');
                let text = if text.ends_with('.') { format!("{text}00") } else { text.to_string() };
                write!(f, "${text}/{period}")
            }
            Amount::Tokens(n) => write!(f, "{n} tokens/{period}"),
        }
    }
}

/// A budget setting: `off`, or a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetSetting(pub Option<Budget>);

/// Why a budget's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a budget: write off, an amount in dollars per day or month ($0.25/day, \
     $20/month) or tokens (2M tokens/day)"
)]
pub struct BudgetParseError(String);

impl FromStr for BudgetSetting {
    type Err = BudgetParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BudgetParseError(text.to_string());
        let clean = text.trim().to_ascii_lowercase();
        if clean == "off" {
            return Ok(BudgetSetting(None));
        }
        let (amount, period) = clean.rsplit_once('/').ok_or_else(bad)?;
        let period = match period.trim() {
            "day" | "d" => Period::Day,
            "month" | "mo" => Period::Month,
            _ => return Err(bad()),
        };
        let amount = amount.trim();
        let amount = if let Some(usd) = amount.strip_prefix('$') {
            Amount::NanoUsd(nano_of(usd.trim()).ok_or_else(bad)?)
        } else {
            let count = amount.strip_suffix("tokens").ok_or_else(bad)?.trim();
            let (number, scale) = match count.char_indices().last() {
                Some((i, 'k')) => (&count[..i], 1e3),
                Some((i, 'm')) => (&count[..i], 1e6),
                Some((i, 'b')) => (&count[..i], 1e9),
                _ => (count, 1.0),
            };
            let n: f64 = number.trim().replace('_', "").parse().map_err(|_| bad())?;
            if !(n.is_finite() && n >= 0.0 && n * scale < 9e18) {
                return Err(bad());
            }
            Amount::Tokens((n * scale).round() as i64)
        };
        Ok(BudgetSetting(Some(Budget { amount, period })))
    }
}

/// Dollars written as a decimal (`0.25`, `20`) in nano-dollars, exactly.
fn nano_of(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 9
        || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction: i64 = format!("{fraction:0<9}").parse().ok()?;
    whole.checked_mul(1_000_000_000)?.checked_add(fraction)
}

/// The site's budgets: `off` for a scope without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetConfig {
    /// Each anonymous session's (its address may spend four times it).
    pub anonymous: BudgetSetting,
    /// Each signed-in account's, unless an operator set its own.
    pub account: BudgetSetting,
    /// Everything on the key: a hard stop.
    pub site: BudgetSetting,
}

/// An anonymous address may spend this many times the anonymous session's budget.
pub const ADDRESS_SHARES: i64 = 4;

/// A reservation leaves room for at least this many output tokens, or is refused: thinking
/// counts against `maxOutputTokens` (the emulator's thinking models think 64 tokens; Gemini's
/// often more), and an answer capped lower would often end before any text.
pub const MIN_ANSWER_TOKENS: u64 = 256;

/// A hold not settled by then (its process died) stops counting, ms.
pub const HOLD_MS: i64 = 15 * 60_000;

/// Whose budget a limit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The person's own (session or account).
    Own,
    /// Their address's, shared by the anonymous sessions behind it.
    Address,
    /// The whole site's.
    Site,
}

impl Whose {
    /// The label of `parley_budget_refusals_total`.
    pub fn label(self) -> &'static str {
        match self {
            Whose::Own => "own",
            Whose::Address => "address",
            Whose::Site => "site",
        }
    }
}

/// Whom one call is charged to (every scope of its ledger), and the budgets it must fit in.
#[derive(Debug, Clone)]
pub struct Charge {
    scopes: Vec<Scope>,
    limits: Vec<(Scope, Budget, Whose)>,
    anonymous: bool,
}

impl Charge {
    /// Whether a budget applies to the call.
    pub fn is_limited(&self) -> bool {
        !self.limits.is_empty()
    }
}

/// A refusal: what was spent of which budget, and when it renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Whose budget has no room.
    pub whose: Whose,
    /// The budget.
    pub budget: Budget,
    /// Spent (and held) in its period, in its unit.
    pub spent: i64,
    /// When it renews, ms from now.
    pub renews_in_ms: i64,
    /// Whether the person is anonymous.
    pub anonymous: bool,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (of, this) = (self.budget.amount, self.budget.period.this());
        let budget = of.show(of.value());
        let renews = renews_in(self.renews_in_ms);
        if self.spent < of.value() {
            // Room is left, but not for this request.
            let left = of.show(of.value() - self.spent);
            let whose = match self.whose {
                Whose::Own => "your",
                Whose::Address => "your network's",
                Whose::Site => "this site's",
            };
            return write!(
                f,
                "This message needs more than the {left} left of {whose} budget of {budget} \
                 {this}: shorten it, or wait until it renews in {renews}."
            );
        }
        let spent = of.show(of.value());
        match self.whose {
            Whose::Own => write!(f, "You have used {spent} of your budget of {budget} {this}"),
            Whose::Address => write!(
                f,
                "Visitors from your network have used {spent} of their budget of {budget} {this}"
            ),
            Whose::Site => write!(f, "This site has used {spent} of its budget of {budget} {this}"),
        }?;
        write!(f, ". It renews in {renews}.")
    }
}

/// `ms` as people read a wait: `3 h 12 min`, `45 min`, `2 days 3 h`.
fn renews_in(ms: i64) -> String {
    let minutes = (ms.max(0) + 59_999) / 60_000;
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{} min", minutes.max(1)),
        (0, _) => format!("{hours} h {minutes} min"),
        (1, _) => format!("1 day {hours} h"),
        _ => format!("{days} days {hours} h"),
    }
}

/// A call's reservation, until it is settled.
#[derive(Debug, Clone)]
pub struct Held {
    id: String,
    /// The most output the call may produce (its `maxOutputTokens`).
    pub max_output_tokens: u64,
}

/// Where time comes from: the system's clock, or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The meter and the budgets. Cheap to clone.
#[derive(Clone)]
pub struct Budgets(Arc<Inner>);

struct Inner {
    store: Store,
    prices: Prices,
    config: BudgetConfig,
    clock: Clock,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets").field("config", &self.0.config).finish_non_exhaustive()
    }
}

impl Budgets {
    /// The meter over `store`'s ledger with `prices`, the budgets of `config`, and time from
    /// `clock` (ms since the epoch; [`parley_files::time::now_ms`] but in tests).
    pub fn new(store: Store, prices: Prices, config: BudgetConfig, clock: Clock) -> Budgets {
        Budgets(Arc::new(Inner { store, prices, config, clock }))
    }

    /// The price table.
    pub fn prices(&self) -> &Prices {
        &self.0.prices
    }

    /// The budgets configured.
    pub fn config(&self) -> BudgetConfig {
        self.0.config
    }

    /// Whether signing in would lift `refusal`: it is an anonymous visitor's own or address
    /// budget, and an account's is off or larger in the same unit.
    pub fn sign_in_helps(&self, refusal: &Refusal) -> bool {
        if !refusal.anonymous || refusal.whose == Whose::Site {
            return false;
        }
        match (self.0.config.account.0, self.0.config.anonymous.0) {
            (None, _) => true,
            (Some(account), Some(anonymous)) => {
                account.amount.unit() == anonymous.amount.unit()
                    && account.amount.value() > anonymous.amount.value()
            }
            (Some(_), None) => false,
        }
    }

    /// Now, by the meter's clock, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        (self.0.clock)()
    }

    /// The budget of `account`: its own (set by an operator), else the account budget.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn account_budget(&self, account: &str) -> Result<Option<Budget>, StoreError> {
        let own = self.0.store.budget_override(&Scope::Account(account.to_string())).await?;
        Ok(match own.and_then(|text| text.parse::<BudgetSetting>().ok()) {
            Some(setting) => setting.0,
            None => self.0.config.account.0,
        })
    }

    /// Whom a call for `principal` at `address` is charged to, and the budgets it must fit.
    ///
    /// # Errors
    /// [`StoreError`] reading an account's own budget.
    pub async fn charge_for(
        &self,
        principal: &Principal,
        address: &ClientAddress,
    ) -> Result<Charge, StoreError> {
        let config = self.0.config;
        let (mut scopes, mut limits) = (Vec::new(), Vec::new());
        match &principal.account {
            Some(account) => {
                let scope = Scope::Account(account.to_string());
                if let Some(budget) = self.account_budget(account.as_str()).await? {
                    limits.push((scope.clone(), budget, Whose::Own));
                }
                scopes.push(scope);
            }
            None => {
                let (own, network) = (Scope::session(&principal.session), Scope::address(address));
                if let Some(budget) = config.anonymous.0 {
                    limits.push((own.clone(), budget, Whose::Own));
                    let shared = Budget { amount: budget.amount.times(ADDRESS_SHARES), ..budget };
                    limits.push((network.clone(), shared, Whose::Address));
                }
                scopes.extend([own, network]);
            }
        }
        if let Some(budget) = config.site.0 {
            limits.push((Scope::Site, budget, Whose::Site));
        }
        scopes.push(Scope::Site);
        Ok(Charge { scopes, limits, anonymous: principal.account.is_none() })
    }

    /// What is left of each of `charge`'s budgets now: (limit, left in its unit, renews at).
    async fn left(&self, charge: &Charge) -> Result<Vec<(Limit, Whose, i64, i64)>, ChatError> {
        let now = self.now_ms();
        let mut left = Vec::new();
        for (scope, budget, whose) in &charge.limits {
            let (since_day, renews_ms) = budget.period.bounds(now);
            let spent = self.0.store.spent(scope, since_day, now).await?;
            let unit = budget.amount.unit();
            let limit =
                Limit { scope: scope.clone(), since_day, unit, amount: budget.amount.value() };
            left.push((limit, *whose, budget.amount.value() - spent.in_unit(unit), renews_ms));
        }
        Ok(left)
    }

    /// The refusal of `charge`'s budget `whose`, which holds `spent`.
    fn refusal(&self, charge: &Charge, whose: Whose, spent: i64, renews_ms: i64) -> ChatError {
        let budget = charge.limits.iter().find(|l| l.2 == whose).map(|l| l.1).expect("a limit");
        metrics::counter!("parley_budget_refusals_total", "scope" => whose.label()).increment(1);
        ChatError::BudgetSpent(Refusal {
            whose,
            budget,
            spent,
            renews_in_ms: renews_ms - self.now_ms(),
            anonymous: charge.anonymous,
        })
    }

    /// Refuses at once when one of `charge`'s budgets is spent (before anything is asked of
    /// Gemini, summaries included).
    ///
    /// # Errors
    /// [`ChatError::BudgetSpent`]; the store's failure.
    pub async fn check(&self, charge: &Charge) -> Result<(), ChatError> {
        for (limit, whose, left, renews_ms) in self.left(charge).await? {
            if left <= 0 {
                return Err(self.refusal(charge, whose, limit.amount - left, renews_ms));
            }
        }
        Ok(())
    }

    /// Reserves what a call of `model` with a prompt of `prompt_tokens` may cost: the prompt
    /// and the most output it may produce — at most `output_limit` (the model's), and no more
    /// than what is left in every budget pays for. `None` when no budget applies (nothing to
    /// hold, no cap on the output).
    ///
    /// # Errors
    /// [`ChatError::BudgetSpent`] when a budget cannot pay for the prompt and
    /// [`MIN_ANSWER_TOKENS`] of output (nothing is held then); the store's failure.
    pub async fn reserve(
        &self,
        charge: &Charge,
        model: &str,
        prompt_tokens: u64,
        output_limit: u64,
    ) -> Result<Option<Held>, ChatError> {
        if charge.limits.is_empty() {
            return Ok(None);
        }
        let prices = &self.0.prices;
        let prompt_cost =
            prices.cost(model, &Tokens { prompt: prompt_tokens, ..Tokens::default() });
        let prompt_i64 = i64::try_from(prompt_tokens).unwrap_or(i64::MAX);
        let left = self.left(charge).await?;
        let mut max_output = output_limit.max(MIN_ANSWER_TOKENS);
        for (limit, whose, left, renews_ms) in &left {
            let affordable = match limit.unit {
                Unit::NanoUsd if *left > prompt_cost => {
                    prices.output_for(model, prompt_tokens, left - prompt_cost)
                }
                Unit::NanoUsd => 0,
                Unit::Tokens => u64::try_from(left - prompt_i64).unwrap_or(0),
            };
            if affordable < MIN_ANSWER_TOKENS {
                return Err(self.refusal(charge, *whose, limit.amount - left, *renews_ms));
            }
            max_output = max_output.min(affordable);
        }
        let most = Tokens { prompt: prompt_tokens, output: max_output, ..Tokens::default() };
        let now = self.now_ms();
        let hold = Hold {
            id: hex::encode(rand_bytes()),
            limits: left.iter().map(|l| l.0.clone()).collect(),
            nano_usd: prices.cost(model, &most),
            tokens: prompt_i64.saturating_add(i64::try_from(max_output).unwrap_or(i64::MAX)),
            now_ms: now,
            expires_ms: now + HOLD_MS,
        };
        match self.0.store.reserve(&hold).await? {
            Reserved::Held => Ok(Some(Held { id: hold.id, max_output_tokens: max_output })),
            Reserved::Refused { limit, spent } => {
                let (_, whose, _, renews_ms) =
                    left.iter().find(|l| l.0.scope == limit.scope).expect("one of the limits");
                Err(self.refusal(charge, *whose, spent, *renews_ms))
            }
        }
    }

    /// Gives `held` back unused (its call was not made).
    pub async fn release(&self, held: Held) {
        if let Err(e) = self.0.store.release_hold(&held.id).await {
            tracing::warn!(error = %e, "a hold could not be given back: it lapses by itself");
        }
    }

    /// Writes what a call of `model` used (`tokens`, priced here) to the ledger of every scope
    /// of `charge`, releasing `held`; counted in the metrics. A failure is logged (the hold
    /// lapses by itself).
    pub async fn settle(&self, charge: &Charge, held: Option<&Held>, model: &str, tokens: &Tokens) {
        let nano_usd = self.0.prices.cost(model, tokens);
        let usage = tokens.ledger(nano_usd);
        let now = self.now_ms();
        let hold = held.map(|h| h.id.as_str());
        if let Err(e) = self.0.store.settle(hold, &charge.scopes, model, &usage, now).await {
            tracing::error!(error = %e, model, nano_usd, "a call's usage could not be written");
        }
        let model = model.to_string();
        for (kind, n) in [
            ("prompt", tokens.prompt.saturating_sub(tokens.cached)),
            ("cached", tokens.cached),
            ("output", tokens.output),
            ("thinking", tokens.thinking),
            ("cache_write", tokens.cache_write),
        ] {
            metrics::counter!("parley_tokens_total", "kind" => kind, "model" => model.clone())
                .increment(n);
        }
        metrics::gauge!("parley_spend_dollars", "model" => model).increment(nano_usd as f64 / 1e9);
    }

    /// What is left of the person's own budget, as the page says it (`$0.18 of $0.25 left
    /// today`; `None` without one).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn view(&self, charge: &Charge) -> Result<Option<String>, ChatError> {
        let Some((_, budget, _)) = charge.limits.iter().find(|l| l.2 == Whose::Own) else {
            return Ok(None);
        };
        let left = self.left(charge).await?;
        let Some((_, _, left, _)) = left.iter().find(|l| l.1 == Whose::Own) else {
            return Ok(None);
        };
        let amount = budget.amount;
        Ok(Some(format!(
            "{} of {} left {}",
            match amount {
                Amount::NanoUsd(_) => dollars((*left).clamp(0, amount.value())),
                Amount::Tokens(_) => tokens((*left).clamp(0, amount.value())),
            },
            amount.show(amount.value()),
            budget.period.this()
        )))
    }
}

/// 16 random bytes.
fn rand_bytes() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// One call's meter: settles the call's reservation to what Gemini reports when it ends
/// ([`Meter::finish`]), or — stopped, broken, dropped — to what was received.
pub struct Meter {
    budgets: Budgets,
    charge: Charge,
    held: Option<Held>,
    model: String,
    /// The prompt's counted tokens (what is charged if Gemini never reported).
    prompt_tokens: u64,
    /// The last `usageMetadata` Gemini sent.
    usage: Option<gemini::UsageMetadata>,
    /// Characters of answer text received.
    received_chars: u64,
    settled: bool,
}

impl Meter {
    /// The meter of a call of `model` charged to `charge`, holding `held`.
    pub fn new(
        budgets: Budgets,
        charge: Charge,
        held: Option<Held>,
        model: &str,
        prompt_tokens: u64,
    ) -> Meter {
        Meter {
            budgets,
            charge,
            held,
            model: model.to_string(),
            prompt_tokens,
            usage: None,
            received_chars: 0,
            settled: false,
        }
    }

    /// A chunk arrived: its text's characters and its `usageMetadata`, if any.
    pub fn received(&mut self, text_chars: usize, usage: Option<&gemini::UsageMetadata>) {
        self.received_chars += text_chars as u64;
        if let Some(usage) = usage {
            self.usage = Some(usage.clone());
        }
    }

    /// The answer is complete: settles to Gemini's last `usageMetadata`; the page's view of
    /// the budget after it.
    pub async fn finish(mut self) -> Option<String> {
        self.settled = true;
        let tokens = match &self.usage {
            Some(usage) => Tokens::of(usage),
            None => self.arrived(),
        };
        self.budgets.settle(&self.charge, self.held.as_ref(), &self.model, &tokens).await;
        self.budgets.view(&self.charge).await.ok().flatten()
    }

    /// The call was refused (nothing was spent): its hold is given back.
    pub async fn cancel(mut self) {
        self.settled = true;
        if let Some(held) = self.held.take() {
            self.budgets.release(held).await;
        }
    }

    /// What was received of an answer that did not complete: the prompt, the thinking
    /// reported, and the text's tokens reckoned at four characters each (at most what Gemini
    /// last reported).
    fn arrived(&self) -> Tokens {
        let text = self.received_chars.div_ceil(4);
        match &self.usage {
            Some(usage) => {
                Tokens { output: text.min(usage.candidates_token_count), ..Tokens::of(usage) }
            }
            None => Tokens { prompt: self.prompt_tokens, output: text, ..Tokens::default() },
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (budgets, charge, held) = (self.budgets.clone(), self.charge.clone(), self.held.take());
        let (model, tokens) = (self.model.clone(), self.arrived());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                budgets.settle(&charge, held.as_ref(), &model, &tokens).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use parley_store::SessionId;

    use super::*;

    /// Budgets over an in-memory store on a clock the test moves; the clock's hand.
    fn budgets(config: BudgetConfig, start_ms: i64) -> (Budgets, Arc<AtomicI64>) {
        let hand = Arc::new(AtomicI64::new(start_ms));
        let clock: Clock = {
            let hand = hand.clone();
            Arc::new(move || hand.load(Ordering::SeqCst))
        };
        let store = Store::in_memory().unwrap();
        (Budgets::new(store, Prices::load(None).unwrap(), config, clock), hand)
    }

    fn setting(text: &str) -> BudgetSetting {
        text.parse().unwrap()
    }

    /// Reserves and settles one call of `tokens` prompt and output each; the refusal if any.
    async fn spend(budgets: &Budgets, charge: &Charge, tokens: u64) -> Result<u64, Refusal> {
        match budgets.reserve(charge, "gemini-2.5-flash", tokens, 65_536).await {
            Ok(held) => {
                let most = held.as_ref().map_or(u64::MAX, |h| h.max_output_tokens);
                let used = Tokens { prompt: tokens, output: tokens.min(most), ..Tokens::default() };
                budgets.settle(charge, held.as_ref(), "gemini-2.5-flash", &used).await;
                Ok(most)
            }
            Err(ChatError::BudgetSpent(refusal)) => Err(refusal),
            Err(e) => panic!("{e}"),
        }
    }

    fn anonymous(n: u8) -> Principal {
        Principal::anonymous(SessionId::parse(&format!("{n:02x}").repeat(16)).unwrap())
    }

    #[tokio::test]
    async fn each_scope_refuses_and_renews() {
        // 2026-12-03T22:00:00Z.
        let night = 1_796_335_200_000;
        let config = BudgetConfig {
            anonymous: setting("10000 tokens/day"),
            account: setting("off"),
            site: setting("90000 tokens/month"),
        };
        let (budgets, hand) = budgets(config, night);
        let here = ClientAddress("203.0.113.7".into());
        let ann = budgets.charge_for(&anonymous(1), &here).await.unwrap();
        // The session's own: each answer may spend what is left after its prompt.
        assert_eq!(spend(&budgets, &ann, 2000).await, Ok(8000));
        assert_eq!(spend(&budgets, &ann, 2000).await, Ok(4000));
        assert_eq!(spend(&budgets, &ann, 1000).await, Ok(1000), "10000 - 8000 - 1000 left");
        let refused = spend(&budgets, &ann, 10).await.unwrap_err();
        assert_eq!((refused.whose, refused.spent), (Whose::Own, 10000));
        assert_eq!(refused.renews_in_ms, 2 * 3_600_000, "at midnight UTC");
        assert!(budgets.sign_in_helps(&refused), "accounts have no budget");
        assert!(budgets.check(&ann).await.is_err());
        // The address: four sessions' worth, shared.
        for n in 2..=4 {
            let other = budgets.charge_for(&anonymous(n), &here).await.unwrap();
            assert_eq!(spend(&budgets, &other, 5000).await, Ok(5000));
        }
        let fifth = budgets.charge_for(&anonymous(5), &here).await.unwrap();
        let refused = spend(&budgets, &fifth, 10).await.unwrap_err();
        assert_eq!(refused.whose, Whose::Address);
        assert!(refused.to_string().starts_with("Visitors from your network have used"));
        // Another address is not held back by this one.
        let elsewhere = ClientAddress("198.51.100.1".into());
        let far = budgets.charge_for(&anonymous(6), &elsewhere).await.unwrap();
        spend(&budgets, &far, 1000).await.unwrap();
        // After midnight, the days renew; the site's month does not.
        hand.store(night + 2 * 3_600_000, Ordering::SeqCst);
        assert!(budgets.check(&ann).await.is_ok());
        spend(&budgets, &ann, 1000).await.unwrap();
        // The site: 90000 a month, a hard stop for everyone.
        let mut site_refused = None;
        for n in 10..40 {
            let address = ClientAddress(format!("192.0.2.{n}"));
            let somebody = budgets.charge_for(&anonymous(n), &address).await.unwrap();
            if let Err(refusal) = spend(&budgets, &somebody, 3000).await {
                site_refused = Some(refusal);
                break;
            }
        }
        let refusal = site_refused.expect("the site's budget ran out");
        assert_eq!((refusal.whose, refusal.spent), (Whose::Site, 90000));
        assert!(!budgets.sign_in_helps(&refusal));
        assert_eq!(refusal.renews_in_ms, 28 * DAY_MS, "on the 1st of January");
    }

    #[tokio::test]
    async fn an_operators_budget_for_one_account_wins() {
        let config = BudgetConfig { account: setting("$1/day"), ..BudgetConfig::default() };
        let (budgets, _) = budgets(config, 1_796_292_000_000);
        let account = parley_store::AccountId::parse(&"ab".repeat(16)).unwrap();
        let principal = Principal { session: SessionId::random(), account: Some(account.clone()) };
        let here = ClientAddress("203.0.113.7".into());
        assert_eq!(budgets.account_budget(account.as_str()).await.unwrap(), setting("$1/day").0);
        let scope = Scope::Account(account.to_string());
        budgets.0.store.set_budget_override(&scope, Some("$0.000005/day")).await.unwrap();
        let charge = budgets.charge_for(&principal, &here).await.unwrap();
        // $0.000005 pays a 16-token prompt ($0.0000048) and no output at $2.50/M: refused.
        let refused = spend(&budgets, &charge, 16).await.unwrap_err();
        assert_eq!(refused.whose, Whose::Own);
        assert!(!refused.anonymous && !budgets.sign_in_helps(&refused));
        budgets.0.store.set_budget_override(&scope, Some("off")).await.unwrap();
        let charge = budgets.charge_for(&principal, &here).await.unwrap();
        assert!(!charge.is_limited(), "off: no budget at all");
        let view = budgets.view(&charge).await.unwrap();
        assert_eq!(view, None);
    }

    fn budget(text: &str) -> Option<Budget> {
        text.parse::<BudgetSetting>().unwrap().0
    }

    #[test]
    fn budgets_read_as_written() {
        assert_eq!(budget("off"), None);
        let quarter = budget("$0.25/day").unwrap();
        assert_eq!(quarter, Budget { amount: Amount::NanoUsd(250_000_000), period: Period::Day });
        assert_eq!(quarter.to_string(), "$0.25/day");
        assert_eq!(budget(" $20 / month ").unwrap().to_string(), "$20.00/month");
        assert_eq!(budget("2M tokens/day").unwrap().amount, Amount::Tokens(2_000_000));
        assert_eq!(budget("1.5k tokens/month").unwrap().to_string(), "1500 tokens/month");
        for bad in
            ["", "5", "$/day", "$1/week", "$-1/day", "$1.0000000001/day", "2M/day", "x tokens/day"]
        {
            assert!(bad.parse::<BudgetSetting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_turn_at_midnight_utc() {
        // 2026-12-03T10:00:00Z.
        let now = 1_796_292_000_000;
        let today = day_of(now);
        assert_eq!(Period::Day.bounds(now), (today, (today + 1) * DAY_MS));
        let (first, next) = Period::Month.bounds(now);
        assert_eq!(today - first, 2, "the 1st of December");
        assert_eq!(next / DAY_MS - first, 31, "January the 1st");
    }

    #[test]
    fn people_read_amounts_and_waits() {
        assert_eq!(dollars(180_000_000), "$0.18");
        assert_eq!(dollars(4_200_000), "$0.0042");
        assert_eq!(dollars(20_000_000_000), "$20.00");
        assert_eq!(tokens(1_234_567), "1.2M");
        assert_eq!(tokens(12_000), "12k");
        assert_eq!(renews_in(3 * 3_600_000 + 12 * 60_000), "3 h 12 min");
        assert_eq!(renews_in(30_000), "1 min");
        assert_eq!(renews_in(2 * DAY_MS + 3_600_000), "2 days 1 h");
        let refusal = Refusal {
            whose: Whose::Own,
            budget: budget("$0.25/day").unwrap(),
            spent: 260_000_000,
            renews_in_ms: 3 * 3_600_000 + 12 * 60_000,
            anonymous: true,
        };
        assert_eq!(
            refusal.to_string(),
            "You have used $0.25 of your budget of $0.25 today. It renews in 3 h 12 min."
        );
        let short = Refusal { spent: 100_000_000, ..refusal };
        assert_eq!(
            short.to_string(),
            "This message needs more than the $0.15 left of your budget of $0.25 today: shorten \
             it, or wait until it renews in 3 h 12 min."
        );
    }
}
