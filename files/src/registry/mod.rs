//! The registry of uploads, recording every File a browser session uploaded — who owns it,
//! under which upstream identity (files belong to the key that uploaded them), its name, URI,
//! type, size, SHA-256, and the create and expiration times Gemini gave — on one of two
//! backends behind one interface ([`Registry`]): an embedded SQLite database for a single
//! server ([`sqlite`], the default `{data dir}/parley.sqlite3`), or PostgreSQL shared by several
//! replicas ([`postgres`]). Both run the same versioned migrations and the same test suite.
//!
//! The registry is what lets the server refuse a File a session does not own, see a File
//! expire before Gemini says so, find the same content already uploaded (dedup), and know
//! which retained originals exist (table `originals`, see [`crate::originals`]).

pub mod postgres;
pub mod sqlite;

use std::{collections::HashMap, path::Path};

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
    /// PostgreSQL refused or could not be reached.
    #[error("the file registry (PostgreSQL) failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("the file registry (PostgreSQL) is unreachable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database URL is not one Parley can use.
    #[error("the database URL is not usable: {0}")]
    Url(String),
    /// Another replica held a lock for longer than this process would wait.
    #[error("another replica held the lock for over {0:?}")]
    LockTimeout(std::time::Duration),
}

impl RegistryError {
    /// True when the database is only busy — no pooled connection came free in time, or
    /// another holder kept an exclusive turn longer than the caller would wait — rather than
    /// failing: worth trying again in a moment.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            RegistryError::Pool(deadpool_postgres::PoolError::Timeout(_))
                | RegistryError::LockTimeout(_)
        )
    }
}

/// Work only one holder at a time may do, across every replica sharing the registry: a lease
/// row with a deadline on PostgreSQL ([`postgres::Lease`]: no connection is held while the
/// work runs, so a holder may call Gemini for minutes); on SQLite (one process) nothing to
/// hold — the callers' own in-process locks suffice. Held until [`Exclusive::release`] (or
/// dropped).
#[derive(Debug)]
pub enum Exclusive {
    /// SQLite: this process is the only one.
    Local,
    /// PostgreSQL: a lease, renewed while it is held.
    Postgres(postgres::Lease),
}

impl Exclusive {
    /// Lets the next holder in.
    pub async fn release(self) {
        if let Exclusive::Postgres(lease) = self {
            lease.release().await;
        }
    }
}

/// The lease key of `name`: its SHA-256 in hex (names hold session ids; keys do not show them).
fn lock_key(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

/// The opaque key a client is charged under (an original, a context cache): the first 16
/// hex digits of the SHA-256 of its address key, so that the registry never holds an address.
pub fn holder_key(client: &crate::ClientKey) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(client.0.as_bytes())[..8])
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

/// A `cachedContents` resource a session made for a conversation's Files
/// (<https://ai.google.dev/api/caching>): which, for which model, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    /// The browser session it was made for.
    pub owner: String,
    /// Gemini's resource name, `cachedContents/{id}`.
    pub name: String,
    /// The model id it was made for (a cache serves only its own model).
    pub model: String,
    /// Lowercase hex SHA-256 of its File URIs, sorted and newline-joined: the key it is found by.
    pub files_key: String,
    /// The File URIs it holds.
    pub uris: Vec<String>,
    /// Its tokens (`usageMetadata.totalTokenCount`).
    pub tokens: u64,
    /// When Gemini deletes it unless its TTL is extended, ms since the epoch.
    pub expire_ms: i64,
    /// Whose share of the live caches it counts against: an opaque key of the client address
    /// that made it ([`holder_key`]); empty for caches recorded before addresses were.
    pub charged_to: String,
}

impl CacheRow {
    /// The key of a set of File URIs (see [`CacheRow::files_key`]).
    pub fn key_of(uris: &[String]) -> String {
        use sha2::Digest;
        let mut sorted: Vec<&str> = uris.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        hex::encode(sha2::Sha256::digest(sorted.join("\n").as_bytes()))
    }
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

impl std::str::FromStr for FileState {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "ACTIVE" => Ok(FileState::Active),
            "EXPIRED" => Ok(FileState::Expired),
            "REPLACED" => Ok(FileState::Replaced),
            other => Err(format!("unknown file state `{other}`")),
        }
    }
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

