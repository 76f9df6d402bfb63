//! Signed-in people's conversations, kept on the server so that they follow them between
//! devices. Tables `conversations` (one row per conversation: its revision, title, the export's
//! other fields as `meta`, when it was deleted), `conversation_messages` (one row per message,
//! by the message's id, with its position and the revision that last wrote it) and
//! `sync_accounts` (each account's change cursor and stored bytes).
//!
//! Every write to an account's conversations takes the account's turn (SQLite: its one
//! connection; PostgreSQL: a transaction-scoped advisory lock per account), so a write sees
//! the conversation as it is and nothing slips in between reading and writing. What to write
//! is decided by the caller's pure function ([`Decision`]) over what is stored — the merge rule
//! lives in `parley-chat`, the store only keeps rows. Each conversation written gets the next
//! value of its account's cursor as `changed`: a device that has seen everything up to cursor
//! `c` asks for `changed > c` ([`Store::pull_conversations`]).
//!
//! Every write is announced to the account's subscribers ([`Store::subscribe`]): in this
//! process at once, and on PostgreSQL with `NOTIFY parley_sync` in the writing transaction,
//! which PostgreSQL delivers at commit to every replica listening (see [`hub`]).

pub mod hub;
mod lite;
mod pg;

pub(crate) use pg::listen_forever;

use crate::{principal::AccountId, Owner, Store, StoreError};

pub use hub::Subscription;

/// One message of a stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id (given by the device that wrote it; unique in its conversation).
    pub id: String,
    /// The conversation revision that last wrote its body.
    pub revision: i64,
    /// The message as JSON text (Gemini's `contents` entry: `role`, `parts`, …).
    pub body: String,
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    /// Its id (given by the device that made it).
    pub id: String,
    /// Its revision: 1 when made, one more at each change.
    pub revision: i64,
    /// The account's cursor when it last changed (set by the store on write).
    pub changed: i64,
    /// Its title, as the list shows it.
    pub title: String,
    /// The export's other fields (`conversation_summaries`, `uploaded_files`, `model`,
    /// `cache_files`) as a JSON object's text.
    pub meta: String,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When it last changed, ms since the epoch.
    pub updated_ms: i64,
    /// When it was deleted (it can be restored until it is purged), ms since the epoch.
    pub deleted_ms: Option<i64>,
    /// Purged: deleted for good, kept only as a tombstone (no title, meta or messages) so
    /// that every device learns it is gone.
    pub purged: bool,
    /// Its messages in order (empty in a pull of a deleted conversation).
    pub messages: Vec<Message>,
}

impl Conversation {
    /// What it weighs against the account's storage, bytes: its id, title, meta and every
    /// message's id and body.
    pub fn bytes(&self) -> u64 {
        let messages: usize = self.messages.iter().map(|m| m.id.len() + m.body.len()).sum();
        (self.id.len() + self.title.len() + self.meta.len() + messages) as u64
    }
}

/// A conversation as listed, without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its revision.
    pub revision: i64,
    /// The account's cursor when it last changed.
    pub changed: i64,
    /// Its title.
    pub title: String,
    /// When it last changed, ms since the epoch.
    pub updated_ms: i64,
    /// When it was deleted, ms since the epoch.
    pub deleted_ms: Option<i64>,
    /// What it weighs, bytes ([`Conversation::bytes`]).
    pub bytes: u64,
}

/// What a write does, decided by the caller over what is stored.
#[derive(Debug)]
pub enum Decision<T> {
    /// Nothing is written; `T` is the caller's outcome.
    Keep(T),
    /// Each conversation is written whole (made, or replaced: messages it no longer has are
    /// removed), with the revisions the caller set; then `T`.
    Write(Vec<Conversation>, T),
}

/// A page of an account's conversations changed after a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pulled {
    /// The conversations, in the order they changed (a deleted one without its messages).
    pub conversations: Vec<Conversation>,
    /// The cursor to ask from next: everything up to it has been given.
    pub cursor: i64,
    /// Whether more changes wait past `cursor`.
    pub more: bool,
}

/// Most conversation rows one pull reads, whatever their size.
pub const PULL_ROWS: usize = 200;

/// What a write saw and did, for the caller: its outcome, the account's cursor after it, and
/// its stored bytes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    /// The caller's outcome.
    pub outcome: T,
    /// The account's cursor after the write.
    pub cursor: i64,
    /// The account's stored bytes after the write.
    pub bytes: u64,
}

