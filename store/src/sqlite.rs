//! The SQLite backend: one embedded database file (`{data dir}/parley.sqlite3` by default),
//! migrated with rusqlite_migration; for a single server. Each call runs on tokio's blocking
//! pool, one at a time. The statements of each concept live in that concept's module.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::StoreError;

/// The schema, one migration per entry, in order. Never edit one that has shipped: add the
/// next.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            upstream TEXT NOT NULL,
            name TEXT NOT NULL,
            uri TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            display_name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            create_time TEXT,
            expiration_time TEXT,
            state TEXT NOT NULL,
            recorded_at_ms INTEGER NOT NULL,
            UNIQUE (owner, uri)
        );
        CREATE INDEX files_by_owner ON files (owner, recorded_at_ms);
        CREATE INDEX files_by_content ON files (owner, upstream, sha256);",
        ),
        M::up(
            "CREATE TABLE originals (
                sha256 TEXT PRIMARY KEY,
                size_bytes INTEGER NOT NULL,
                stored_at_ms INTEGER NOT NULL
            );
            CREATE INDEX originals_by_age ON originals (stored_at_ms);
            CREATE INDEX files_by_sha256 ON files (sha256);",
        ),
        M::up("ALTER TABLE originals ADD COLUMN charged_to TEXT NOT NULL DEFAULT '';"),
        M::up(
            "CREATE TABLE original_leases (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL,
                until_ms INTEGER NOT NULL
            );
            CREATE INDEX original_leases_by_sha256 ON original_leases (sha256, until_ms);",
        ),
        M::up(
            "CREATE TABLE context_caches (
                owner TEXT NOT NULL,
                name TEXT NOT NULL,
                model TEXT NOT NULL,
                files_key TEXT NOT NULL,
                uris TEXT NOT NULL,
                tokens INTEGER NOT NULL,
                expire_ms INTEGER NOT NULL,
                PRIMARY KEY (owner, name)
            );
            CREATE INDEX context_caches_by_files ON context_caches (owner, model, files_key);",
        ),
        M::up(
            "ALTER TABLE context_caches ADD COLUMN charged_to TEXT NOT NULL DEFAULT '';
            CREATE INDEX context_caches_by_holder ON context_caches (charged_to, expire_ms);",
        ),
        M::up(crate::accounts::SCHEMA),
        M::up(crate::usage::SCHEMA),
        M::up(crate::conversations::SCHEMA),
        M::up(crate::shares::SCHEMA),
    ])
}

/// The SQLite database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDb {
    conn: Arc<Mutex<Connection>>,
    /// This process's followers of accounts' conversations.
    pub(crate) hub: Arc<crate::conversations::hub::Hub>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteDb")
    }
}

impl SqliteDb {
    /// Opens (creating and migrating) the database file at `path`, creating its folder.
    ///
    /// # Errors
    /// [`StoreError`] when the folder or database cannot be made ready.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        Ok(SqliteDb { conn: Arc::new(Mutex::new(conn)), hub: Arc::default() })
    }

    /// A database in memory (tests).
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be migrated.
    pub fn in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrations().to_latest(&mut conn)?;
        Ok(SqliteDb { conn: Arc::new(Mutex::new(conn)), hub: Arc::default() })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
        .map_err(StoreError::from)
    }

    /// Whether the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

/// A `BIGINT`/`INTEGER` column of bytes or tokens, never negative.
pub(crate) fn unsigned(n: i64) -> u64 {
    n.max(0) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