/// Where the registry lives: `sqlite://PATH` or `postgres://user:pass@host:port/db` (also
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
    type Err = RegistryError;

    fn from_str(url: &str) -> Result<Self, RegistryError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(RegistryError::Url("`sqlite://` needs a path".into()));
            }
            return Ok(DatabaseUrl::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        Err(RegistryError::Url("use sqlite://PATH or postgres://user:pass@host:port/db".into()))
    }
}

impl DatabaseUrl {
    /// True for a database several `parley` processes share (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

/// The registry: SQLite or PostgreSQL, with the same methods. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Registry {
    /// An embedded SQLite database.
    Sqlite(sqlite::SqliteRegistry),
    /// A PostgreSQL database with a pool of connections.
    Postgres(postgres::PgRegistry),
}

/// Calls the same method on whichever backend.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Registry::Sqlite(r) => r.$method($($arg),*).await,
            Registry::Postgres(r) => r.$method($($arg),*).await,
        }
    };
}

impl Registry {
    /// Opens the registry at `url`, creating and migrating it (PostgreSQL: under an advisory
    /// lock, so that replicas starting together apply each migration once).
    ///
    /// # Errors
    /// [`RegistryError`] when it cannot be reached or migrated.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, RegistryError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                Ok(Registry::Sqlite(sqlite::SqliteRegistry::open_file(path)?))
            }
            DatabaseUrl::Postgres(url) => {
                Ok(Registry::Postgres(postgres::PgRegistry::connect(url).await?))
            }
        }
    }

    /// Opens (creating and migrating) `{data_dir}/parley.sqlite3`.
    ///
    /// # Errors
    /// [`RegistryError`] when the directory or database cannot be made ready.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        Ok(Registry::Sqlite(sqlite::SqliteRegistry::open(data_dir)?))
    }

    /// An SQLite registry in memory (tests).
    ///
    /// # Errors
    /// As [`Registry::open`].
    pub fn in_memory() -> Result<Self, RegistryError> {
        Ok(Registry::Sqlite(sqlite::SqliteRegistry::in_memory()?))
    }

    /// The PostgreSQL backend, when it is the one (what several replicas share).
    pub fn postgres(&self) -> Option<&postgres::PgRegistry> {
        match self {
            Registry::Postgres(pg) => Some(pg),
            Registry::Sqlite(_) => None,
        }
    }

    /// Whether the database answers (for readiness checks).
    ///
    /// # Errors
    /// [`RegistryError`] when it does not.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        dispatch!(self.ping())
    }

    /// Records an upload (replacing an earlier record of the same owner and URI).
    ///
    /// # Errors
    /// [`RegistryError`]; nothing is written then.
    pub async fn record(&self, file: FileRow) -> Result<(), RegistryError> {
        dispatch!(self.record(file))
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
        dispatch!(self.find_many(owner, uris))
    }

    /// `owner`'s [`FileState::Active`] Files with this content under `upstream`, newest first:
    /// the candidates for dedup and for what an expired File was replaced by.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn active_copies(
        &self,
        owner: &str,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, RegistryError> {
        dispatch!(self.active_copies(owner, upstream, sha256))
    }

    /// `owner`'s newest `limit` Files, newest first.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn list(&self, owner: &str, limit: usize) -> Result<Vec<FileRow>, RegistryError> {
        dispatch!(self.list(owner, limit))
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
        dispatch!(self.set_state(owner, uri, state))
    }

    /// Forgets `owner`'s File at `uri`, and the [`FileState::Replaced`] Files it stood in for;
    /// false when there was none.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove(&self, owner: &str, uri: &str) -> Result<bool, RegistryError> {
        dispatch!(self.remove(owner, uri))
    }

    /// Records a `cachedContents` resource (replacing one of the same owner and name), and
    /// forgets `owner`'s caches that expired before `now_ms`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn record_cache(&self, cache: CacheRow, now_ms: i64) -> Result<(), RegistryError> {
        dispatch!(self.record_cache(cache, now_ms))
    }

    /// `owner`'s cache for `model` holding exactly the Files of `files_key`, the
    /// latest-expiring one, if any (expired ones included: the caller checks `expire_ms`).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn find_cache(
        &self,
        owner: &str,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, RegistryError> {
        dispatch!(self.find_cache(owner, model, files_key))
    }

    /// `owner`'s caches holding any of `uris`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn caches_holding(
        &self,
        owner: &str,
        uris: &[String],
    ) -> Result<Vec<CacheRow>, RegistryError> {
        let all = self.caches_of(owner).await?;
        Ok(all.into_iter().filter(|c| c.uris.iter().any(|u| uris.contains(u))).collect())
    }

    /// Every cache recorded for `owner`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn caches_of(&self, owner: &str) -> Result<Vec<CacheRow>, RegistryError> {
        dispatch!(self.caches_of(owner))
    }

    /// How many caches charged to `charged_to` (see [`CacheRow::charged_to`]) live past
    /// `now_ms`, whichever session made them.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn live_caches_charged_to(
        &self,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, RegistryError> {
        dispatch!(self.live_caches_charged_to(charged_to, now_ms))
    }

    /// Forgets `owner`'s cache `name`; false when there was none.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove_cache(&self, owner: &str, name: &str) -> Result<bool, RegistryError> {
        dispatch!(self.remove_cache(owner, name))
    }

    /// True when any record (of any owner) holds content `sha256`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn is_referenced(&self, sha256: &str) -> Result<bool, RegistryError> {
        dispatch!(self.is_referenced(sha256))
    }

    /// The retained original with content `sha256`, if recorded.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn original(&self, sha256: &str) -> Result<Option<Original>, RegistryError> {
        dispatch!(self.original(sha256))
    }

    /// Which of `sha256s` have a retained original.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_among(
        &self,
        sha256s: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        dispatch!(self.originals_among(sha256s))
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
        dispatch!(self.add_original(sha256, original))
    }

    /// Forgets a retained original unless it is leased ([`Registry::lease_original`]) past
    /// `now_ms`; true when it was forgotten.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn remove_original(&self, sha256: &str, now_ms: i64) -> Result<bool, RegistryError> {
        dispatch!(self.remove_original(sha256, now_ms))
    }

    /// Leases the original `sha256` until `until_ms` (ms since the epoch): while it is being
    /// read for a re-upload, no eviction on any replica removes it. Returns the lease's id for
    /// [`Registry::end_lease`].
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn lease_original(&self, sha256: &str, until_ms: i64) -> Result<i64, RegistryError> {
        dispatch!(self.lease_original(sha256, until_ms))
    }

    /// Ends the lease `id` (and forgets leases that ended before `now_ms`).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn end_lease(&self, id: i64, now_ms: i64) -> Result<(), RegistryError> {
        dispatch!(self.end_lease(id, now_ms))
    }

    /// The SHA-256 of every original leased past `now_ms`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn leased_originals(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        dispatch!(self.leased_originals(now_ms))
    }

    /// Takes the exclusive turn `name` if nobody holds it (on PostgreSQL, across replicas);
    /// `None` when another holder has it (the caller skips the work).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn try_exclusive(&self, name: &str) -> Result<Option<Exclusive>, RegistryError> {
        match self {
            Registry::Sqlite(_) => Ok(Some(Exclusive::Local)),
            Registry::Postgres(pg) => {
                Ok(pg.try_lease(&lock_key(name)).await?.map(Exclusive::Postgres))
            }
        }
    }

    /// Waits for the exclusive turn `name` (on PostgreSQL, across replicas) for at most
    /// `patience`.
    ///
    /// # Errors
    /// [`RegistryError::LockTimeout`] after `patience`; [`RegistryError`].
    pub async fn exclusive(
        &self,
        name: &str,
        patience: std::time::Duration,
    ) -> Result<Exclusive, RegistryError> {
        match self {
            Registry::Sqlite(_) => Ok(Exclusive::Local),
            Registry::Postgres(pg) => {
                Ok(Exclusive::Postgres(pg.lease(&lock_key(name), patience).await?))
            }
        }
    }

    /// Forgets exclusive turns whose holders died an hour ago or more (PostgreSQL; SQLite keeps
    /// none).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn tidy_leases(&self) -> Result<u64, RegistryError> {
        match self {
            Registry::Sqlite(_) => Ok(0),
            Registry::Postgres(pg) => pg.tidy_leases().await,
        }
    }

    /// How many retained originals there are, and their bytes in all (for the metrics).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_total(&self) -> Result<(u64, u64), RegistryError> {
        dispatch!(self.originals_total())
    }

    /// Every retained original, oldest first (by stored time, then SHA-256).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn all_originals(&self) -> Result<Vec<(String, Original)>, RegistryError> {
        dispatch!(self.all_originals())
    }

    /// The originals to evict: those stored before `stored_before_ms`, then — while the rest
    /// pass `max_bytes` — the oldest original of whoever holds the most bytes (see
    /// [`evict_by_share`]); none leased past `now_ms`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn originals_to_evict(
        &self,
        stored_before_ms: i64,
        max_bytes: u64,
        now_ms: i64,
    ) -> Result<Vec<String>, RegistryError> {
        let all = self.all_originals().await?;
        let leased = self.leased_originals(now_ms).await?;
        tokio::task::spawn_blocking(move || {
            evict_by_share(all, stored_before_ms, max_bytes, &leased)
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))
    }

    /// Every record (of every owner), in recording order: for copying one registry into
    /// another.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn all_files(&self) -> Result<Vec<FileRow>, RegistryError> {
        dispatch!(self.all_files())
    }

    /// Copies every record and every retained original's entry into `target` (records by
    /// owner and URI, originals by SHA-256: what `target` already has is updated, so a second
    /// run changes nothing). Leases and rate limits are not copied: they are momentary.
    ///
    /// # Errors
    /// [`RegistryError`]; what was written before stays.
    pub async fn copy_into(&self, target: &Registry) -> Result<Copied, RegistryError> {
        let files = self.all_files().await?;
        let originals = self.all_originals().await?;
        let copied = Copied { files: files.len(), originals: originals.len() };
        for file in files {
            target.record(file).await?;
        }
        for (sha256, original) in originals {
            target.add_original(&sha256, original).await?;
        }
        Ok(copied)
    }
}

