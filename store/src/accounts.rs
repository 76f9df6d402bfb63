//! Accounts and their sign-ins: a person known by an identity provider, and each browser
//! signed in as them. Tables `accounts` and `sign_ins`.
//!
//! An account is identified by its provider's issuer and the `sub` it gives (OpenID Connect
//! Core 1.0 §2: "the sub and iss Claims … are the only Claims that a Client can rely upon as a
//! stable identifier for the End-User"), never by email: the same email from another issuer is
//! another account. A sign-in is kept by the SHA-256 of its session id only, so the table
//! cannot be used to forge a cookie; it lasts until its expiry, pushed on by use (sliding), and
//! ends when the person signs out, signs out everywhere, or the account is disabled — on every
//! replica at its next request, since every signed-in request reads its row.

use crate::{principal::AccountId, Owner, SessionId, Store, StoreError};

/// How a provider names a person (from a verified ID token, or a trusted proxy's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The issuer (`iss`), e.g. `https://accounts.google.com`; `proxy:` + header name for a
    /// trusted proxy.
    pub issuer: String,
    /// The subject (`sub`) at that issuer.
    pub subject: String,
    /// The email the provider gives, if any.
    pub email: Option<String>,
    /// Whether the provider says it verified that email (`email_verified`).
    pub email_verified: bool,
    /// A display name (`name`), if any.
    pub name: Option<String>,
}

/// An account as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Parley's id for it (32 hex digits).
    pub id: AccountId,
    /// Who identifies it: issuer, subject, and what the provider last said of its email/name.
    pub identity: Identity,
    /// When it was first seen, ms since the epoch.
    pub created_ms: i64,
    /// When it last signed in, ms since the epoch.
    pub last_sign_in_ms: i64,
    /// Disabled by an operator: its sign-ins are ended and new ones refused.
    pub disabled: bool,
}

/// One browser signed in, as listed for its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    /// The account.
    pub account: AccountId,
    /// When it started, ms since the epoch.
    pub created_ms: i64,
    /// When it was last used (to the minute), ms since the epoch.
    pub last_seen_ms: i64,
    /// When it ends unless used again, ms since the epoch.
    pub expires_ms: i64,
    /// The browser's `User-Agent` at sign-in (at most [`USER_AGENT_CHARS`] characters).
    pub user_agent: String,
}

/// Longest `User-Agent` kept, characters.
pub const USER_AGENT_CHARS: usize = 256;

/// A sign-in's `last_seen_ms` (and its sliding expiry) is written at most this often, ms: a
/// signed-in request reads its row, and writes it only once a minute.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// What moving an anonymous session's belongings to an account moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adopted {
    /// File records.
    pub files: u64,
    /// Context cache records.
    pub caches: u64,
}

/// The key a sign-in is kept under: lowercase hex SHA-256 of its session id.
fn session_hash(session: &SessionId) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("parley sign-in\0{session}").as_bytes()))
}

