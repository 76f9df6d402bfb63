//! # parley-store — Parley's one database
//!
//! Everything Parley keeps about the people using it, on one of two backends behind one type
//! ([`Store`]): an embedded SQLite file for a single server ([`sqlite`], the default
//! `{data dir}/parley.sqlite3`), or PostgreSQL shared by several replicas ([`postgres`]). Both
//! run the same versioned migrations, and each concept's test suite runs on both.
//!
//! One module per concept, each holding its rows, its statements for both backends and its
//! tests:
//! * [`principal`]: who a request acts for ([`Principal`]: a session, and an account once
//!   signed in) and the [`Owner`] key of what it owns — every owned row is read and changed
//!   through one;
//! * [`files`]: which principal uploaded which File, under which upstream identity, and where it
//!   stands ([`FileState`]) — what lets the server refuse a File that is not the principal's,
//!   see one expire before Gemini says so, and find the same content already uploaded;
//! * [`originals`]: the retained originals' entries (the bytes are `parley-files`'), their
//!   leases while a re-upload reads them, and which to evict;
//! * [`caches`]: the context caches (`cachedContents`) each principal made;
//! * [`exclusive`]: work one holder at a time may do across replicas (lease rows);
//! * [`rate_limits`]: GCRA rows shared by replicas;
//! * [`accounts`]: accounts (by issuer and subject) and their sign-ins, by session hash;
//! * [`sign_in_flows`]: OpenID Connect authorization requests awaiting their callback;
//! * [`conversations`]: signed-in people's conversations, message by message, with a
//!   revision each and a change cursor per account, and who follows them;
//! * [`shares`]: conversations shared by link — a snapshot per link, found by its token, and
//!   its image previews;
//! * [`usage`]: the ledger of what the site's key was spent on, by scope, day and model, and
//!   the holds of calls under way against their budgets.
//!
//! Errors are [`StoreError`]. Knows no Leptos and no Gemini.

pub mod accounts;
pub mod caches;
pub mod conversations;
mod error;
pub mod exclusive;
pub mod files;
pub mod originals;
pub mod postgres;
pub mod principal;
pub mod rate_limits;
pub mod shares;
pub mod sign_in_flows;
pub mod sqlite;
pub mod usage;

use std::path::Path;

pub use accounts::{Account, Adopted, Identity, SignIn};
pub use caches::CacheRow;
pub use error::StoreError;
pub use exclusive::Exclusive;
pub use files::{FileRow, FileState};
pub use originals::Original;
pub use principal::{AccountId, ClientAddress, Owner, Principal, SessionId};
pub use rate_limits::SharedRateLimits;
pub use sign_in_flows::SignInFlow;
pub use usage::{Scope, Usage};

/// Where the store lives: `sqlite://PATH` or `postgres://user:pass@host:port/db` (also
/// `postgresql://`; `sslmode=require` in the query asks for TLS, with rustls and the Web PKI
/// roots).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL (it may hold a password: never shown).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Url("`sqlite://` needs a path".into()));
            }
            return Ok(DatabaseUrl::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        Err(StoreError::Url("use sqlite://PATH or postgres://user:pass@host:port/db".into()))
    }
}

impl DatabaseUrl {
    /// True for a database several `parley` processes share (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

/// The store: SQLite or PostgreSQL, with the same methods (each concept's module adds its
/// own). Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    /// An embedded SQLite database.
    Sqlite(sqlite::SqliteDb),
    /// A PostgreSQL database with pools of connections.
    Postgres(postgres::PgDb),
}

