//! The `/admin` page's HTML: one self-contained document (its style inline, no script), every
//! text from the store or a provider escaped ([`html_escape`]).

use std::fmt::Write;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use parley_chat::budget::{Budget, BudgetConfig};
use parley_store::{
    usage::{Spent, Unit},
    Account, Usage,
};

use super::usage::date;

/// What the page shows.
pub struct Overview {
    /// Today, days since the epoch (UTC).
    pub today: i64,
    /// The site's ledger per day (days since the epoch) over the last 30 days.
    pub days: Vec<(i64, Usage)>,
    /// The site's ledger per model over them.
    pub models: Vec<(String, Usage)>,
    /// The accounts that spent most.
    pub accounts: Vec<Row>,
    /// The anonymous addresses (hashed) that spent most.
    pub addresses: Vec<Row>,
    /// What `?find=` asked for, and the accounts it found.
    pub found: Option<(String, Vec<Row>)>,
    /// The site's budget, if any.
    pub site_budget: Option<Budget>,
    /// What the site spent (and holds) in that budget's period.
    pub site_spent: Option<Spent>,
    /// The budgets configured.
    pub defaults: BudgetConfig,
}

/// One account or address of the page.
pub struct Row {
    /// The account's id, or the address's hash.
    pub key: String,
    /// The account, when it is one (and still exists).
    pub account: Option<Account>,
    /// What it spent over the 30 days.
    pub usage: Usage,
    /// An operator's budget for it, in its text form.
    pub own_budget: Option<String>,
}

/// How an account is named: its email, else its subject.
pub fn label(account: &Account) -> String {
    account.identity.email.clone().unwrap_or_else(|| account.identity.subject.clone())
}