impl Store {
    /// The account of `identity` (issuer and subject), made on first sight; its email and name
    /// are updated to what the provider says now and `last_sign_in_ms` set to `now_ms`. A
    /// disabled account is returned disabled (the caller refuses it).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn account_for(
        &self,
        identity: &Identity,
        now_ms: i64,
    ) -> Result<Account, StoreError> {
        let id = AccountId::random();
        match self {
            Store::Sqlite(db) => lite::account_for(db, id, identity.clone(), now_ms).await,
            Store::Postgres(db) => pg::account_for(db, id, identity, now_ms).await,
        }
    }

    /// Starts a sign-in of `account` on the (new, rotated) `session`, until `expires_ms`; with
    /// `adopt`, in the same transaction, moves that anonymous owner's File records, context
    /// caches and shared links to the account (a File the account already has is left where
    /// it was).
    ///
    /// # Errors
    /// [`StoreError`]; nothing is written then.
    pub async fn start_sign_in(
        &self,
        session: &SessionId,
        account: &AccountId,
        user_agent: &str,
        now_ms: i64,
        expires_ms: i64,
        adopt: Option<&Owner>,
    ) -> Result<Adopted, StoreError> {
        let row = SignInRow {
            hash: session_hash(session),
            account: account.clone(),
            user_agent: user_agent.chars().take(USER_AGENT_CHARS).collect(),
            now_ms,
            expires_ms,
            from: adopt.cloned(),
            to: Owner::of_account(account),
        };
        match self {
            Store::Sqlite(db) => lite::start_sign_in(db, row).await,
            Store::Postgres(db) => pg::start_sign_in(db, row).await,
        }
    }

    /// The account signed in on `session`, when its sign-in exists, has not expired at `now_ms`
    /// and its account is not disabled. A sign-in last seen over [`TOUCH_EVERY_MS`] ago is
    /// touched: seen now, expiring `ttl_ms` from now.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn signed_in(
        &self,
        session: &SessionId,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Account>, StoreError> {
        let hash = session_hash(session);
        match self {
            Store::Sqlite(db) => lite::signed_in(db, hash, now_ms, ttl_ms).await,
            Store::Postgres(db) => pg::signed_in(db, &hash, now_ms, ttl_ms).await,
        }
    }

    /// Ends the sign-in on `session` ("Sign out"); false when there was none.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn end_sign_in(&self, session: &SessionId) -> Result<bool, StoreError> {
        let hash = session_hash(session);
        let sql = "DELETE FROM sign_ins WHERE id_hash = $1";
        Ok(self.execute_one(sql, hash).await? > 0)
    }

    /// Ends every sign-in of `account` ("Sign out everywhere"); how many there were.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn end_sign_ins(&self, account: &AccountId) -> Result<u64, StoreError> {
        self.execute_one("DELETE FROM sign_ins WHERE account = $1", account.as_str().into()).await
    }

    /// `account`'s live sign-ins at `now_ms`, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn sign_ins_of(
        &self,
        account: &AccountId,
        now_ms: i64,
    ) -> Result<Vec<SignIn>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::sign_ins_of(db, account.clone(), now_ms).await,
            Store::Postgres(db) => pg::sign_ins_of(db, account, now_ms).await,
        }
    }

    /// Disables (ending its sign-ins, in the same transaction) or enables `account`; false
    /// when there is no such account.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_account_disabled(
        &self,
        account: &AccountId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::set_disabled(db, account.clone(), disabled).await,
            Store::Postgres(db) => pg::set_disabled(db, account, disabled).await,
        }
    }

    /// Every account, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.accounts_where("TRUE", Vec::new()).await
    }

    /// The account `id` is, or the accounts with email `email_or_id` (case-insensitive; one
    /// email may belong to accounts at several issuers).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_accounts(&self, email_or_id: &str) -> Result<Vec<Account>, StoreError> {
        self.accounts_where("(id = $1 OR lower(email) = lower($1))", vec![email_or_id.to_string()])
            .await
    }

    /// The account of `issuer` and `subject`, if there is one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn account_of(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<Account>, StoreError> {
        let found = self
            .accounts_where(
                "issuer = $1 AND subject = $2",
                vec![issuer.to_string(), subject.to_string()],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// Forgets `account`: its sign-ins, its File records and context caches, its
    /// conversations, and the account.
    /// The caller deletes the Files and caches upstream first (they are listed under
    /// [`Owner::of_account`]). False when there was no such account.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is removed then.
    pub async fn delete_account(&self, account: &AccountId) -> Result<bool, StoreError> {
        let owner = Owner::of_account(account);
        match self {
            Store::Sqlite(db) => lite::delete_account(db, account.clone(), owner).await,
            Store::Postgres(db) => pg::delete_account(db, account, &owner).await,
        }
    }

    async fn accounts_where(
        &self,
        filter: &str,
        args: Vec<String>,
    ) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {filter} ORDER BY created_ms, id"
        );
        match self {
            Store::Sqlite(db) => lite::accounts_where(db, sql, args).await,
            Store::Postgres(db) => pg::accounts_where(db, &sql, &args).await,
        }
    }

    /// Runs one statement with one text argument `$1` (written `?1` for SQLite); rows changed.
    async fn execute_one(&self, sql: &'static str, arg: String) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(db) => {
                let sql = sql.replace("$1", "?1");
                db.with(move |c| c.execute(&sql, [arg]).map(|n| n as u64)).await
            }
            Store::Postgres(db) => Ok(db.pool.get().await?.execute(sql, &[&arg]).await?),
        }
    }
}

