//! The registry of uploads: an embedded SQLite database (`{data dir}/parley.sqlite3`,
//! migrated with rusqlite_migration) recording every File a browser session uploaded — who
//! owns it, under which upstream identity (files belong to the key that uploaded them), its
//! name, URI, type, size, SHA-256, and the create and expiration times Gemini gave.
//!
//! The registry is what lets the server refuse a File a session does not own, and see a File
//! expire before Gemini says so.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use serde::{Deserialize, Serialize};

/// What can go wrong with the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite refused (disk full, locked, corrupt, …).
    #[error("the file registry failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("the file registry could not be migrated: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The data directory could not be created.
    #[error("the data directory could not be created: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task was lost (the runtime is shutting down).
    #[error("the file registry task failed: {0}")]
    Task(String),
}

/// One uploaded File as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    /// The browser session that uploaded it.
    pub owner: String,
    /// Hash of the credential and base URL it was uploaded with.
    pub upstream: String,
    /// Gemini's resource name, `files/{id}`.
    pub name: String,
    /// The File's URI.
    pub uri: String,
    /// MIME type.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// The person's file name.
    pub display_name: String,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// RFC 3339, from the File resource.
    pub create_time: Option<String>,
    /// RFC 3339, from the File resource.
    pub expiration_time: Option<String>,
    /// `ACTIVE`, or `EXPIRED` once known gone.
    pub state: String,
    /// When it was recorded, ms since the epoch.
    pub recorded_at_ms: i64,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
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
    )])
}

/// The registry. Cheap to clone; calls run on tokio's blocking pool.
#[derive(Clone)]
pub struct Registry {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

const COLUMNS: &str = "owner, upstream, name, uri, mime_type, size_bytes, display_name, sha256, \
                       create_time, expiration_time, state, recorded_at_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        owner: r.get(0)?,
        upstream: r.get(1)?,
        name: r.get(2)?,
        uri: r.get(3)?,
        mime_type: r.get(4)?,
        size_bytes: r.get::<_, i64>(5)?.max(0) as u64,
        display_name: r.get(6)?,
        sha256: r.get(7)?,
        create_time: r.get(8)?,
        expiration_time: r.get(9)?,
        state: r.get(10)?,
        recorded_at_ms: r.get(11)?,
    })
}

impl Registry {
    /// Opens (creating and migrating) `{data_dir}/parley.sqlite3`.
    ///
    /// # Errors
    /// [`RegistryError`] when the directory or database cannot be made ready.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        std::fs::create_dir_all(data_dir)?;
        let mut conn = Connection::open(data_dir.join("parley.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        Ok(Registry { conn: Arc::new(Mutex::new(conn)) })
    }

    /// A registry in memory (tests).
    ///
    /// # Errors
    /// As [`Registry::open`].
    pub fn in_memory() -> Result<Self, RegistryError> {
        let mut conn = Connection::open_in_memory()?;
        migrations().to_latest(&mut conn)?;
        Ok(Registry { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))?
        .map_err(RegistryError::from)
    }

    /// Records an upload (replacing an earlier record of the same owner and URI).
    ///
    /// # Errors
    /// [`RegistryError`]; nothing is written then.
    pub async fn record(&self, file: FileRow) -> Result<(), RegistryError> {
        self.with(move |c| {
            c.execute(
                &format!("INSERT OR REPLACE INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    file.owner, file.upstream, file.name, file.uri, file.mime_type, file.size_bytes as i64,
                    file.display_name, file.sha256, file.create_time, file.expiration_time, file.state,
                    file.recorded_at_ms
                ],
            )
            .map(drop)
        })
        .await
    }

    /// `owner`'s record of the File at `uri` under `upstream`, if any.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn find(&self, owner: &str, upstream: &str, uri: &str) -> Result<Option<FileRow>, RegistryError> {
        let (owner, upstream, uri) = (owner.to_string(), upstream.to_string(), uri.to_string());
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM files WHERE owner = ?1 AND upstream = ?2 AND uri = ?3"),
                params![owner, upstream, uri],
                row,
            )
            .optional()
        })
        .await
    }

    /// `owner`'s Files, newest first.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn list(&self, owner: &str) -> Result<Vec<FileRow>, RegistryError> {
        let owner = owner.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM files WHERE owner = ?1 ORDER BY recorded_at_ms DESC, id DESC"))?;
            let rows = stmt.query_map(params![owner], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }

    /// Sets the state of `owner`'s File at `uri` (e.g. `EXPIRED`).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn set_state(&self, owner: &str, uri: &str, state: &str) -> Result<(), RegistryError> {
        let (owner, uri, state) = (owner.to_string(), uri.to_string(), state.to_string());
        self.with(move |c| c.execute("UPDATE files SET state = ?3 WHERE owner = ?1 AND uri = ?2", params![owner, uri, state]).map(drop))
            .await
    }

    /// Forgets `owner`'s File at `uri`; false when there was none.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove(&self, owner: &str, uri: &str) -> Result<bool, RegistryError> {
        let (owner, uri) = (owner.to_string(), uri.to_string());
        self.with(move |c| c.execute("DELETE FROM files WHERE owner = ?1 AND uri = ?2", params![owner, uri]).map(|n| n > 0))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(owner: &str, uri: &str) -> FileRow {
        FileRow {
            owner: owner.into(),
            upstream: "up".into(),
            name: "files/abc".into(),
            uri: uri.into(),
            mime_type: "text/plain".into(),
            size_bytes: 5,
            display_name: "a.txt".into(),
            sha256: "00".repeat(32),
            create_time: Some("2026-11-23T10:00:00Z".into()),
            expiration_time: Some("2026-11-25T10:00:00Z".into()),
            state: "ACTIVE".into(),
            recorded_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn records_belong_to_their_owner() {
        let registry = Registry::in_memory().unwrap();
        registry.record(file("alice", "u1")).await.unwrap();
        assert_eq!(registry.find("alice", "up", "u1").await.unwrap().unwrap().display_name, "a.txt");
        assert!(registry.find("bob", "up", "u1").await.unwrap().is_none(), "another session");
        assert!(registry.find("alice", "other-key", "u1").await.unwrap().is_none(), "another upstream identity");
        registry.set_state("alice", "u1", "EXPIRED").await.unwrap();
        assert_eq!(registry.list("alice").await.unwrap()[0].state, "EXPIRED");
        assert!(registry.remove("alice", "u1").await.unwrap());
        assert!(!registry.remove("alice", "u1").await.unwrap());
        assert!(registry.list("alice").await.unwrap().is_empty());
    }

    #[test]
    fn migrations_are_valid_and_the_database_reopens() {
        migrations().validate().unwrap();
        let dir = std::env::temp_dir().join(format!("parley-registry-{}", std::process::id()));
        Registry::open(&dir).unwrap();
        Registry::open(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
