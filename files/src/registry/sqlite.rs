//! The SQLite backend: one embedded database file (`{data dir}/parley.sqlite3` by default),
//! migrated with rusqlite_migration; for a single server. Calls run on tokio's blocking pool.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use super::{CacheRow, FileRow, FileState, Original, RegistryError};

impl rusqlite::types::ToSql for FileState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for FileState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

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
    ])
}

/// The SQLite registry. Cheap to clone; calls run on tokio's blocking pool, one at a time.
#[derive(Clone)]
pub struct SqliteRegistry {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteRegistry")
    }
}

const COLUMNS: &str = "owner, upstream, name, uri, mime_type, size_bytes, display_name, sha256, \
                       create_time, expiration_time, state, recorded_at_ms";

const CACHE_COLUMNS: &str = "owner, name, model, files_key, uris, tokens, expire_ms, charged_to";

fn cache_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CacheRow> {
    let uris: String = r.get(4)?;
    Ok(CacheRow {
        owner: r.get(0)?,
        name: r.get(1)?,
        model: r.get(2)?,
        files_key: r.get(3)?,
        uris: uris.lines().map(str::to_string).collect(),
        tokens: r.get::<_, i64>(5)?.max(0) as u64,
        expire_ms: r.get(6)?,
        charged_to: r.get(7)?,
    })
}

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