/// The tables of accounts, sign-ins and sign-ins under way: one migration, the same text on
/// both backends (SQLite takes PostgreSQL's `BIGINT` and `BOOLEAN`).
pub(crate) const SCHEMA: &str = "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        email TEXT,
        email_verified BOOLEAN NOT NULL,
        name TEXT,
        created_ms BIGINT NOT NULL,
        last_sign_in_ms BIGINT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        UNIQUE (issuer, subject)
    );
    CREATE INDEX accounts_by_email ON accounts (lower(email));
    CREATE TABLE sign_ins (
        id_hash TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        created_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        user_agent TEXT NOT NULL
    );
    CREATE INDEX sign_ins_by_account ON sign_ins (account);
    CREATE TABLE sign_in_flows (
        state_hash TEXT PRIMARY KEY,
        browser_hash TEXT NOT NULL,
        provider TEXT NOT NULL,
        nonce TEXT NOT NULL,
        pkce_verifier TEXT NOT NULL,
        return_to TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX sign_in_flows_by_expiry ON sign_in_flows (expires_ms);";

const ACCOUNT_COLUMNS: &str =
    "id, issuer, subject, email, email_verified, name, created_ms, last_sign_in_ms, disabled";

/// A sign-in to write, with the anonymous owner whose belongings move.
struct SignInRow {
    hash: String,
    account: AccountId,
    user_agent: String,
    now_ms: i64,
    expires_ms: i64,
    from: Option<Owner>,
    to: Owner,
}

/// Moving `from`'s rows to `to`: Files (but those `to` already has) and context caches.
const ADOPT_FILES: &str = "UPDATE files SET owner = $2 WHERE owner = $1 \
     AND uri NOT IN (SELECT uri FROM files WHERE owner = $2)";
/// The images of an owner's links.
const DELETE_SHARE_IMAGES_OF: &str =
    "DELETE FROM share_images WHERE token IN (SELECT token FROM shares WHERE owner = $1)";
const ADOPT_SHARES: &str = "UPDATE shares SET owner = $2 WHERE owner = $1";
const ADOPT_CACHES: &str = "UPDATE context_caches SET owner = $2 WHERE owner = $1 \
     AND name NOT IN (SELECT name FROM context_caches WHERE owner = $2)";

/// The SQLite statements.
mod lite {
    use rusqlite::{params, OptionalExtension};

    use super::{Account, Adopted, Identity, SignIn, SignInRow, ACCOUNT_COLUMNS, TOUCH_EVERY_MS};
    use crate::{principal::AccountId, sqlite::SqliteDb, Owner, StoreError};

    fn lite(sql: &str) -> String {
        sql.replace("$1", "?1").replace("$2", "?2")
    }

    fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
        let id: String = r.get(0)?;
        Ok(Account {
            id: AccountId::from_store(id),
            identity: Identity {
                issuer: r.get(1)?,
                subject: r.get(2)?,
                email: r.get(3)?,
                email_verified: r.get(4)?,
                name: r.get(5)?,
            },
            created_ms: r.get(6)?,
            last_sign_in_ms: r.get(7)?,
            disabled: r.get(8)?,
        })
    }

    pub(super) async fn account_for(
        db: &SqliteDb,
        id: AccountId,
        who: Identity,
        now_ms: i64,
    ) -> Result<Account, StoreError> {
        db.with(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, FALSE) \
                     ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email, \
                     email_verified = excluded.email_verified, name = excluded.name, \
                     last_sign_in_ms = excluded.last_sign_in_ms RETURNING {ACCOUNT_COLUMNS}"
                ),
                params![id.as_str(), who.issuer, who.subject, who.email, who.email_verified, who.name, now_ms],
                account,
            )
        })
        .await
    }

    pub(super) async fn start_sign_in(
        db: &SqliteDb,
        row: SignInRow,
    ) -> Result<Adopted, StoreError> {
        db.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sign_ins (id_hash, account, created_ms, last_seen_ms, expires_ms, user_agent) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                params![row.hash, row.account.as_str(), row.now_ms, row.expires_ms, row.user_agent],
            )?;
            let mut adopted = Adopted::default();
            if let Some(from) = &row.from {
                adopted.files = tx.execute(&lite(super::ADOPT_FILES), params![from, row.to])? as u64;
                adopted.caches = tx.execute(&lite(super::ADOPT_CACHES), params![from, row.to])? as u64;
                tx.execute(&lite(super::ADOPT_SHARES), params![from, row.to])?;
            }
            tx.commit()?;
            Ok(adopted)
        })
        .await
    }

    pub(super) async fn signed_in(
        db: &SqliteDb,
        hash: String,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Account>, StoreError> {
        db.with(move |c| {
            let found = c
                .query_row(
                    "SELECT s.last_seen_ms, a.id, a.issuer, a.subject, a.email, a.email_verified, a.name, \
                     a.created_ms, a.last_sign_in_ms, a.disabled FROM sign_ins s JOIN accounts a ON a.id = s.account \
                     WHERE s.id_hash = ?1 AND s.expires_ms > ?2 AND NOT a.disabled",
                    params![hash, now_ms],
                    |r| {
                        let seen: i64 = r.get(0)?;
                        let id: String = r.get(1)?;
                        Ok((seen, Account {
                            id: AccountId::from_store(id),
                            identity: Identity {
                                issuer: r.get(2)?,
                                subject: r.get(3)?,
                                email: r.get(4)?,
                                email_verified: r.get(5)?,
                                name: r.get(6)?,
                            },
                            created_ms: r.get(7)?,
                            last_sign_in_ms: r.get(8)?,
                            disabled: r.get(9)?,
                        }))
                    },
                )
                .optional()?;
            let Some((seen, account)) = found else { return Ok(None) };
            if now_ms - seen >= TOUCH_EVERY_MS {
                c.execute(
                    "UPDATE sign_ins SET last_seen_ms = ?2, expires_ms = ?3 WHERE id_hash = ?1",
                    params![hash, now_ms, now_ms.saturating_add(ttl_ms)],
                )?;
            }
            Ok(Some(account))
        })
        .await
    }

    pub(super) async fn sign_ins_of(
        db: &SqliteDb,
        account: AccountId,
        now_ms: i64,
    ) -> Result<Vec<SignIn>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT created_ms, last_seen_ms, expires_ms, user_agent FROM sign_ins \
                 WHERE account = ?1 AND expires_ms > ?2 ORDER BY created_ms DESC",
            )?;
            let rows = stmt.query_map(params![account.as_str(), now_ms], |r| {
                Ok(SignIn {
                    account: account.clone(),
                    created_ms: r.get(0)?,
                    last_seen_ms: r.get(1)?,
                    expires_ms: r.get(2)?,
                    user_agent: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn set_disabled(
        db: &SqliteDb,
        account: AccountId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        db.with(move |c| {
            let tx = c.transaction()?;
            let found = tx.execute(
                "UPDATE accounts SET disabled = ?2 WHERE id = ?1",
                params![account.as_str(), disabled],
            )? > 0;
            if disabled {
                tx.execute("DELETE FROM sign_ins WHERE account = ?1", params![account.as_str()])?;
            }
            tx.commit()?;
            Ok(found)
        })
        .await
    }

    pub(super) async fn accounts_where(
        db: &SqliteDb,
        sql: String,
        args: Vec<String>,
    ) -> Result<Vec<Account>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare(&lite(&sql))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), account)?.collect();
            rows
        })
        .await
    }

    pub(super) async fn delete_account(
        db: &SqliteDb,
        account: AccountId,
        owner: Owner,
    ) -> Result<bool, StoreError> {
        db.with(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM sign_ins WHERE account = ?1", params![account.as_str()])?;
            tx.execute("DELETE FROM files WHERE owner = ?1", params![owner])?;
            tx.execute("DELETE FROM context_caches WHERE owner = ?1", params![owner])?;
            tx.execute(&lite(super::DELETE_SHARE_IMAGES_OF), params![owner])?;
            tx.execute("DELETE FROM shares WHERE owner = ?1", params![owner])?;
            for table in ["conversation_messages", "conversations", "sync_accounts"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE account = ?1"),
                    params![account.as_str()],
                )?;
            }
            let found =
                tx.execute("DELETE FROM accounts WHERE id = ?1", params![account.as_str()])? > 0;
            tx.commit()?;
            Ok(found)
        })
        .await
    }
}

