//! `parley accounts list|disable|enable|delete`: the operator's commands on the accounts of
//! people who signed in, against the configured database (and, for `delete`, Gemini).

use parley_store::{Account, Owner, Store};

use crate::{
    config::{AccountsCommand, Config},
    error::ServerError,
};

/// Runs `command`, printing what it did.
///
/// # Errors
/// [`ServerError::Config`] for an account that cannot be found or is ambiguous;
/// [`ServerError::Store`] when the database fails; Gemini's errors while deleting Files.
pub async fn run(config: &Config, command: AccountsCommand) -> Result<(), ServerError> {
    let store = Store::connect(&config.database()?).await?;
    let now = parley_files::time::now_ms();
    match command {
        AccountsCommand::List => {
            let policy = crate::auth::policy::Policy::new(
                &config.sign_in.allowed_emails,
                &config.sign_in.allowed_domains,
                &config.sign_in.admins,
            );
            println!("id\temail\tissuer\tcreated\tlast sign-in\tsign-ins\tstate");
            for account in store.accounts().await? {
                let live = store.sign_ins_of(&account.id, now).await?.len();
                let mut state = vec![if account.disabled { "disabled" } else { "active" }];
                if policy.is_admin(&account.identity) {
                    state.push("admin");
                }
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{live}\t{}",
                    account.id,
                    account.identity.email.as_deref().unwrap_or("-"),
                    account.identity.issuer,
                    time(account.created_ms),
                    time(account.last_sign_in_ms),
                    state.join(",")
                );
            }
        }
        AccountsCommand::Disable { account } => {
            let found = one(&store, &account).await?;
            let ended = store.sign_ins_of(&found.id, now).await?.len();
            store.set_account_disabled(&found.id, true).await?;
            tracing::info!(account = %found.id, "account disabled");
            println!("disabled {} ({}); {ended} sign-ins ended", found.id, label(&found));
        }
        AccountsCommand::Enable { account } => {
            let found = one(&store, &account).await?;
            store.set_account_disabled(&found.id, false).await?;
            tracing::info!(account = %found.id, "account enabled");
            println!("enabled {} ({})", found.id, label(&found));
        }
        AccountsCommand::Delete { account } => {
            let found = one(&store, &account).await?;
            let deleted = delete(config, &store, &found).await?;
            println!("deleted {} ({}): {deleted}", found.id, label(&found));
        }
    }
    Ok(())
}

/// The one account `email_or_id` names.
async fn one(store: &Store, email_or_id: &str) -> Result<Account, ServerError> {
    let mut found = store.find_accounts(email_or_id).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ServerError::Config(format!("no account has the email or id `{email_or_id}`"))),
        n => {
            let ids: Vec<String> =
                found.iter().map(|a| format!("{} ({})", a.id, a.identity.issuer)).collect();
            Err(ServerError::Config(format!(
                "{n} accounts have the email `{email_or_id}`; name one by its id: {}",
                ids.join(", ")
            )))
        }
    }
}

/// What `delete` removed, as a sentence.
async fn delete(config: &Config, store: &Store, account: &Account) -> Result<String, ServerError> {
    let upstream = crate::upstream::Upstream::connect(config).await?;
    let key = crate::session::SessionKey::load(config.session_secret.as_deref(), &config.data_dir)?;
    let state = crate::server::state(config, &upstream, &key).await?;
    let files = state.files();
    let owner = Owner::of_account(&account.id);
    let rows = store.list(&owner, usize::MAX).await?;
    let (mut gone, mut elsewhere) = (0, 0);
    for row in &rows {
        if row.upstream != files.upstream_id() {
            // Uploaded under another key: that key's holder sees it expire within 48 h.
            elsewhere += 1;
            continue;
        }
        match files.gemini().delete_file(&row.name).await {
            Ok(()) => gone += 1,
            Err(e) if e.inaccessible_file_id().is_some() => gone += 1,
            Err(e) => {
                return Err(ServerError::Config(format!(
                    "Gemini could not delete {}: {e}",
                    row.name
                )))
            }
        }
    }
    let caches = store.caches_of(&owner).await?;
    for cache in &caches {
        if let Err(e) = files.gemini().delete_cached_content(&cache.name).await {
            if !e.is_cache_gone() {
                tracing::info!(cache = %cache.name, error = %e, "a context cache could not be deleted; it expires by itself");
            }
        }
    }
    store.delete_account(&account.id).await?;
    let mut released = 0;
    for row in &rows {
        match files.originals().release(&row.sha256).await {
            Ok(()) => released += 1,
            Err(e) => tracing::warn!(error = %e, "a retained original could not be deleted"),
        }
    }
    tracing::info!(account = %account.id, files = rows.len(), caches = caches.len(), "account deleted");
    Ok(format!(
        "{} Files ({gone} deleted on Gemini, {elsewhere} under another key), {released} originals released, {} context caches",
        rows.len(),
        caches.len()
    ))
}

fn label(account: &Account) -> String {
    account.identity.email.clone().unwrap_or_else(|| account.identity.subject.clone())
}

/// `ms` as RFC 3339 (UTC, to the second).
fn time(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
