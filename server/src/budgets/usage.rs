//! `parley usage [--since 7d] [--by day|model|account] [--json]`: the ledger of what was spent
//! on the site's key, summed, as a table or one JSON document.

use parley_store::{
    usage::{day_of, Grouping, DAY_MS},
    Store, Usage,
};
use serde_json::json;

use crate::{
    config::{Config, UsageArgs, UsageBy},
    error::ServerError,
};

/// Prints the ledger from `args.since` ago (whole UTC days) on, summed `args.by`.
///
/// # Errors
/// [`ServerError::Store`] when the database cannot be read.
pub async fn run(config: &Config, args: &UsageArgs) -> Result<(), ServerError> {
    let store = Store::connect(&config.database()?).await?;
    let now = parley_files::time::now_ms();
    let days = i64::try_from(args.since.as_millis()).unwrap_or(i64::MAX) / DAY_MS;
    let since_day = day_of(now) - days;
    let (prefix, grouping, key) = match args.by {
        UsageBy::Day => ("site", Grouping::Day, "day"),
        UsageBy::Model => ("site", Grouping::Model, "model"),
        UsageBy::Account => ("account:", Grouping::Scope, "account"),
    };
    let rows = store.usage_report(since_day, prefix, grouping).await?;
    let rows: Vec<(String, Usage)> = rows
        .into_iter()
        .map(|(k, u)| match args.by {
            UsageBy::Day => (date(k.parse().unwrap_or(0)), u),
            UsageBy::Account => (k.trim_start_matches("account:").to_string(), u),
            UsageBy::Model => (k, u),
        })
        .collect();
    let mut total = Usage::default();
    rows.iter().for_each(|(_, u)| total.add(u));
    if args.json {
        let row = |k: &str, u: &Usage| {
            json!({key: k, "calls": u.calls, "prompt_tokens": u.prompt_tokens,
                "cached_tokens": u.cached_tokens, "output_tokens": u.output_tokens,
                "thinking_tokens": u.thinking_tokens, "cache_write_tokens": u.cache_write_tokens,
                "dollars": dollars(u.nano_usd)})
        };
        let doc = json!({
            "since": date(since_day),
            "by": key,
            "rows": rows.iter().map(|(k, u)| row(k, u)).collect::<Vec<_>>(),
            "total": row("total", &total),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!("{key}\tcalls\tprompt\tcached\toutput\tthinking\tcache writes\tdollars");
    for (k, u) in rows.iter().chain([(String::from("total"), total)].iter()) {
        println!(
            "{k}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            u.calls,
            u.prompt_tokens,
            u.cached_tokens,
            u.output_tokens,
            u.thinking_tokens,
            u.cache_write_tokens,
            dollars(u.nano_usd)
        );
    }
    Ok(())
}

/// The UTC date of `day` (days since the epoch), `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    parley_files::time::rfc3339_of_ms(day * DAY_MS)
        .map_or_else(|| day.to_string(), |t| t[..10].to_string())
}

/// Nano-dollars as dollars to the hundredth of a cent, `0.0123`.
pub fn dollars(nano_usd: i64) -> String {
    format!("{:.4}", nano_usd as f64 / 1e9)
}