impl Store {
    /// Writes the conversation `id` of `account` as `decide` says, given what is stored (none
    /// when it was never written) and the account's stored bytes (all its conversations), in the account's turn:
    /// nothing else writes the account's conversations in between. Conversations written get
    /// the next cursor values, the account's subscribers are told.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is written then.
    pub async fn write_conversation<T: Send + 'static>(
        &self,
        account: &AccountId,
        id: &str,
        decide: impl FnOnce(Option<&Conversation>, u64) -> Decision<T> + Send + 'static,
    ) -> Result<Written<T>, StoreError> {
        let written = match self {
            Store::Sqlite(db) => lite::write(db, account.clone(), id.to_string(), decide).await?,
            Store::Postgres(db) => pg::write(db, account, id, decide).await?,
        };
        self.hub().announce(account.as_str(), written.cursor);
        Ok(written)
    }

    /// The conversation `id` of `account` with its messages, deleted or not; `None` when the
    /// account has none by that id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn conversation(
        &self,
        account: &AccountId,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        match self {
            Store::Sqlite(db) => {
                let (account, id) = (account.as_str().to_string(), id.to_string());
                db.with(move |c| lite::conversation(c, &account, &id)).await
            }
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                pg::conversation(&client, account.as_str(), id).await
            }
        }
    }

    /// The conversations of `account` changed after `since`, in the order they changed, up to
    /// about `max_bytes` (at least one, whatever its size) and [`PULL_ROWS`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn pull_conversations(
        &self,
        account: &AccountId,
        since: i64,
        max_bytes: u64,
    ) -> Result<Pulled, StoreError> {
        match self {
            Store::Sqlite(db) => {
                lite::pull(db, account.as_str().to_string(), since, max_bytes).await
            }
            Store::Postgres(db) => pg::pull(db, account.as_str(), since, max_bytes).await,
        }
    }

    /// Deletes (`deleted_ms` some time) or restores (`None`) the conversation `id` of
    /// `account`: its revision and cursor move on, the subscribers are told. `None` when the
    /// account has no such conversation, or it was purged (nothing to restore).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_conversation_deleted(
        &self,
        account: &AccountId,
        id: &str,
        deleted_ms: Option<i64>,
    ) -> Result<Option<Listed>, StoreError> {
        let listed = match self {
            Store::Sqlite(db) => {
                let (account, id) = (account.as_str().to_string(), id.to_string());
                lite::set_deleted(db, account, id, deleted_ms).await?
            }
            Store::Postgres(db) => pg::set_deleted(db, account.as_str(), id, deleted_ms).await?,
        };
        if let Some(listed) = &listed {
            self.hub().announce(account.as_str(), listed.changed);
        }
        Ok(listed)
    }

    /// The deleted (not yet purged) conversations of `account`, the most recently deleted
    /// first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn deleted_conversations(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Listed>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::deleted(db, account.as_str().to_string()).await,
            Store::Postgres(db) => pg::deleted(db, account.as_str()).await,
        }
    }

    /// Purges the conversations deleted before `deleted_before_ms`: their messages, title and
    /// meta are removed (a tombstone stays), the accounts' bytes go down. Returns, for each,
    /// its account and the meta it had (whose `uploaded_files` name the Files it used).
    ///
    /// # Errors
    /// [`StoreError`]; nothing is purged then.
    pub async fn purge_conversations(
        &self,
        deleted_before_ms: i64,
    ) -> Result<Vec<(AccountId, String)>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::purge(db, deleted_before_ms).await,
            Store::Postgres(db) => pg::purge(db, deleted_before_ms).await,
        }
    }

    /// Forgets `owner`'s record of the File `uri` unless a conversation of `account` that is
    /// not purged still names it; whether it was forgotten.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn forget_file_if_unused(
        &self,
        owner: &Owner,
        account: &AccountId,
        uri: &str,
    ) -> Result<bool, StoreError> {
        let (owner, account, uri) =
            (owner.as_str().to_string(), account.as_str().to_string(), uri.to_string());
        let forgotten = match self {
            Store::Sqlite(db) => {
                db.with(move |c| {
                    c.execute(
                        "DELETE FROM files WHERE owner = ?1 AND uri = ?2 AND NOT EXISTS (\
                         SELECT 1 FROM conversations WHERE account = ?3 AND NOT purged \
                         AND instr(meta, ?2) > 0)",
                        [&owner, &uri, &account],
                    )
                })
                .await?
            }
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                let n = client
                    .execute(
                        "DELETE FROM files WHERE owner = $1 AND uri = $2 AND NOT EXISTS (\
                         SELECT 1 FROM conversations WHERE account = $3 AND NOT purged \
                         AND strpos(meta, $2) > 0)",
                        &[&owner, &uri, &account],
                    )
                    .await?;
                n as usize
            }
        };
        Ok(forgotten > 0)
    }

    /// Every conversation's account and id (for a copy into another store).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn conversation_keys(&self) -> Result<Vec<(AccountId, String)>, StoreError> {
        const SQL: &str = "SELECT account, id FROM conversations ORDER BY account, id";
        let keys: Vec<(String, String)> = match self {
            Store::Sqlite(db) => {
                db.with(|c| {
                    let mut stmt = c.prepare(SQL)?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .await?
            }
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                client.query(SQL, &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect()
            }
        };
        Ok(keys.into_iter().map(|(a, id)| (AccountId::from_store(a), id)).collect())
    }

    /// The account's cursor and stored bytes (`(0, 0)` before its first write).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn sync_state(&self, account: &AccountId) -> Result<(i64, u64), StoreError> {
        match self {
            Store::Sqlite(db) => {
                let account = account.as_str().to_string();
                db.with(move |c| lite::account_state(c, &account)).await
            }
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                pg::account_state(&client, account.as_str()).await
            }
        }
    }

    /// Follows the changes of `account`'s conversations: the subscription's value is the
    /// account's latest cursor known to this process (on PostgreSQL, also from the writes of
    /// other replicas). Start it before reading what changed, then read again whenever it
    /// moves.
    pub fn subscribe(&self, account: &AccountId) -> Subscription {
        if let Store::Postgres(db) = self {
            db.listen();
        }
        self.hub().subscribe(account.as_str())
    }

    /// How many subscriptions this process holds open, in all accounts.
    pub fn subscriptions(&self) -> usize {
        self.hub().subscriptions()
    }

    fn hub(&self) -> &std::sync::Arc<hub::Hub> {
        match self {
            Store::Sqlite(db) => &db.hub,
            Store::Postgres(db) => &db.hub,
        }
    }
}