/// What [`Registry::copy_into`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// File records.
    pub files: usize,
    /// Retained originals' entries.
    pub originals: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "copied {} file records and {} retained originals", self.files, self.originals)
    }
}

/// Which of `originals` (oldest first) to evict: every one stored before `stored_before_ms`;
/// then, while the rest pass `max_bytes`, the oldest of the heaviest holder's — the holder
/// ([`Original::charged_to`]) whose originals add up to the most bytes, the one with the older
/// original among equals. So a visitor who fills the budget (with many cookies: holders are
/// addresses) evicts their own copies, not other people's. Originals in `leased` (being read)
/// are never chosen, but count towards the total. `O(n log n)`.
pub fn evict_by_share(
    originals: Vec<(String, Original)>,
    stored_before_ms: i64,
    max_bytes: u64,
    leased: &std::collections::HashSet<String>,
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
        if leased.contains(&sha256) {
            total += original.size_bytes;
            continue;
        }
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

    /// What every backend must do with records.
    async fn records_belong_to_their_owner(registry: &Registry) {
        registry.ping().await.unwrap();
        registry.record(file("alice", "u1")).await.unwrap();
        assert_eq!(registry.find("alice", "u1").await.unwrap().unwrap().display_name, "a.txt");
        assert!(registry.find("bob", "u1").await.unwrap().is_none(), "another session");
        assert_eq!(registry.active_copies("alice", "up", &"00".repeat(32)).await.unwrap().len(), 1);
        let other_key = registry.active_copies("alice", "other-key", &"00".repeat(32)).await;
        assert!(other_key.unwrap().is_empty(), "another upstream identity");
        assert!(
            registry.active_copies("bob", "up", &"00".repeat(32)).await.unwrap().is_empty(),
            "another session"
        );
        registry.set_state("alice", "u1", FileState::Expired).await.unwrap();
        assert_eq!(registry.list("alice", 10).await.unwrap()[0].state, FileState::Expired);
        assert!(registry.active_copies("alice", "up", &"00".repeat(32)).await.unwrap().is_empty());
        // A re-upload replaces it; removing the new one removes the old one too.
        registry.set_state("alice", "u1", FileState::Replaced).await.unwrap();
        registry.record(FileRow { recorded_at_ms: 2, ..file("alice", "u2") }).await.unwrap();
        let found =
            registry.find_many("alice", vec!["u1".into(), "u2".into(), "u3".into()]).await.unwrap();
        assert_eq!((found.len(), found["u1"].state), (2, FileState::Replaced));
        assert_eq!(registry.list("alice", 1).await.unwrap()[0].uri, "u2", "newest first, limited");
        assert_eq!(registry.all_files().await.unwrap().len(), 2);
        assert!(registry.is_referenced(&"00".repeat(32)).await.unwrap());
        assert!(registry.remove("alice", "u2").await.unwrap());
        assert!(
            registry.find("alice", "u1").await.unwrap().is_none(),
            "the replaced record went with it"
        );
        assert!(!registry.is_referenced(&"00".repeat(32)).await.unwrap());
        // Recording the same owner and URI again replaces the record.
        registry.record(file("alice", "u1")).await.unwrap();
        registry
            .record(FileRow { display_name: "b.txt".into(), ..file("alice", "u1") })
            .await
            .unwrap();
        assert_eq!(registry.list("alice", 10).await.unwrap().len(), 1);
        assert_eq!(registry.find("alice", "u1").await.unwrap().unwrap().display_name, "b.txt");
        assert!(registry.remove("alice", "u1").await.unwrap());
        assert!(!registry.remove("alice", "u1").await.unwrap());
        assert!(registry.list("alice", 10).await.unwrap().is_empty());
    }

    /// What every backend must do with retained originals.
    async fn originals_are_evicted_oldest_first(registry: &Registry) {
        for (sha, size, at) in [("a", 40, 1), ("b", 40, 2), ("c", 40, 3)] {
            let original = Original { size_bytes: size, stored_at_ms: at, charged_to: "x".into() };
            registry.add_original(sha, original).await.unwrap();
        }
        assert_eq!(registry.originals_total().await.unwrap(), (3, 120));
        assert!(registry.originals_to_evict(0, 120, 0).await.unwrap().is_empty());
        assert_eq!(registry.originals_to_evict(0, 100, 0).await.unwrap(), vec!["a"], "over budget");
        assert_eq!(
            registry.originals_to_evict(3, 1000, 0).await.unwrap(),
            vec!["a", "b"],
            "too old"
        );
        assert_eq!(registry.originals_to_evict(0, 0, 0).await.unwrap(), vec!["a", "b", "c"]);
        // A leased original (being read for a re-upload) is neither chosen nor removed.
        let lease = registry.lease_original("a", 100).await.unwrap();
        assert_eq!(registry.originals_to_evict(0, 0, 50).await.unwrap(), vec!["b", "c"]);
        assert!(!registry.remove_original("a", 50).await.unwrap(), "leased");
        assert_eq!(registry.originals_to_evict(0, 0, 100).await.unwrap(), vec!["a", "b", "c"]);
        registry.end_lease(lease, 50).await.unwrap();
        assert!(registry.leased_originals(0).await.unwrap().is_empty());
        // Stored again: a new time, still charged to the first holder.
        let again = Original { size_bytes: 40, stored_at_ms: 9, charged_to: "y".into() };
        registry.add_original("a", again).await.unwrap();
        let a = registry.original("a").await.unwrap().unwrap();
        assert_eq!((a.stored_at_ms, a.charged_to.as_str()), (9, "x"));
        assert!(registry.remove_original("a", 50).await.unwrap());
        assert!(registry.original("a").await.unwrap().is_none());
        assert_eq!(registry.original("b").await.unwrap().unwrap().size_bytes, 40);
        let among = registry.originals_among(vec!["a".into(), "c".into()]).await.unwrap();
        assert_eq!(among.into_iter().collect::<Vec<_>>(), vec!["c".to_string()]);
    }

    /// What every backend must do with `cachedContents` records.
    async fn caches_belong_to_their_owner(registry: &Registry) {
        let uris = vec!["u2".to_string(), "u1".to_string()];
        let cache = |name: &str, expire_ms| CacheRow {
            owner: "alice".into(),
            name: name.into(),
            model: "gemini-2.5-flash".into(),
            files_key: CacheRow::key_of(&uris),
            uris: uris.clone(),
            tokens: 30_000,
            expire_ms,
            charged_to: "addr".into(),
        };
        registry.record_cache(cache("cachedContents/old", 5), 0).await.unwrap();
        registry.record_cache(cache("cachedContents/new", 50), 0).await.unwrap();
        let key = CacheRow::key_of(&["u1".to_string(), "u2".to_string(), "u1".to_string()]);
        assert_eq!(key, cache("x", 0).files_key, "the key ignores order and repeats");
        let found = registry.find_cache("alice", "gemini-2.5-flash", &key).await.unwrap();
        assert_eq!(found, Some(cache("cachedContents/new", 50)), "the latest-expiring one");
        assert!(registry.find_cache("bob", "gemini-2.5-flash", &key).await.unwrap().is_none());
        assert!(registry.find_cache("alice", "gemini-2.5-pro", &key).await.unwrap().is_none());
        assert_eq!(registry.caches_holding("alice", &["u1".into()]).await.unwrap().len(), 2);
        assert!(registry.caches_holding("alice", &["u3".into()]).await.unwrap().is_empty());
        assert!(registry.caches_holding("bob", &["u1".into()]).await.unwrap().is_empty());
        // Recording at time 10 forgets the one that expired at 5.
        registry.record_cache(cache("cachedContents/new", 60), 10).await.unwrap();
        assert_eq!(registry.caches_holding("alice", &["u1".into()]).await.unwrap().len(), 1);
        assert!(!registry.remove_cache("bob", "cachedContents/new").await.unwrap());
        assert_eq!(registry.live_caches_charged_to("addr", 10).await.unwrap(), 1);
        assert_eq!(registry.live_caches_charged_to("addr", 60).await.unwrap(), 0, "expired");
        assert_eq!(registry.live_caches_charged_to("other", 10).await.unwrap(), 0);
        assert!(registry.remove_cache("alice", "cachedContents/new").await.unwrap());
        assert!(registry.find_cache("alice", "gemini-2.5-flash", &key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        records_belong_to_their_owner(&Registry::in_memory().unwrap()).await;
        originals_are_evicted_oldest_first(&Registry::in_memory().unwrap()).await;
        caches_belong_to_their_owner(&Registry::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = postgres::testing::fresh_database("suite").await else { return };
        let registry = Registry::connect(&url.parse().unwrap()).await.unwrap();
        records_belong_to_their_owner(&registry).await;
        originals_are_evicted_oldest_first(&registry).await;
        caches_belong_to_their_owner(&registry).await;
    }

    #[tokio::test]
    async fn a_single_servers_registry_copies_into_postgres() {
        let Some(url) = postgres::testing::fresh_database("copy").await else { return };
        let lite = Registry::in_memory().unwrap();
        lite.record(file("alice", "u1")).await.unwrap();
        let replaced =
            FileRow { state: FileState::Replaced, recorded_at_ms: 2, ..file("bob", "u2") };
        lite.record(replaced.clone()).await.unwrap();
        let original = Original { size_bytes: 5, stored_at_ms: 7, charged_to: "x".into() };
        lite.add_original(&"00".repeat(32), original.clone()).await.unwrap();
        let pg = Registry::connect(&url.parse().unwrap()).await.unwrap();
        for _ in 0..2 {
            let copied = lite.copy_into(&pg).await.unwrap();
            assert_eq!(copied, Copied { files: 2, originals: 1 });
            assert_eq!(pg.all_files().await.unwrap(), vec![file("alice", "u1"), replaced.clone()]);
            assert_eq!(
                pg.all_originals().await.unwrap(),
                vec![("00".repeat(32), original.clone())]
            );
        }
        let said = Copied { files: 2, originals: 1 }.to_string();
        assert_eq!(said, "copied 2 file records and 1 retained originals");
    }

    #[tokio::test]
    async fn replicas_starting_together_migrate_once() {
        let Some(url) = postgres::testing::fresh_database("migrate").await else { return };
        let url: DatabaseUrl = url.parse().unwrap();
        let starts = futures::future::join_all((0..4).map(|_| Registry::connect(&url))).await;
        for registry in starts {
            let Registry::Postgres(pg) = registry.unwrap() else { panic!("not PostgreSQL") };
            assert_eq!(
                pg.applied_migrations().await.unwrap(),
                vec![1, 2, 3, 4, 5, 6],
                "each migration once"
            );
        }
    }

    #[tokio::test]
    async fn an_exclusive_turn_is_one_replicas_at_a_time() {
        let Some(url) = postgres::testing::fresh_database("exclusive").await else { return };
        let url: DatabaseUrl = url.parse().unwrap();
        let (a, b) =
            (Registry::connect(&url).await.unwrap(), Registry::connect(&url).await.unwrap());
        let held = a.try_exclusive("evict").await.unwrap().expect("free");
        assert!(b.try_exclusive("evict").await.unwrap().is_none(), "A holds it");
        assert!(b.try_exclusive("other").await.unwrap().is_some(), "another name is free");
        let patience = std::time::Duration::from_millis(300);
        assert!(matches!(b.exclusive("evict", patience).await, Err(RegistryError::LockTimeout(_))));
        held.release().await;
        let turn = b.exclusive("evict", patience).await.expect("released");
        // Dropped without release (a cancelled request): it is given back by itself.
        drop(turn);
        let again = a.exclusive("evict", std::time::Duration::from_secs(10)).await;
        assert!(again.is_ok(), "{again:?}");
        // A holder that died (no renewal, no release) loses its turn at its deadline.
        let Registry::Postgres(pg) = &b else { panic!("not PostgreSQL") };
        assert!(b.try_exclusive("evict").await.unwrap().is_none(), "A holds it again");
        pg.end_leases_now().await;
        let taken = b.try_exclusive("evict").await.unwrap();
        assert!(taken.is_some(), "past its deadline, the turn passes on");
        again.unwrap().release().await;
        assert!(a.try_exclusive("evict").await.unwrap().is_none(), "A's late release left B's");
        taken.unwrap().release().await;
        // Holding turns costs no connection: more held at once than either pool has.
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let held = futures::future::join_all(names.iter().map(|n| a.exclusive(n, patience)));
        let held: Vec<_> = held.await.into_iter().map(Result::unwrap).collect();
        assert_eq!(a.list("nobody", 1).await.unwrap().len(), 0, "the registry still answers");
        for turn in held {
            turn.release().await;
        }
        assert_eq!(a.tidy_leases().await.unwrap(), 0);
        // SQLite has one process: always its turn.
        let lite = Registry::in_memory().unwrap();
        assert!(lite.try_exclusive("evict").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn shared_rate_limits_follow_gcra() {
        let Some(url) = postgres::testing::fresh_database("rates").await else { return };
        let Registry::Postgres(pg) = Registry::connect(&url.parse().unwrap()).await.unwrap() else {
            panic!("not PostgreSQL")
        };
        // Three a minute (one cell every 20 s, bursts of three).
        for _ in 0..3 {
            assert_eq!(pg.take_cells("chat:s:alice", 20_000, 3, 1).await.unwrap(), None);
        }
        let wait = pg.take_cells("chat:s:alice", 20_000, 3, 1).await.unwrap().unwrap();
        assert!((19_000..=20_000).contains(&wait), "{wait} ms");
        assert_eq!(pg.take_cells("chat:s:bob", 20_000, 3, 1).await.unwrap(), None, "another key");
        assert!(
            pg.take_cells("chat:s:carol", 20_000, 3, 4).await.unwrap().is_some(),
            "over the burst"
        );
        assert_eq!(
            pg.take_cells("chat:s:carol", 20_000, 3, 3).await.unwrap(),
            None,
            "nothing was taken"
        );
        // Concurrent takes from many connections: exactly the burst passes.
        let takes = (0..10).map(|_| pg.take_cells("chat:s:dave", 60_000, 5, 1));
        let passed = futures::future::join_all(takes)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(None)))
            .count();
        assert_eq!(passed, 5);
        assert_eq!(pg.tidy_rate_limits().await.unwrap(), 0, "nothing old yet");
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
    fn the_heaviest_holder_is_evicted_first() {
        let original = |at: i64, size: u64, holder: &str| Original {
            size_bytes: size,
            stored_at_ms: at,
            charged_to: holder.into(),
        };
        // One visitor's original, then six of a flood from another address: a 5-unit budget.
        let mut all = vec![("victim".to_string(), original(1, 1, "v"))];
        all.extend((0..6).map(|i| (format!("flood{i}"), original(2 + i, 1, "f"))));
        let none = std::collections::HashSet::new();
        assert_eq!(
            evict_by_share(all.clone(), 0, 5, &none),
            vec!["flood0", "flood1"],
            "the flood evicts its own"
        );
        assert_eq!(
            evict_by_share(all.clone(), 3, 5, &none),
            vec!["victim", "flood0"],
            "age still comes first"
        );
        let leased = std::collections::HashSet::from(["flood0".to_string()]);
        assert_eq!(
            evict_by_share(all.clone(), 0, 5, &leased),
            vec!["flood1", "flood2"],
            "a leased original stays, and still counts"
        );
        // Equal shares: the older goes first.
        let even =
            vec![("a".to_string(), original(1, 2, "p")), ("b".to_string(), original(2, 2, "q"))];
        assert_eq!(evict_by_share(even, 0, 3, &none), vec!["a"]);
        assert!(evict_by_share(all, 0, 100, &none).is_empty());
    }

    #[test]
    fn an_sqlite_database_reopens() {
        let dir = tempfile::tempdir().unwrap();
        Registry::open(dir.path()).unwrap();
        Registry::open(dir.path()).unwrap();
    }
}
