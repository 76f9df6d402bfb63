//! The registry of uploads: an embedded SQLite database (`{data dir}/parley.sqlite3`,
//! migrated with rusqlite_migration) recording every File a browser session uploaded — who
//! owns it, under which upstream identity (files belong to the key that uploaded them), its
//! name, URI, type, size, SHA-256, and the create and expiration times Gemini gave.
//!
//! The registry is what lets the server refuse a File a session does not own, see a File
//! expire before Gemini says so, find the same content already uploaded (dedup), and know
//! which retained originals exist (table `originals`, see [`crate::originals`]).

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Where the File stands.
    pub state: FileState,
    /// When it was recorded, ms since the epoch.
    pub recorded_at_ms: i64,
}

/// Where a recorded File stands (kept in the `state` column as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileState {
    /// Gemini holds it (as far as the registry knows: its `expirationTime` may have passed).
    Active,
    /// Gone upstream, or counted as gone (past its expiry margin), with nothing in its place.
    Expired,
    /// Gone, and re-uploaded under a new URI: the record with the same owner, upstream and
    /// SHA-256 that is [`FileState::Active`] stands in for it.
    Replaced,
}

impl FileState {
    /// The name kept in the registry and shown to the page: `ACTIVE`, `EXPIRED`, `REPLACED`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Active => "ACTIVE",
            FileState::Expired => "EXPIRED",
            FileState::Replaced => "REPLACED",
        }
    }
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for FileState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for FileState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "ACTIVE" => Ok(FileState::Active),
            "EXPIRED" => Ok(FileState::Expired),
            "REPLACED" => Ok(FileState::Replaced),
            other => Err(rusqlite::types::FromSqlError::Other(
                format!("unknown file state `{other}`").into(),
            )),
        }
    }
}

/// A retained original as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Size, bytes.
    pub size_bytes: u64,
    /// When it was stored, ms since the epoch.
    pub stored_at_ms: i64,
    /// Whose share of the budget it counts against: an opaque key of the client address that
    /// first stored it (a hash, never the address itself); empty for originals stored before
    /// addresses were recorded.
    pub charged_to: String,
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
    ])
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

    /// `owner`'s record of the File at `uri` (under whichever upstream identity uploaded it),
    /// if any.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn find(&self, owner: &str, uri: &str) -> Result<Option<FileRow>, RegistryError> {
        Ok(self.find_many(owner, vec![uri.to_string()]).await?.into_values().next())
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

    /// Forgets a retained original.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove_original(&self, sha256: &str) -> Result<(), RegistryError> {
        let sha256 = sha256.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM originals WHERE sha256 = ?1", params![sha256]).map(drop)
        })
        .await
    }

    /// The originals to evict: those stored before `stored_before_ms`, then — while the rest
    /// pass `max_bytes` — the oldest original of whoever holds the most bytes (see
    /// [`evict_by_share`]).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_to_evict(
        &self,
        stored_before_ms: i64,
        max_bytes: u64,
    ) -> Result<Vec<String>, RegistryError> {
        self.with(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT sha256, size_bytes, stored_at_ms, charged_to FROM originals ORDER BY stored_at_ms, sha256")?;
            let all = stmt
                .query_map([], |r| {
                    let original = Original { size_bytes: r.get::<_, i64>(1)?.max(0) as u64, stored_at_ms: r.get(2)?, charged_to: r.get(3)? };
                    Ok((r.get::<_, String>(0)?, original))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(evict_by_share(all, stored_before_ms, max_bytes))
        })
        .await
    }
}