/// The schema (the same for both backends).
pub(crate) const SCHEMA: &str = "
CREATE TABLE sync_accounts (
    account TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE TABLE conversations (
    account TEXT NOT NULL,
    id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    title TEXT NOT NULL,
    meta TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    deleted_ms BIGINT,
    purged BOOLEAN NOT NULL DEFAULT FALSE,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE INDEX conversations_by_change ON conversations (account, changed);
CREATE INDEX conversations_by_deletion ON conversations (deleted_ms);
CREATE TABLE conversation_messages (
    account TEXT NOT NULL,
    conversation TEXT NOT NULL,
    id TEXT NOT NULL,
    position BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account, conversation, id)
);
CREATE INDEX conversation_messages_in_order
    ON conversation_messages (account, conversation, position);
";

/// The columns of a conversation row, in the order both backends read them.
const COLUMNS: &str =
    "id, revision, changed, title, meta, created_ms, updated_ms, deleted_ms, purged, bytes";

/// What a write changes in one conversation's message rows, against what was stored.
struct Changes<'a> {
    /// Ids of stored messages the new version no longer has.
    removed: Vec<String>,
    /// Messages new or changed (body, revision or position), with their position.
    upserts: Vec<(i64, &'a Message)>,
}

fn changes<'a>(stored: Option<&Conversation>, new: &'a Conversation) -> Changes<'a> {
    use std::collections::HashMap;
    let before: HashMap<&str, (usize, &Message)> = stored
        .map(|s| s.messages.iter().enumerate().map(|(i, m)| (m.id.as_str(), (i, m))).collect())
        .unwrap_or_default();
    let kept: std::collections::HashSet<&str> =
        new.messages.iter().map(|m| m.id.as_str()).collect();
    let removed =
        before.keys().filter(|id| !kept.contains(**id)).map(|id| (*id).to_string()).collect();
    let upserts = new
        .messages
        .iter()
        .enumerate()
        .filter(|(i, m)| before.get(m.id.as_str()).is_none_or(|(at, old)| at != i || old != m))
        .map(|(i, m)| (i as i64, m))
        .collect();
    Changes { removed, upserts }
}

/// How many of `rows` (in the order they changed, with their bytes) one page takes: the first
/// whatever its size, then while the page stays within `max_bytes`, at most [`PULL_ROWS`]. A
/// deleted conversation goes without its messages and weighs nothing.
fn take_page(rows: &[(Conversation, u64)], max_bytes: u64) -> usize {
    let mut total = 0u64;
    let mut taken = 0;
    for (conversation, bytes) in rows.iter().take(PULL_ROWS) {
        let bytes = if conversation.deleted_ms.is_some() { 0 } else { *bytes };
        if taken > 0 && total.saturating_add(bytes) > max_bytes {
            break;
        }
        total = total.saturating_add(bytes);
        taken += 1;
    }
    taken
}

#[cfg(test)]
mod tests;