/// Nano-dollars as `$1.23` (under a cent: `$0.0042`).
fn usd(nano: i64) -> String {
    if nano > 0 && nano < 10_000_000 {
        return format!("${:.4}", nano as f64 / 1e9);
    }
    format!("${:.2}", nano as f64 / 1e9)
}

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;\
padding:1rem;color:#1d1d1f;background:#fff}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}\
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.n,th.n{text-align:right}.scroll{overflow-x:auto}svg{width:100%;height:auto;max-height:14rem}\
.bar{fill:#3b6fd8}.alert{background:#eef4ff;border:1px solid #9bb7ef;padding:.5rem .75rem;border-radius:6px}\
form.inline{display:flex;gap:.4rem;flex-wrap:wrap;align-items:center;margin:.2rem 0}\
input[type=text]{font:inherit;padding:.25rem .4rem;width:9rem}button{font:inherit;padding:.25rem .6rem}\
.muted{color:#666}@media (prefers-color-scheme:dark){body{background:#151517;color:#eee}\
th,td{border-color:#333}.alert{background:#1c2740;border-color:#34508a}.muted{color:#aaa}}";

/// The whole page; `notice` is the sentence after a form.
pub fn render(overview: &Overview, notice: Option<&str>) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Parley · Usage</title><style>{STYLE}</style></head><body><main>\
         <h1>Usage on the site's key</h1><p><a href=\"/\">Back to Parley</a></p>"
    );
    if let Some(notice) = notice {
        let _ = write!(html, "<p class=\"alert\" role=\"status\">{}</p>", text(notice));
    }
    site_total(&mut html, overview);
    chart(&mut html, overview);
    models(&mut html, &overview.models);
    accounts(&mut html, overview);
    addresses(&mut html, &overview.addresses);
    html.push_str("</main></body></html>");
    html
}

/// The site's spend against its budget, and the budgets configured.
fn site_total(html: &mut String, overview: &Overview) {
    let mut total = Usage::default();
    overview.days.iter().for_each(|(_, u)| total.add(u));
    let _ = write!(
        html,
        "<section aria-label=\"Site total\"><p>Last {} days: <strong>{}</strong>, {} tokens, {} calls.</p>",
        super::admin::DAYS,
        usd(total.nano_usd),
        total.tokens(),
        total.calls
    );
    match (overview.site_budget, overview.site_spent) {
        (Some(budget), Some(spent)) => {
            let used = match budget.amount {
                parley_chat::budget::Amount::NanoUsd(_) => usd(spent.in_unit(Unit::NanoUsd)),
                parley_chat::budget::Amount::Tokens(_) => {
                    format!("{} tokens", spent.in_unit(Unit::Tokens))
                }
            };
            let _ = write!(
                html,
                "<p>Site budget: <strong>{used}</strong> used of {} this period.</p>",
                text(&budget.to_string())
            );
        }
        _ => html.push_str("<p>Site budget: off.</p>"),
    }
    let show = |b: Option<Budget>| b.map_or_else(|| "off".to_string(), |b| b.to_string());
    let _ = write!(
        html,
        "<p class=\"muted\">Anonymous sessions: {}; accounts: {}.</p></section>",
        text(&show(overview.defaults.anonymous.0)),
        text(&show(overview.defaults.account.0))
    );
}

/// Spend per day as bars, the oldest first; each bar's title says the day and its figures.
fn chart(html: &mut String, overview: &Overview) {
    let days = super::admin::DAYS;
    let first = overview.today - (days - 1);
    let spend = |day: i64| overview.days.iter().find(|(d, _)| *d == day).map(|(_, u)| *u);
    let most = overview.days.iter().map(|(_, u)| u.nano_usd).max().unwrap_or(0).max(1);
    let (width, height, bar) = (600, 160, 18);
    let _ = write!(
        html,
        "<h2>Spend per day</h2><figure><svg viewBox=\"0 0 {width} {}\" role=\"img\" \
         aria-label=\"Spend per day, last {days} days; most in a day {}\">",
        height + 20,
        usd(most)
    );
    for i in 0..days {
        let day = first + i;
        let usage = spend(day).unwrap_or_default();
        let h = (usage.nano_usd as f64 / most as f64 * f64::from(height)).round() as i64;
        let h = if usage.nano_usd > 0 { h.max(1) } else { 0 };
        let _ = write!(
            html,
            "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{h}\"><title>{}: {}, {} tokens</title></rect>",
            i * 20 + 1,
            i64::from(height) - h,
            date(day),
            usd(usage.nano_usd),
            usage.tokens()
        );
    }
    let _ = write!(
        html,
        "<text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"currentColor\">{}</text>\
         <text x=\"{width}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">{}</text>\
         </svg><figcaption class=\"muted\">Highest day: {}.</figcaption></figure>",
        height + 16,
        date(first),
        height + 16,
        date(overview.today),
        usd(most)
    );
}

/// A table of the site's spend per model.
fn models(html: &mut String, models: &[(String, Usage)]) {
    html.push_str(
        "<h2>Per model</h2><div class=\"scroll\"><table aria-label=\"Per model\"><thead><tr>\
         <th>Model</th><th class=\"n\">Spend</th><th class=\"n\">Prompt</th><th class=\"n\">Cached</th>\
         <th class=\"n\">Output</th><th class=\"n\">Thinking</th><th class=\"n\">Calls</th></tr></thead><tbody>",
    );
    for (model, u) in models {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            text(model),
            usd(u.nano_usd),
            u.prompt_tokens,
            u.cached_tokens,
            u.output_tokens,
            u.thinking_tokens,
            u.calls
        );
    }
    if models.is_empty() {
        html.push_str("<tr><td colspan=\"7\" class=\"muted\">Nothing spent yet.</td></tr>");
    }
    html.push_str("</tbody></table></div>");
}

/// The top accounts, a form to find any account (one that spent nothing yet too), and what it
/// found — each account with `Set budget` and `Disable`/`Enable`.
fn accounts(html: &mut String, overview: &Overview) {
    account_table(html, "Top accounts", &overview.accounts, "No account spent anything.");
    let asked = overview.found.as_ref().map_or(String::new(), |(q, _)| q.clone());
    let _ = write!(
        html,
        "<form class=\"inline\" method=\"get\" action=\"/admin\" role=\"search\">\
         <input type=\"search\" name=\"find\" value=\"{}\" aria-label=\"Find an account\" \
         placeholder=\"email or id\"><button type=\"submit\">Find</button></form>",
        attr(&asked)
    );
    if let Some((_, found)) = &overview.found {
        account_table(html, "Found accounts", found, "No account has that email or id.");
    }
    html.push_str(
        "<p class=\"muted\">A budget is <code>off</code>, <code>$5/day</code>, \
         <code>$20/month</code> or <code>2M tokens/day</code>; empty for the site's account budget.</p>",
    );
}