impl SqliteRegistry {
    /// Opens (creating and migrating) `{data_dir}/parley.sqlite3`.
    ///
    /// # Errors
    /// [`RegistryError`] when the directory or database cannot be made ready.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        Self::open_file(&data_dir.join("parley.sqlite3"))
    }

    /// Opens (creating and migrating) the database file at `path`, creating its folder.
    ///
    /// # Errors
    /// [`RegistryError`] when the folder or database cannot be made ready.
    pub fn open_file(path: &Path) -> Result<Self, RegistryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations().to_latest(&mut conn)?;
        Ok(SqliteRegistry { conn: Arc::new(Mutex::new(conn)) })
    }

    /// A registry in memory (tests).
    ///
    /// # Errors
    /// As [`Registry::open`].
    pub fn in_memory() -> Result<Self, RegistryError> {
        let mut conn = Connection::open_in_memory()?;
        migrations().to_latest(&mut conn)?;
        Ok(SqliteRegistry { conn: Arc::new(Mutex::new(conn)) })
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

    /// `owner`'s records of the Files at `uris`, by URI, in one query (the check before every
    /// chat request). URIs `owner` has no record of are absent.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn find_many(
        &self,
        owner: &str,
        uris: Vec<String>,
    ) -> Result<HashMap<String, FileRow>, RegistryError> {
        let owner = owner.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 AND uri IN (SELECT value FROM json_each(?2))"
            ))?;
            let uris = serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into());
            let rows = stmt.query_map(params![owner, uris], row)?.map(|r| r.map(|r| (r.uri.clone(), r))).collect();
            rows
        })
        .await
    }

    /// `owner`'s [`FileState::Active`] Files with this content under `upstream`, newest first: the
    /// candidates for dedup and for what an expired File was replaced by.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn active_copies(
        &self,
        owner: &str,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, RegistryError> {
        let (owner, upstream, sha256) =
            (owner.to_string(), upstream.to_string(), sha256.to_string());
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 AND upstream = ?2 AND sha256 = ?3 AND state = 'ACTIVE' \
                 ORDER BY recorded_at_ms DESC, id DESC"
            ))?;
            let rows = stmt.query_map(params![owner, upstream, sha256], row)?.collect();
            rows
        })
        .await
    }

    /// `owner`'s newest `limit` Files, newest first.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn list(&self, owner: &str, limit: usize) -> Result<Vec<FileRow>, RegistryError> {
        let owner = owner.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 ORDER BY recorded_at_ms DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![owner, limit], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }

    /// Sets the state of `owner`'s File at `uri`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn set_state(
        &self,
        owner: &str,
        uri: &str,
        state: FileState,
    ) -> Result<(), RegistryError> {
        let (owner, uri) = (owner.to_string(), uri.to_string());
        self.with(move |c| {
            c.execute(
                "UPDATE files SET state = ?3 WHERE owner = ?1 AND uri = ?2",
                params![owner, uri, state],
            )
            .map(drop)
        })
        .await
    }

    /// Forgets `owner`'s File at `uri`, and the [`FileState::Replaced`] Files it stood in for;
    /// false when there was none.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove(&self, owner: &str, uri: &str) -> Result<bool, RegistryError> {
        let (owner, uri) = (owner.to_string(), uri.to_string());
        self.with(move |c| {
            let tx = c.transaction()?;
            let sha256: Option<String> = tx
                .query_row(
                    "SELECT sha256 FROM files WHERE owner = ?1 AND uri = ?2",
                    params![owner, uri],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(sha256) = sha256 else { return Ok(false) };
            tx.execute("DELETE FROM files WHERE owner = ?1 AND uri = ?2", params![owner, uri])?;
            tx.execute(
                "DELETE FROM files WHERE owner = ?1 AND sha256 = ?2 AND state = 'REPLACED'",
                params![owner, sha256],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// See [`super::Registry::record_cache`].
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn record_cache(&self, cache: CacheRow, now_ms: i64) -> Result<(), RegistryError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM context_caches WHERE owner = ?1 AND expire_ms < ?2",
                params![cache.owner, now_ms],
            )?;
            tx.execute(
                &format!("INSERT OR REPLACE INTO context_caches ({CACHE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    cache.owner, cache.name, cache.model, cache.files_key, cache.uris.join("\n"),
                    cache.tokens as i64, cache.expire_ms, cache.charged_to
                ],
            )?;
            tx.commit()
        })
        .await
    }

    /// See [`super::Registry::find_cache`].
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn find_cache(
        &self,
        owner: &str,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, RegistryError> {
        let (owner, model, key) = (owner.to_string(), model.to_string(), files_key.to_string());
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = ?1 AND model = ?2 AND files_key = ?3 ORDER BY expire_ms DESC LIMIT 1"),
                params![owner, model, key],
                cache_row,
            )
            .optional()
        })
        .await
    }

    /// Every cache of `owner`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn caches_of(&self, owner: &str) -> Result<Vec<CacheRow>, RegistryError> {
        let owner = owner.to_string();
        self.with(move |c| {
            let mut stmt =
                c.prepare(&format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = ?1"))?;
            let rows = stmt.query_map(params![owner], cache_row)?;
            rows.collect()
        })
        .await
    }

    /// See [`super::Registry::live_caches_charged_to`].
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn live_caches_charged_to(
        &self,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, RegistryError> {
        let charged_to = charged_to.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM context_caches WHERE charged_to = ?1 AND expire_ms > ?2",
                params![charged_to, now_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
        })
        .await
    }

    /// See [`super::Registry::remove_cache`].
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove_cache(&self, owner: &str, name: &str) -> Result<bool, RegistryError> {
        let (owner, name) = (owner.to_string(), name.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM context_caches WHERE owner = ?1 AND name = ?2",
                params![owner, name],
            )
            .map(|n| n > 0)
        })
        .await
    }

    /// True when any record (of any owner) holds content `sha256`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn is_referenced(&self, sha256: &str) -> Result<bool, RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1)",
                params![sha256],
                |r| r.get(0),
            )
        })
        .await
    }

    /// The retained original with content `sha256`, if recorded.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn original(&self, sha256: &str) -> Result<Option<Original>, RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT size_bytes, stored_at_ms, charged_to FROM originals WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(Original {
                        size_bytes: r.get::<_, i64>(0)?.max(0) as u64,
                        stored_at_ms: r.get(1)?,
                        charged_to: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Which of `sha256s` have a retained original.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_among(
        &self,
        sha256s: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT sha256 FROM originals WHERE sha256 IN (SELECT value FROM json_each(?1))",
            )?;
            let list = serde_json::to_string(&sha256s).unwrap_or_else(|_| "[]".into());
            let found = stmt.query_map(params![list], |r| r.get(0))?.collect();
            found
        })
        .await
    }

    /// Records a retained original (its stored time is refreshed when it already exists; it
    /// stays charged to whoever stored it first).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn add_original(
        &self,
        sha256: &str,
        original: Original,
    ) -> Result<(), RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO originals (sha256, size_bytes, stored_at_ms, charged_to) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (sha256) DO UPDATE SET stored_at_ms = excluded.stored_at_ms",
                params![sha256, original.size_bytes as i64, original.stored_at_ms, original.charged_to],
            )
            .map(drop)
        })
        .await
    }

    /// Forgets a retained original unless a lease on it lasts past `now_ms`; true when it was
    /// forgotten.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove_original(&self, sha256: &str, now_ms: i64) -> Result<bool, RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.execute(
                "DELETE FROM originals WHERE sha256 = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM original_leases WHERE sha256 = ?1 AND until_ms > ?2)",
                params![sha256, now_ms],
            )
            .map(|n| n > 0)
        })
        .await
    }

    /// Leases the original `sha256` until `until_ms` (it is being read); the lease's id.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn lease_original(&self, sha256: &str, until_ms: i64) -> Result<i64, RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO original_leases (sha256, until_ms) VALUES (?1, ?2)",
                params![sha256, until_ms],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    /// Ends the lease `id`, and forgets every lease that ended before `now_ms`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn end_lease(&self, id: i64, now_ms: i64) -> Result<(), RegistryError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM original_leases WHERE id = ?1 OR until_ms <= ?2",
                params![id, now_ms],
            )
            .map(drop)
        })
        .await
    }

    /// The originals leased past `now_ms`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn leased_originals(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT sha256 FROM original_leases WHERE until_ms > ?1",
            )?;
            let found = stmt.query_map(params![now_ms], |r| r.get(0))?.collect();
            found
        })
        .await
    }

    /// How many retained originals there are, and their bytes in all.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_total(&self) -> Result<(u64, u64), RegistryError> {
        self.with(|c| {
            c.query_row("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM originals", [], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64))
            })
        })
        .await
    }

    /// Every retained original, oldest first.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn all_originals(&self) -> Result<Vec<(String, Original)>, RegistryError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT sha256, size_bytes, stored_at_ms, charged_to FROM originals \
                 ORDER BY stored_at_ms, sha256",
            )?;
            let all = stmt
                .query_map([], |r| {
                    let original = Original {
                        size_bytes: r.get::<_, i64>(1)?.max(0) as u64,
                        stored_at_ms: r.get(2)?,
                        charged_to: r.get(3)?,
                    };
                    Ok((r.get::<_, String>(0)?, original))
                })?
                .collect::<rusqlite::Result<Vec<_>>>();
            all
        })
        .await
    }

    /// Every record, in recording order.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn all_files(&self) -> Result<Vec<FileRow>, RegistryError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM files ORDER BY id"))?;
            let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