/// Which of `originals` (oldest first) to evict: every one stored before `stored_before_ms`;
/// then, while the rest pass `max_bytes`, the oldest of the heaviest holder's — the holder
/// ([`Original::charged_to`]) whose originals add up to the most bytes, the one with the older
/// original among equals. So a visitor who fills the budget (with many cookies: holders are
/// addresses) evicts their own copies, not other people's. `O(n log n)`.
pub fn evict_by_share(
    originals: Vec<(String, Original)>,
    stored_before_ms: i64,
    max_bytes: u64,
) -> Vec<String> {
    use std::{
        cmp::Reverse,
        collections::{BinaryHeap, VecDeque},
    };
    let mut evict = Vec::new();
    // Per holder: bytes held, and its originals (SHA-256, bytes, stored at), oldest first.
    type Holding = (u64, VecDeque<(String, u64, i64)>);
    let mut holders: HashMap<String, Holding> = HashMap::new();
    let mut total = 0u64;
    for (sha256, original) in originals {
        if original.stored_at_ms < stored_before_ms {
            evict.push(sha256);
            continue;
        }
        total += original.size_bytes;
        let holder = holders.entry(original.charged_to).or_default();
        holder.0 += original.size_bytes;
        holder.1.push_back((sha256, original.size_bytes, original.stored_at_ms));
    }
    // (bytes held, older first, holder): the heaviest on top.
    let mut heaviest: BinaryHeap<(u64, Reverse<i64>, String)> = holders
        .iter()
        .map(|(key, (bytes, queue))| {
            (*bytes, Reverse(queue.front().map_or(i64::MAX, |o| o.2)), key.clone())
        })
        .collect();
    while total > max_bytes {
        let Some((_, _, key)) = heaviest.pop() else { break };
        let Some((bytes, queue)) = holders.get_mut(&key) else { continue };
        let Some((sha256, size, _)) = queue.pop_front() else { continue };
        total -= size;
        *bytes -= size;
        evict.push(sha256);
        if let Some(next) = queue.front() {
            heaviest.push((*bytes, Reverse(next.2), key));
        }
    }
    evict
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
            state: FileState::Active,
            recorded_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn records_belong_to_their_owner() {
        let registry = Registry::in_memory().unwrap();
        registry.record(file("alice", "u1")).await.unwrap();
        assert_eq!(registry.find("alice", "u1").await.unwrap().unwrap().display_name, "a.txt");
        assert!(registry.find("bob", "u1").await.unwrap().is_none(), "another session");
        assert_eq!(registry.active_copies("alice", "up", &"00".repeat(32)).await.unwrap().len(), 1);
        assert!(
            registry
                .active_copies("alice", "other-key", &"00".repeat(32))
                .await
                .unwrap()
                .is_empty(),
            "another upstream identity"
        );
        assert!(
            registry.active_copies("bob", "up", &"00".repeat(32)).await.unwrap().is_empty(),
            "another session"
        );
        registry.set_state("alice", "u1", FileState::Expired).await.unwrap();
        assert_eq!(registry.list("alice", 10).await.unwrap()[0].state, FileState::Expired);
        assert!(registry.active_copies("alice", "up", &"00".repeat(32)).await.unwrap().is_empty());
        // A re-upload replaces it; removing the new one removes the old one too.
        registry.set_state("alice", "u1", FileState::Replaced).await.unwrap();
        registry.record(file("alice", "u2")).await.unwrap();
        let found =
            registry.find_many("alice", vec!["u1".into(), "u2".into(), "u3".into()]).await.unwrap();
        assert_eq!((found.len(), found["u1"].state), (2, FileState::Replaced));
        assert!(registry.is_referenced(&"00".repeat(32)).await.unwrap());
        assert!(registry.remove("alice", "u2").await.unwrap());
        assert!(
            registry.find("alice", "u1").await.unwrap().is_none(),
            "the replaced record went with it"
        );
        assert!(!registry.is_referenced(&"00".repeat(32)).await.unwrap());
        registry.record(file("alice", "u1")).await.unwrap();
        assert!(registry.remove("alice", "u1").await.unwrap());
        assert!(!registry.remove("alice", "u1").await.unwrap());
        assert!(registry.list("alice", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn originals_are_evicted_oldest_first() {
        let registry = Registry::in_memory().unwrap();
        for (sha, size, at) in [("a", 40, 1), ("b", 40, 2), ("c", 40, 3)] {
            registry
                .add_original(
                    sha,
                    Original { size_bytes: size, stored_at_ms: at, charged_to: "x".into() },
                )
                .await
                .unwrap();
        }
        assert!(registry.originals_to_evict(0, 120).await.unwrap().is_empty());
        assert_eq!(registry.originals_to_evict(0, 100).await.unwrap(), vec!["a"], "over budget");
        assert_eq!(registry.originals_to_evict(3, 1000).await.unwrap(), vec!["a", "b"], "too old");
        assert_eq!(registry.originals_to_evict(0, 0).await.unwrap(), vec!["a", "b", "c"]);
        registry.remove_original("a").await.unwrap();
        assert!(registry.original("a").await.unwrap().is_none());
        assert_eq!(registry.original("b").await.unwrap().unwrap().size_bytes, 40);
        let among = registry.originals_among(vec!["a".into(), "c".into()]).await.unwrap();
        assert_eq!(among.into_iter().collect::<Vec<_>>(), vec!["c".to_string()]);
    }

    #[test]
    fn the_heaviest_holder_is_evicted_first() {
        let original = |at: i64, size: u64, holder: &str| Original {
            size_bytes: size,
            stored_at_ms: at,
            charged_to: holder.into(),
        };
        // One visitor's original, then six of a flood from another address: a 5-unit budget.
        let mut all = vec![("victim".to_string(), original(1, 1, "v"))];
        all.extend((0..6).map(|i| (format!("flood{i}"), original(2 + i, 1, "f"))));
        assert_eq!(
            evict_by_share(all.clone(), 0, 5),
            vec!["flood0", "flood1"],
            "the flood evicts its own"
        );
        assert_eq!(
            evict_by_share(all.clone(), 3, 5),
            vec!["victim", "flood0"],
            "age still comes first"
        );
        // Equal shares: the older goes first.
        let even =
            vec![("a".to_string(), original(1, 2, "p")), ("b".to_string(), original(2, 2, "q"))];
        assert_eq!(evict_by_share(even, 0, 3), vec!["a"]);
        assert!(evict_by_share(all, 0, 100).is_empty());
    }

    #[test]
    fn migrations_are_valid_and_the_database_reopens() {
        migrations().validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        Registry::open(dir.path()).unwrap();
        Registry::open(dir.path()).unwrap();
    }
}
