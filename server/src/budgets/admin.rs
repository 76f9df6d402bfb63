//! `/admin`: the operators' page (`PARLEY_ADMINS`), server-rendered, usable on a phone — what
//! was spent per day over the last 30 days (an SVG chart), per model, by the top accounts and
//! the top anonymous addresses (hashed), the site's total against its budget, any account
//! found by email or id (`?find=`) — and two forms per account: `Set budget`
//! (`POST /admin/budget`) and `Disable`/`Enable`
//! (`POST /admin/disable`). Anyone else, signed out or signed in, gets 404, as if there were
//! no such page; the forms are same-origin only, as every state-changing route.

use std::sync::Arc;

use app::server::ServerState;
use axum::{
    extract::{FromRequest, Query, Request, State},
    http::{header, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use parley_chat::budget::BudgetSetting;
use parley_store::{
    usage::{day_of, Grouping},
    Account, Scope, Store,
};
use serde::Deserialize;

use super::page::{self, Overview, Row};
use crate::{auth::Resolved, session::Sessions};

/// The path of the page; the forms post under it.
pub const ADMIN_PREFIX: &str = "/admin";

/// Days the page looks back over, today included.
pub const DAYS: i64 = 30;

/// Accounts and addresses listed, the most spent first.
pub const TOP: usize = 20;

/// What the routes need: who is an operator, and the store and budgets.
#[derive(Clone)]
pub struct Admin {
    /// The sessions (their sign-in policy names the operators).
    pub sessions: Arc<Sessions>,
    /// The application's state.
    pub state: Arc<ServerState>,
}

/// The routes.
pub fn routes<S>(admin: Admin) -> Router<S> {
    Router::new()
        .route(ADMIN_PREFIX, get(overview))
        .route("/admin/budget", post(set_budget))
        .route("/admin/disable", post(set_disabled))
        .with_state(admin)
}

/// Whether the request is an operator's: signed in (by Parley or the trusted proxy) as an
/// account `PARLEY_ADMINS` names.
fn is_admin(admin: &Admin, req: &Request) -> bool {
    let resolved = req.extensions().get::<Arc<Resolved>>();
    let account = resolved.and_then(|r| r.account.as_ref());
    account.is_some_and(|a| admin.sessions.auth.policy().is_admin(&a.identity))
}

/// The 404 anyone but an operator gets.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found").into_response()
}

/// A store failure, as the operator sees it (the error is logged).
fn failed(e: parley_store::StoreError) -> Response {
    tracing::error!(error = %e, "the admin page could not read the store");
    (StatusCode::SERVICE_UNAVAILABLE, "The database could not be read; try again.").into_response()
}

/// `?notice=` after a form; `?find=` an account by email or id.
#[derive(Debug, Deserialize)]
struct Asked {
    notice: Option<String>,
    find: Option<String>,
}

/// Longest `find` looked up, characters (an email is at most 320).
const MAX_FIND: usize = 320;

/// `GET /admin`.
async fn overview(State(admin): State<Admin>, req: Request) -> Response {
    if !is_admin(&admin, &req) {
        return not_found();
    }
    let asked = Query::<Asked>::try_from_uri(req.uri()).ok().map(|q| q.0);
    let (notice, find) = asked.map_or((None, None), |a| (a.notice, a.find));
    let find =
        find.map(|f| f.trim().chars().take(MAX_FIND).collect::<String>()).filter(|f| !f.is_empty());
    match gather(&admin, find).await {
        Ok(overview) => {
            let html = page::render(&overview, notice.as_deref());
            ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
        }
        Err(e) => failed(e),
    }
}

/// Everything the page shows; `find`, an account's email or id to look up.
async fn gather(admin: &Admin, find: Option<String>) -> Result<Overview, parley_store::StoreError> {
    let store = admin.state.files().store();
    let budgets = admin.state.engine().budgets();
    let now = budgets.now_ms();
    let since = day_of(now) - (DAYS - 1);
    let days = store.usage_report(since, "site", Grouping::Day).await?;
    let models = store.usage_report(since, "site", Grouping::Model).await?;
    let found = match find {
        Some(query) => {
            let mut rows = Vec::new();
            for account in store.find_accounts(&query).await?.into_iter().take(TOP) {
                let scope = Scope::Account(account.id.to_string());
                let usage = store.spent(&scope, since, now).await?.settled;
                let own_budget = store.budget_override(&scope).await?;
                rows.push(Row {
                    key: account.id.to_string(),
                    account: Some(account),
                    usage,
                    own_budget,
                });
            }
            Some((query, rows))
        }
        None => None,
    };
    let mut accounts = Vec::new();
    for (scope, usage) in
        store.usage_report(since, "account:", Grouping::Scope).await?.into_iter().take(TOP)
    {
        let id = scope.trim_start_matches("account:").to_string();
        let account = store.find_accounts(&id).await?.into_iter().find(|a| a.id.as_str() == id);
        let own = store.budget_override(&Scope::Account(id.clone())).await?;
        accounts.push(Row { key: id, account, usage, own_budget: own });
    }
    let addresses = store.usage_report(since, "address:", Grouping::Scope).await?;
    let addresses = addresses
        .into_iter()
        .take(TOP)
        .map(|(scope, usage)| Row {
            key: scope.trim_start_matches("address:").to_string(),
            account: None,
            usage,
            own_budget: None,
        })
        .collect();
    let site_budget = budgets.config().site.0;
    let site_spent = match site_budget {
        Some(budget) => {
            let (from, _) = budget.period.bounds(now);
            Some(store.spent(&Scope::Site, from, now).await?)
        }
        None => None,
    };
    Ok(Overview {
        today: day_of(now),
        days: days.into_iter().filter_map(|(d, u)| Some((d.parse().ok()?, u))).collect(),
        models,
        accounts,
        addresses,
        found,
        site_budget,
        site_spent,
        defaults: budgets.config(),
    })
}

/// The form of `Set budget`: an account id and its budget (`off`, `$5/day`, … or empty for
/// the site's account budget).
#[derive(Debug, Deserialize)]
struct SetBudget {
    account: String,
    budget: String,
}

/// The form of `Disable` / `Enable`.
#[derive(Debug, Deserialize)]
struct SetDisabled {
    account: String,
    disabled: bool,
}

/// The form an operator posted and the account it names (`account_of`), or the answer that
/// ends the request: 404 to anyone but an operator and for an account that does not exist, 400
/// for an incomplete form, 500 when the database fails.
async fn operator_form<F: serde::de::DeserializeOwned>(
    admin: &Admin,
    req: Request,
    account_of: fn(&F) -> &str,
) -> Result<(F, Account), Response> {
    if !is_admin(admin, &req) {
        return Err(not_found());
    }
    let Ok(Form(form)) = Form::<F>::from_request(req, &()).await else {
        return Err((StatusCode::BAD_REQUEST, "The form was not complete.").into_response());
    };
    match account_by_id(admin.state.files().store(), account_of(&form).trim()).await {
        Ok(Some(account)) => Ok((form, account)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(failed(e)),
    }
}

/// The account whose id is `id`, if there is one.
async fn account_by_id(
    store: &Store,
    id: &str,
) -> Result<Option<Account>, parley_store::StoreError> {
    Ok(store.find_accounts(id).await?.into_iter().find(|a| a.id.as_str() == id))
}

/// Back to the page with a sentence.
fn back(notice: &str) -> Response {
    let query =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("notice", notice).finish();
    Redirect::to(&format!("{ADMIN_PREFIX}?{query}")).into_response()
}

/// `POST /admin/budget`.
async fn set_budget(State(admin): State<Admin>, req: Request) -> Response {
    let (form, account) = match operator_form::<SetBudget>(&admin, req, |f| &f.account).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let store = admin.state.files().store();
    let text = form.budget.trim();
    let (stored, said) = if text.is_empty() || text.eq_ignore_ascii_case("default") {
        (None, "the site's account budget".to_string())
    } else {
        match text.parse::<BudgetSetting>() {
            Ok(BudgetSetting(Some(budget))) => (Some(budget.to_string()), budget.to_string()),
            Ok(BudgetSetting(None)) => (Some("off".to_string()), "no budget".to_string()),
            Err(e) => return back(&e.to_string()),
        }
    };
    let scope = Scope::Account(account.id.to_string());
    if let Err(e) = store.set_budget_override(&scope, stored.as_deref()).await {
        return failed(e);
    }
    tracing::info!(account = %account.id, budget = %said, "an operator set an account's budget");
    back(&format!("{} now has {said}.", page::label(&account)))
}

/// `POST /admin/disable`.
async fn set_disabled(State(admin): State<Admin>, req: Request) -> Response {
    let (form, account) = match operator_form::<SetDisabled>(&admin, req, |f| &f.account).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let store = admin.state.files().store();
    if let Err(e) = store.set_account_disabled(&account.id, form.disabled).await {
        return failed(e);
    }
    let done = if form.disabled { "disabled" } else { "enabled" };
    tracing::info!(account = %account.id, done, "an operator changed an account");
    back(&format!("{} is {done}.", page::label(&account)))
}