/// The PostgreSQL statements.
mod pg {
    use tokio_postgres::Row;

    use super::{Account, Adopted, Identity, SignIn, SignInRow, ACCOUNT_COLUMNS, TOUCH_EVERY_MS};
    use crate::{postgres::PgDb, principal::AccountId, Owner, StoreError};

    fn account(r: &Row, at: usize) -> Account {
        Account {
            id: AccountId::from_store(r.get(at)),
            identity: Identity {
                issuer: r.get(at + 1),
                subject: r.get(at + 2),
                email: r.get(at + 3),
                email_verified: r.get(at + 4),
                name: r.get(at + 5),
            },
            created_ms: r.get(at + 6),
            last_sign_in_ms: r.get(at + 7),
            disabled: r.get(at + 8),
        }
    }

    pub(super) async fn account_for(
        db: &PgDb,
        id: AccountId,
        who: &Identity,
        now_ms: i64,
    ) -> Result<Account, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, FALSE) \
             ON CONFLICT (issuer, subject) DO UPDATE SET email = EXCLUDED.email, \
             email_verified = EXCLUDED.email_verified, name = EXCLUDED.name, \
             last_sign_in_ms = EXCLUDED.last_sign_in_ms RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = client
            .query_one(
                &sql,
                &[
                    &id.as_str(),
                    &who.issuer,
                    &who.subject,
                    &who.email,
                    &who.email_verified,
                    &who.name,
                    &now_ms,
                ],
            )
            .await?;
        Ok(account(&row, 0))
    }

    pub(super) async fn start_sign_in(db: &PgDb, row: SignInRow) -> Result<Adopted, StoreError> {
        let mut client = db.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO sign_ins (id_hash, account, created_ms, last_seen_ms, expires_ms, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5)",
            &[&row.hash, &row.account.as_str(), &row.now_ms, &row.expires_ms, &row.user_agent],
        )
        .await?;
        let mut adopted = Adopted::default();
        if let Some(from) = &row.from {
            adopted.files = tx.execute(super::ADOPT_FILES, &[from, &row.to]).await?;
            adopted.caches = tx.execute(super::ADOPT_CACHES, &[from, &row.to]).await?;
            tx.execute(super::ADOPT_SHARES, &[from, &row.to]).await?;
        }
        tx.commit().await?;
        Ok(adopted)
    }

    pub(super) async fn signed_in(
        db: &PgDb,
        hash: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Account>, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT s.last_seen_ms, a.id, a.issuer, a.subject, a.email, a.email_verified, a.name, \
                 a.created_ms, a.last_sign_in_ms, a.disabled FROM sign_ins s JOIN accounts a ON a.id = s.account \
                 WHERE s.id_hash = $1 AND s.expires_ms > $2 AND NOT a.disabled",
                &[&hash, &now_ms],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let seen: i64 = row.get(0);
        if now_ms - seen >= TOUCH_EVERY_MS {
            client
                .execute(
                    "UPDATE sign_ins SET last_seen_ms = $2, expires_ms = $3 WHERE id_hash = $1",
                    &[&hash, &now_ms, &now_ms.saturating_add(ttl_ms)],
                )
                .await?;
        }
        Ok(Some(account(&row, 1)))
    }

    pub(super) async fn sign_ins_of(
        db: &PgDb,
        account: &AccountId,
        now_ms: i64,
    ) -> Result<Vec<SignIn>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client
            .query(
                "SELECT created_ms, last_seen_ms, expires_ms, user_agent FROM sign_ins \
                 WHERE account = $1 AND expires_ms > $2 ORDER BY created_ms DESC",
                &[&account.as_str(), &now_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SignIn {
                account: account.clone(),
                created_ms: r.get(0),
                last_seen_ms: r.get(1),
                expires_ms: r.get(2),
                user_agent: r.get(3),
            })
            .collect())
    }

    pub(super) async fn set_disabled(
        db: &PgDb,
        account: &AccountId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let mut client = db.pool.get().await?;
        let tx = client.transaction().await?;
        let found = tx
            .execute(
                "UPDATE accounts SET disabled = $2 WHERE id = $1",
                &[&account.as_str(), &disabled],
            )
            .await?
            > 0;
        if disabled {
            tx.execute("DELETE FROM sign_ins WHERE account = $1", &[&account.as_str()]).await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    pub(super) async fn accounts_where(
        db: &PgDb,
        sql: &str,
        args: &[String],
    ) -> Result<Vec<Account>, StoreError> {
        let client = db.pool.get().await?;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let rows = client.query(sql, &params).await?;
        Ok(rows.iter().map(|r| account(r, 0)).collect())
    }

    pub(super) async fn delete_account(
        db: &PgDb,
        account: &AccountId,
        owner: &Owner,
    ) -> Result<bool, StoreError> {
        let mut client = db.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM sign_ins WHERE account = $1", &[&account.as_str()]).await?;
        tx.execute("DELETE FROM files WHERE owner = $1", &[owner]).await?;
        tx.execute("DELETE FROM context_caches WHERE owner = $1", &[owner]).await?;
        tx.execute(super::DELETE_SHARE_IMAGES_OF, &[owner]).await?;
        tx.execute("DELETE FROM shares WHERE owner = $1", &[owner]).await?;
        for table in ["conversation_messages", "conversations", "sync_accounts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE account = $1"), &[&account.as_str()])
                .await?;
        }
        let found =
            tx.execute("DELETE FROM accounts WHERE id = $1", &[&account.as_str()]).await? > 0;
        tx.commit().await?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{files::tests::file, principal::owner, Principal};

    fn person(issuer: &str, subject: &str, email: &str) -> Identity {
        Identity {
            issuer: issuer.into(),
            subject: subject.into(),
            email: Some(email.into()),
            email_verified: true,
            name: None,
        }
    }

    /// What every backend must do with accounts and sign-ins.
    async fn accounts_and_sign_ins(store: &Store) {
        let ann = store.account_for(&person("https://a", "1", "ann@x.org"), 10).await.unwrap();
        let again = store.account_for(&person("https://a", "1", "ann@new.org"), 20).await.unwrap();
        assert_eq!(again.id, ann.id, "one account per issuer and subject");
        assert_eq!(again.identity.email.as_deref(), Some("ann@new.org"), "the email as said now");
        assert_eq!((again.created_ms, again.last_sign_in_ms), (10, 20));
        let other = store.account_for(&person("https://b", "1", "ann@new.org"), 30).await.unwrap();
        assert_ne!(other.id, ann.id, "the same email at another issuer is another account");
        assert_eq!(store.find_accounts("ANN@new.org").await.unwrap().len(), 2);
        assert_eq!(store.find_accounts(ann.id.as_str()).await.unwrap(), vec![again.clone()]);
        assert_eq!(store.accounts().await.unwrap().len(), 2);
        assert_eq!(
            store.account_of("https://b", "1").await.unwrap().map(|a| a.id),
            Some(other.id.clone())
        );
        assert!(store.account_of("https://b", "2").await.unwrap().is_none());

        // An anonymous session's Files, caches and links move to the account at sign-in.
        let link = |token: &str, owner: &Owner| crate::shares::Share {
            token: token.into(),
            owner: owner.clone(),
            conversation: "c".into(),
            title: "t".into(),
            snapshot: "{}".into(),
            include_images: true,
            link_preview: false,
            created_ms: 1,
            updated_ms: 1,
            expires_ms: None,
            revoked_ms: None,
        };
        let anonymous = SessionId::random();
        let from = Principal::anonymous(anonymous.clone()).owner();
        let stay = owner("someone-else");
        store.put_share(link("guest-link", &from), vec![]).await.unwrap();
        store.record(file_of(&from, "u1")).await.unwrap();
        store.record(file_of(&stay, "u2")).await.unwrap();
        let session = SessionId::random();
        let adopted =
            store.start_sign_in(&session, &ann.id, "agent", 100, 1_000, Some(&from)).await.unwrap();
        assert_eq!(adopted, Adopted { files: 1, caches: 0 });
        let mine = Owner::of_account(&ann.id);
        assert_eq!(store.list(&mine, 10).await.unwrap().len(), 1);
        assert!(store.list(&from, 10).await.unwrap().is_empty());
        assert_eq!(store.list(&stay, 10).await.unwrap().len(), 1, "others' Files stay");
        assert_eq!(store.share("guest-link").await.unwrap().unwrap().owner, mine);

        // Signed in until the expiry, pushed on by use no more than once a minute.
        assert_eq!(
            store.signed_in(&session, 150, 1_000).await.unwrap().map(|a| a.id),
            Some(ann.id.clone())
        );
        assert!(store.signed_in(&SessionId::random(), 150, 1_000).await.unwrap().is_none());
        assert!(store.signed_in(&session, 1_000, 1_000).await.unwrap().is_none(), "expired");
        let session = SessionId::random();
        store.start_sign_in(&session, &ann.id, &"x".repeat(999), 100, 100_000, None).await.unwrap();
        assert!(store.signed_in(&session, 100 + TOUCH_EVERY_MS, 100_000).await.unwrap().is_some());
        let live = store.sign_ins_of(&ann.id, 100 + TOUCH_EVERY_MS).await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].expires_ms, 100 + TOUCH_EVERY_MS + 100_000, "slid");
        assert_eq!(live[0].user_agent.len(), USER_AGENT_CHARS);

        // Sign out, sign out everywhere, disable.
        let second = SessionId::random();
        store.start_sign_in(&second, &ann.id, "b", 100, 1_000_000, None).await.unwrap();
        assert!(store.end_sign_in(&second).await.unwrap());
        assert!(!store.end_sign_in(&second).await.unwrap());
        assert!(store.signed_in(&second, 200, 1_000).await.unwrap().is_none());
        let third = SessionId::random();
        store.start_sign_in(&third, &ann.id, "c", 100, 1_000_000, None).await.unwrap();
        assert_eq!(store.end_sign_ins(&ann.id).await.unwrap(), 3, "the lapsed one too");
        assert!(store.signed_in(&third, 200, 1_000).await.unwrap().is_none());
        store.start_sign_in(&third, &other.id, "c", 100, 1_000_000, None).await.unwrap();
        assert!(store.set_account_disabled(&other.id, true).await.unwrap());
        assert!(store.signed_in(&third, 200, 1_000).await.unwrap().is_none(), "ended");
        let fourth = SessionId::random();
        store.start_sign_in(&fourth, &other.id, "d", 100, 1_000_000, None).await.unwrap();
        assert!(store.signed_in(&fourth, 200, 1_000).await.unwrap().is_none(), "disabled");
        let back = store.account_for(&person("https://b", "1", "ann@new.org"), 40).await.unwrap();
        assert!(back.disabled, "a sign-in does not enable it");
        assert!(store.set_account_disabled(&other.id, false).await.unwrap());
        assert!(store.signed_in(&fourth, 200, 1_000).await.unwrap().is_some());

        // Delete: the account, its sign-ins, its records and its links; others untouched.
        store.put_share(link("ann-link", &mine), vec![b"jpeg".to_vec()]).await.unwrap();
        store.put_share(link("their-link", &stay), vec![]).await.unwrap();
        assert!(store.delete_account(&ann.id).await.unwrap());
        assert_eq!(store.share("ann-link").await.unwrap(), None);
        assert_eq!(store.share_image("ann-link", 0).await.unwrap(), None);
        assert!(store.share("their-link").await.unwrap().is_some());
        assert!(!store.delete_account(&ann.id).await.unwrap());
        assert!(store.list(&mine, 10).await.unwrap().is_empty());
        assert_eq!(store.list(&stay, 10).await.unwrap().len(), 1);
        assert_eq!(store.accounts().await.unwrap().len(), 1);
    }

    /// A File record of `owner` at `uri`.
    fn file_of(owner: &Owner, uri: &str) -> crate::FileRow {
        crate::FileRow { owner: owner.clone(), ..file("x", uri) }
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        accounts_and_sign_ins(&Store::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("accounts").await else { return };
        accounts_and_sign_ins(&Store::connect(&url.parse().unwrap()).await.unwrap()).await;
    }
}