impl Store {
    /// Opens the store at `url`, creating and migrating it (PostgreSQL: under an advisory
    /// lock, so that replicas starting together apply each migration once).
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be reached or migrated.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => Ok(Store::Sqlite(sqlite::SqliteDb::open_file(path)?)),
            DatabaseUrl::Postgres(url) => Ok(Store::Postgres(postgres::PgDb::connect(url).await?)),
        }
    }

    /// Opens (creating and migrating) `{data_dir}/parley.sqlite3`.
    ///
    /// # Errors
    /// [`StoreError`] when the directory or database cannot be made ready.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Ok(Store::Sqlite(sqlite::SqliteDb::open_file(&data_dir.join("parley.sqlite3"))?))
    }

    /// An SQLite store in memory (tests).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Store::Sqlite(sqlite::SqliteDb::in_memory()?))
    }

    /// True when several replicas share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Whether the database answers (for readiness checks).
    ///
    /// # Errors
    /// [`StoreError`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => db.ping().await,
            Store::Postgres(db) => db.ping().await,
        }
    }

    /// Every File record, every retained original's entry and every signed-in account's
    /// conversation copied into `target` (records by owner and URI, originals by SHA-256,
    /// conversations by account and id: what `target` already has is updated, so a second run
    /// changes nothing). Leases, caches and rate limits are not copied: they are momentary.
    ///
    /// # Errors
    /// [`StoreError`]; what was written before stays.
    pub async fn copy_into(&self, target: &Store) -> Result<Copied, StoreError> {
        let files = self.all_files().await?;
        let originals = self.all_originals().await?;
        let keys = self.conversation_keys().await?;
        let copied =
            Copied { files: files.len(), originals: originals.len(), conversations: keys.len() };
        for file in files {
            target.record(file).await?;
        }
        for (sha256, original) in originals {
            target.add_original(&sha256, original).await?;
        }
        // One at a time: a conversation may be megabytes.
        for (account, id) in keys {
            if let Some(conversation) = self.conversation(&account, &id).await? {
                let write = move |_: Option<&conversations::Conversation>, _| {
                    conversations::Decision::Write(vec![conversation], ())
                };
                target.write_conversation(&account, &id, write).await?;
            }
        }
        Ok(copied)
    }
}

/// The opaque key a client is charged under (an original, a context cache): the first 16 hex
/// digits of the SHA-256 of its address key, so that the store never holds an address.
pub fn holder_key(address: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(address.as_bytes())[..8])
}

/// What [`Store::copy_into`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// File records.
    pub files: usize,
    /// Retained originals' entries.
    pub originals: usize,
    /// Signed-in accounts' conversations.
    pub conversations: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "copied {} file records, {} retained originals and {} conversations",
            self.files, self.originals, self.conversations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_single_servers_store_copies_into_postgres() {
        let Some(url) = postgres::testing::fresh_database("copy").await else { return };
        let lite = Store::in_memory().unwrap();
        lite.record(files::tests::file("alice", "u1")).await.unwrap();
        let replaced = FileRow {
            state: FileState::Replaced,
            recorded_at_ms: 2,
            ..files::tests::file("bob", "u2")
        };
        lite.record(replaced.clone()).await.unwrap();
        let original = Original { size_bytes: 5, stored_at_ms: 7, charged_to: "x".into() };
        lite.add_original(&"00".repeat(32), original.clone()).await.unwrap();
        let pg = Store::connect(&url.parse().unwrap()).await.unwrap();
        for _ in 0..2 {
            let copied = lite.copy_into(&pg).await.unwrap();
            assert_eq!(copied, Copied { files: 2, originals: 1, conversations: 0 });
            assert_eq!(
                pg.all_files().await.unwrap(),
                vec![files::tests::file("alice", "u1"), replaced.clone()]
            );
            assert_eq!(
                pg.all_originals().await.unwrap(),
                vec![("00".repeat(32), original.clone())]
            );
        }
        let said = Copied { files: 2, originals: 1, conversations: 0 }.to_string();
        assert_eq!(said, "copied 2 file records, 1 retained originals and 0 conversations");
    }

    #[tokio::test]
    async fn replicas_starting_together_migrate_once() {
        let Some(url) = postgres::testing::fresh_database("migrate").await else { return };
        let url: DatabaseUrl = url.parse().unwrap();
        let starts = futures::future::join_all((0..4).map(|_| Store::connect(&url))).await;
        for store in starts {
            let Store::Postgres(pg) = store.unwrap() else { panic!("not PostgreSQL") };
            assert_eq!(
                pg.applied_migrations().await.unwrap(),
                vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                "each migration once"
            );
        }
    }

    #[test]
    fn database_urls_parse_and_never_show_a_password() {
        let pg: DatabaseUrl =
            "postgres://parley:s3cret@db:5432/parley?sslmode=require".parse().unwrap();
        assert!(pg.is_shared() && !format!("{pg:?}").contains("s3cret"));
        assert!("postgresql://db/parley".parse::<DatabaseUrl>().unwrap().is_shared());
        let lite: DatabaseUrl = "sqlite:///var/lib/parley/parley.sqlite3".parse().unwrap();
        assert_eq!(lite, DatabaseUrl::Sqlite("/var/lib/parley/parley.sqlite3".into()));
        assert!(!lite.is_shared());
        for bad in ["sqlite://", "mysql://db/parley", "parley.sqlite3", ""] {
            assert!(bad.parse::<DatabaseUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_sqlite_database_reopens() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        Store::open(dir.path()).unwrap();
    }
}