/// A table of accounts named `title`, each with its forms; `empty` when there are none.
fn account_table(html: &mut String, title: &str, rows: &[Row], empty: &str) {
    let _ = write!(
        html,
        "<h2>{title}</h2><div class=\"scroll\"><table aria-label=\"{title}\"><thead><tr>\
         <th>Account</th><th class=\"n\">Spend</th><th class=\"n\">Tokens</th><th>Budget</th><th>State</th>\
         </tr></thead><tbody>"
    );
    for row in rows {
        let Some(account) = &row.account else { continue };
        let name = label(account);
        let current = row.own_budget.clone().unwrap_or_default();
        let (state, action, flip) = if account.disabled {
            ("disabled", "Enable", "false")
        } else {
            ("active", "Disable", "true")
        };
        let _ = write!(
            html,
            "<tr><td>{name}<br><span class=\"muted\">{id}</span></td><td class=\"n\">{spend}</td>\
             <td class=\"n\">{tokens}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/admin/budget\">\
             <input type=\"hidden\" name=\"account\" value=\"{id_attr}\">\
             <input type=\"text\" name=\"budget\" value=\"{current}\" placeholder=\"default\" \
             aria-label=\"Budget for {name_attr}\"><button type=\"submit\">Set budget</button></form></td>\
             <td>{state}<form class=\"inline\" method=\"post\" action=\"/admin/disable\">\
             <input type=\"hidden\" name=\"account\" value=\"{id_attr}\">\
             <input type=\"hidden\" name=\"disabled\" value=\"{flip}\">\
             <button type=\"submit\" aria-label=\"{action} {name_attr}\">{action}</button></form></td></tr>",
            name = text(&name),
            name_attr = attr(&name),
            id = text(account.id.as_str()),
            id_attr = attr(account.id.as_str()),
            spend = usd(row.usage.nano_usd),
            tokens = row.usage.tokens(),
            current = attr(&current),
        );
    }
    if rows.is_empty() {
        let _ = write!(html, "<tr><td colspan=\"5\" class=\"muted\">{empty}</td></tr>");
    }
    html.push_str("</tbody></table></div>");
}

/// The top anonymous addresses, by the hash they are kept under.
fn addresses(html: &mut String, rows: &[Row]) {
    html.push_str(
        "<h2>Top anonymous addresses</h2><div class=\"scroll\"><table aria-label=\"Top anonymous addresses\">\
         <thead><tr><th>Address (hashed)</th><th class=\"n\">Spend</th><th class=\"n\">Tokens</th>\
         <th class=\"n\">Calls</th></tr></thead><tbody>",
    );
    for row in rows {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            text(&row.key),
            usd(row.usage.nano_usd),
            row.usage.tokens(),
            row.usage.calls
        );
    }
    if rows.is_empty() {
        html.push_str("<tr><td colspan=\"4\" class=\"muted\">No anonymous spend.</td></tr>");
    }
    html.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_people_wrote_is_escaped() {
        let account = Account {
            id: parley_store::AccountId::parse(&"ab".repeat(16)).unwrap(),
            identity: parley_store::Identity {
                issuer: "https://id".into(),
                subject: "7".into(),
                email: Some("<script>alert(1)</script>@x".into()),
                email_verified: true,
                name: None,
            },
            created_ms: 0,
            last_sign_in_ms: 0,
            disabled: false,
        };
        let overview = Overview {
            today: 20_000,
            days: vec![(19_999, Usage { nano_usd: 5_000_000_000, calls: 2, ..Usage::default() })],
            models: vec![("gemini-2.5-flash".into(), Usage::default())],
            accounts: vec![Row {
                key: account.id.to_string(),
                account: Some(account),
                usage: Usage::default(),
                own_budget: Some("\"><b>".into()),
            }],
            addresses: Vec::new(),
            found: Some(("<q>".into(), Vec::new())),
            site_budget: None,
            site_spent: None,
            defaults: BudgetConfig::default(),
        };
        let html = render(&overview, Some("<i>done</i>"));
        assert!(
            !html.contains("<script>") && !html.contains("<i>done") && !html.contains("\"><b>")
        );
        assert!(html.contains("Set budget") && html.contains("$5.00") && html.contains("<svg"));
    }
}
