//! Retained originals: the bytes of every upload, content-addressed by SHA-256, so that a File
//! Gemini has deleted (48 h; 12 h behind some gateways) can be uploaded again without asking
//! the person for it.
//!
//! The bytes live in an [`object_store`] store — the local file system under
//! `{data dir}/originals` today, S3 or GCS tomorrow — as `sha256/{first two hex}/{sha256}`;
//! the store's `originals` table knows what is there, how big, and since when. Every
//! upload is first spooled to `staging/…` (so that its SHA-256 is known before anything goes
//! to Gemini: that is what dedup needs), then kept under its content key or deleted.
//!
//! Policy ([`RetainPolicy`]): an original is kept for `retain_for` after it was stored (or
//! last uploaded again); once the total passes `max_bytes`, the oldest originals of whoever
//! holds the most bytes (by client address) are evicted first, so one visitor filling the
//! budget does not push out other people's; either at zero disables retention.

use std::{
    ops::Range,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use futures::{future::BoxFuture, Stream, StreamExt, TryStreamExt};
use object_store::{
    buffered::BufWriter, local::LocalFileSystem, path::Path as Key, GetOptions, GetRange,
    ObjectStore, ObjectStoreExt,
};
use parley_store::{Original, Store, StoreError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::time::now_ms;

/// How long, and how much, to retain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainPolicy {
    /// How long an original is kept after it was stored (`PARLEY_RETAIN_FOR`, default 7 days).
    pub retain_for: Duration,
    /// Most bytes kept in all; the oldest originals go first (`PARLEY_RETAIN_MAX_BYTES`).
    pub max_bytes: u64,
}

impl RetainPolicy {
    /// Retention switched off: originals are deleted as soon as they are uploaded.
    pub const DISABLED: RetainPolicy = RetainPolicy { retain_for: Duration::ZERO, max_bytes: 0 };

    /// False when either limit is zero.
    pub fn enabled(&self) -> bool {
        !self.retain_for.is_zero() && self.max_bytes > 0
    }
}

/// What can go wrong while spooling or reading an original.
#[derive(Debug, thiserror::Error)]
pub enum OriginalsError {
    /// The store refused (disk full, permissions, …).
    #[error("the original could not be stored: {0}")]
    Store(#[from] object_store::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] StoreError),
    /// The body could not be read (the browser went away, a bad multipart part, …).
    #[error("the upload could not be read: {0}")]
    Body(String),
    /// The body had more bytes than announced.
    #[error("the file has more than the {declared} bytes announced")]
    TooLong {
        /// Bytes announced.
        declared: u64,
    },
}

/// An upload spooled to the store: its bytes are under a staging key until [`Originals::keep`]
/// or [`Originals::discard`].
#[derive(Debug)]
pub struct Spooled {
    key: Key,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Bytes received.
    pub size_bytes: u64,
}

/// An object in the store as a [`gemini::UploadSource`]: each chunk of an upload streams from
/// a ranged read, so no chunk is held in memory.
#[derive(Debug, Clone)]
pub struct StoredBytes {
    store: Arc<dyn ObjectStore>,
    key: Key,
}

impl gemini::UploadSource for StoredBytes {
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, std::io::Result<gemini::ByteStream>> {
        Box::pin(async move {
            if range.is_empty() {
                // object_store refuses an empty range; a zero-byte file has only this one.
                return Ok(futures::stream::empty().boxed());
            }
            let options =
                GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
            let result =
                self.store.get_opts(&self.key, options).await.map_err(std::io::Error::other)?;
            Ok(result.into_stream().map_err(std::io::Error::other).boxed())
        })
    }
}

/// Milliseconds since the epoch, `age` ago.
fn millis_ago(age: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// The store of originals. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Originals {
    store: Arc<dyn ObjectStore>,
    db: Store,
    policy: RetainPolicy,
    /// Bytes of each part an upload is spooled in (the store's minimum for multipart).
    part_bytes: usize,
}

/// Bytes an upload being spooled holds in memory before they go to a local store (256 KiB):
/// the file system needs no large parts.
const LOCAL_PART_BYTES: usize = 256 << 10;

/// The same for S3 (5 MiB): S3, MinIO and moto refuse multipart parts under 5 MiB but the last.
const S3_PART_BYTES: usize = 5 << 20;

/// Parts of one upload on their way to the store at once: every concurrent upload holds up to
/// three parts (one filling, two in flight).
const SPOOL_PARTS_IN_FLIGHT: usize = 2;

/// Staging objects older than this are a dead process's leftovers (a 2 GiB upload at 1 Mbit/s
/// takes under 5 h): [`Originals::tidy`] deletes them, whichever replica wrote them.
const STAGING_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How long a lease on an original lasts unless ended sooner ([`Originals::lease`]): longer
/// than any re-upload takes.
pub const LEASE_FOR: Duration = Duration::from_secs(2 * 3600);

/// A lease on a retained original (see [`Originals::lease`]).
#[derive(Debug)]
#[must_use = "end the lease with Originals::end_lease"]
pub struct Lease(i64);

/// Distinguishes staging keys within one process.
static STAGED: AtomicU64 = AtomicU64::new(0);

/// This process's staging folder, `staging/{random}`: several replicas share one store, and a
/// process id is not unique across hosts.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        hasher.update(format!("{:?}", std::thread::current().id()).as_bytes());
        hex::encode(&hasher.finalize()[..8])
    })
}

/// Where retained originals are kept: `file://PATH` (a folder of this server) or
/// `s3://bucket/prefix` (an S3-compatible store several replicas share, configured by the
/// standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` and
/// `AWS_ALLOW_HTTP`, through `object_store`'s S3 backend, path-style requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginalsUrl {
    /// A local folder.
    File(std::path::PathBuf),
    /// An S3 bucket and a key prefix (possibly empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
}

impl std::str::FromStr for OriginalsUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("`file://` needs a path".into());
            }
            return Ok(OriginalsUrl::File(path.into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("`s3://` needs a bucket".into());
            }
            return Ok(OriginalsUrl::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        Err("use file://PATH or s3://bucket/prefix".into())
    }
}

impl OriginalsUrl {
    /// True for a store several `parley` processes share (S3).
    pub fn is_shared(&self) -> bool {
        matches!(self, OriginalsUrl::S3 { .. })
    }
}

impl Originals {
    /// Originals under `{data_dir}/originals` (created if needed), recorded in `db`.
    ///
    /// # Errors
    /// [`OriginalsError::Store`] when the folder cannot be created.
    pub fn local(
        data_dir: &std::path::Path,
        db: Store,
        policy: RetainPolicy,
    ) -> Result<Self, OriginalsError> {
        Self::at(&OriginalsUrl::File(data_dir.join("originals")), db, policy)
    }

    /// Originals at `url` (a local folder is created if needed), recorded in `db`.
    ///
    /// # Errors
    /// [`OriginalsError::Store`] when the folder cannot be created or the S3 configuration is
    /// incomplete (the store is not contacted here: see [`Originals::ping`]).
    pub fn at(url: &OriginalsUrl, db: Store, policy: RetainPolicy) -> Result<Self, OriginalsError> {
        let (store, part_bytes): (Arc<dyn ObjectStore>, usize) = match url {
            OriginalsUrl::File(root) => {
                std::fs::create_dir_all(root).map_err(|e| {
                    OriginalsError::Store(object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })
                })?;
                let store = LocalFileSystem::new_with_prefix(root)?.with_automatic_cleanup(true);
                (Arc::new(store), LOCAL_PART_BYTES)
            }
            OriginalsUrl::S3 { bucket, prefix } => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()?;
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.as_str()))
                };
                (store, S3_PART_BYTES)
            }
        };
        Ok(Originals { store, db, policy, part_bytes })
    }

    /// Whether the store answers (for readiness checks): a missing object is an answer.
    ///
    /// # Errors
    /// [`OriginalsError::Store`] when it does not.
    pub async fn ping(&self) -> Result<(), OriginalsError> {
        match self.store.head(&Key::from("readyz")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The retention policy.
    pub fn policy(&self) -> RetainPolicy {
        self.policy
    }

    fn content_key(sha256: &str) -> Key {
        Key::from(format!("sha256/{}/{sha256}", &sha256[..2.min(sha256.len())]))
    }

    /// Where the thumbnail of the original of `sha256` is kept, beside it.
    fn thumbnail_key(sha256: &str) -> Key {
        Key::from(format!("thumbnails/{}/{sha256}.jpg", &sha256[..2.min(sha256.len())]))
    }

    /// A JPEG thumbnail of the retained original of `sha256` (an image), made on first ask
    /// and kept beside the original until it goes; `None` when there is no original, it is
    /// over [`crate::thumbnails::MAX_SOURCE_BYTES`], or no thumbnail can be made of it (not a
    /// picture, past the decoding limits: see [`crate::thumbnails`]).
    ///
    /// # Errors
    /// [`OriginalsError`] when the database or the object store fails.
    pub async fn thumbnail(&self, sha256: &str) -> Result<Option<Bytes>, OriginalsError> {
        static MAKING: tokio::sync::Semaphore =
            tokio::sync::Semaphore::const_new(crate::thumbnails::AT_ONCE);
        let key = Self::thumbnail_key(sha256);
        match self.store.get(&key).await {
            Ok(kept) => return Ok(Some(kept.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let Some((original, size)) = self.open(sha256).await? else { return Ok(None) };
        if size > crate::thumbnails::MAX_SOURCE_BYTES {
            return Ok(None);
        }
        let _turn = MAKING.acquire().await.map_err(|e| OriginalsError::Body(e.to_string()))?;
        let bytes = self.store.get(&original.key).await?.bytes().await?;
        let made = tokio::task::spawn_blocking(move || crate::thumbnails::make(&bytes))
            .await
            .map_err(|e| OriginalsError::Body(e.to_string()))?;
        match made {
            Ok(jpeg) => {
                let jpeg = Bytes::from(jpeg);
                self.store.put(&key, jpeg.clone().into()).await?;
                Ok(Some(jpeg))
            }
            Err(e) => {
                tracing::info!(sha256, error = %e, "no thumbnail");
                Ok(None)
            }
        }
    }

    /// Writes `body` to a staging key, hashing it on the way; at most `declared` bytes are
    /// accepted. Nothing is left behind on failure.
    ///
    /// # Errors
    /// [`OriginalsError::Body`] when the body fails, [`OriginalsError::TooLong`] past
    /// `declared` bytes, [`OriginalsError::Store`] when the store refuses.
    pub async fn spool<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
        declared: u64,
    ) -> Result<Spooled, OriginalsError> {
        let key = Key::from(format!(
            "staging/{}/{}-{}",
            instance(),
            now_ms(),
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        let mut writer = BufWriter::with_capacity(self.store.clone(), key.clone(), self.part_bytes)
            .with_max_concurrency(SPOOL_PARTS_IN_FLIGHT);
        let mut hasher = Sha256::new();
        let mut size_bytes = 0u64;
        let mut body = std::pin::pin!(body);
        let outcome: Result<(), OriginalsError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| OriginalsError::Body(e.to_string()))?;
                size_bytes += chunk.len() as u64;
                if size_bytes > declared {
                    return Err(OriginalsError::TooLong { declared });
                }
                hasher.update(&chunk);
                writer.put(chunk).await?;
            }
            writer.shutdown().await.map_err(|e| {
                OriginalsError::Store(object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })
            })
        }
        .await;
        if let Err(e) = outcome {
            let _ = writer.abort().await;
            let _ = self.store.delete(&key).await;
            return Err(e);
        }
        Ok(Spooled { key, sha256: hex::encode(hasher.finalize()), size_bytes })
    }

    /// The bytes of a spooled upload, for [`gemini::Client::upload_from`].
    pub fn spooled_bytes(&self, spooled: &Spooled) -> StoredBytes {
        StoredBytes { store: self.store.clone(), key: spooled.key.clone() }
    }

    /// The first `n` bytes (or fewer) of a spooled upload: for checking its magic bytes.
    ///
    /// # Errors
    /// [`OriginalsError::Store`].
    pub async fn head(&self, spooled: &Spooled, n: u64) -> Result<Vec<u8>, OriginalsError> {
        let end = n.min(spooled.size_bytes);
        if end == 0 {
            return Ok(Vec::new());
        }
        Ok(self.store.get_range(&spooled.key, 0..end).await?.to_vec())
    }

    /// Keeps a spooled upload as the retained original of its content (or deletes it when
    /// retention is off), charged to the client address it came from, then evicts what the
    /// policy no longer allows. True when an original of this content is retained afterwards.
    ///
    /// # Errors
    /// [`OriginalsError`]; the staging copy is deleted whatever happens.
    pub async fn keep(
        &self,
        spooled: Spooled,
        from: &crate::ClientKey,
    ) -> Result<bool, OriginalsError> {
        if !self.policy.enabled() || spooled.size_bytes > self.policy.max_bytes {
            self.discard(spooled).await;
            return Ok(false);
        }
        let target = Self::content_key(&spooled.sha256);
        if let Err(e) = self.store.rename(&spooled.key, &target).await {
            self.discard(spooled).await;
            return Err(e.into());
        }
        let original = Original {
            size_bytes: spooled.size_bytes,
            stored_at_ms: now_ms(),
            charged_to: parley_store::holder_key(&from.0),
        };
        self.db.add_original(&spooled.sha256, original).await?;
        self.evict().await?;
        Ok(self.db.original(&spooled.sha256).await?.is_some())
    }

    /// Deletes a spooled upload.
    pub async fn discard(&self, spooled: Spooled) {
        if let Err(e) = self.store.delete(&spooled.key).await {
            tracing::warn!(error = %e, "a staged upload could not be deleted");
        }
    }

    /// True when [`Originals::open`] would find the original of `sha256` (recorded, within
    /// `retain_for`, retention on); the store itself is not touched.
    ///
    /// # Errors
    /// [`OriginalsError::Database`].
    pub async fn is_retained(&self, sha256: &str) -> Result<bool, OriginalsError> {
        if !self.policy.enabled() {
            return Ok(false);
        }
        Ok(self.db.original(sha256).await?.is_some_and(|o| self.within_retain_for(&o)))
    }

    /// True while `original` is younger than `retain_for`.
    fn within_retain_for(&self, original: &Original) -> bool {
        original.stored_at_ms >= self.stored_before_ms()
    }

    /// The retained original of `sha256` with its size (bytes), or `None` when there is none
    /// (never stored, evicted, past `retain_for`, or retention is off).
    ///
    /// # Errors
    /// [`OriginalsError`] when the database or the object store fails.
    pub async fn open(&self, sha256: &str) -> Result<Option<(StoredBytes, u64)>, OriginalsError> {
        if !self.policy.enabled() {
            return Ok(None);
        }
        let Some(original) = self.db.original(sha256).await? else { return Ok(None) };
        if !self.within_retain_for(&original) {
            self.evict().await?;
            return Ok(None);
        }
        let key = Self::content_key(sha256);
        match self.store.head(&key).await {
            Ok(_) => {
                Ok(Some((StoredBytes { store: self.store.clone(), key }, original.size_bytes)))
            }
            Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(
                    sha256,
                    "a retained original is missing from the store; forgetting it"
                );
                self.db.remove_original(sha256, now_ms()).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks the original of `sha256` as used now (it was uploaded again): `retain_for`
    /// counts from here.
    ///
    /// # Errors
    /// [`OriginalsError::Database`].
    pub async fn touch(&self, sha256: &str) -> Result<(), OriginalsError> {
        if let Some(original) = self.db.original(sha256).await? {
            let original = Original { stored_at_ms: now_ms(), ..original };
            self.db.add_original(sha256, original).await?;
        }
        Ok(())
    }

    /// Deletes the original of `sha256` unless a File record still holds that content.
    ///
    /// # Errors
    /// [`OriginalsError`].
    pub async fn release(&self, sha256: &str) -> Result<(), OriginalsError> {
        if !self.db.is_referenced(sha256).await? {
            self.delete(sha256).await?;
        }
        Ok(())
    }

    /// Forgets the original of `sha256` and deletes its bytes, unless it is leased (being read
    /// for a re-upload, perhaps by another replica); true when it went.
    async fn delete(&self, sha256: &str) -> Result<bool, OriginalsError> {
        if !self.db.remove_original(sha256, now_ms()).await? {
            return Ok(false);
        }
        match self.store.delete(&Self::thumbnail_key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(sha256, error = %e, "a thumbnail could not be deleted"),
        }
        match self.store.delete(&Self::content_key(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Leases the original of `sha256` while it is read for a re-upload: no eviction (on any
    /// replica) removes it until [`Originals::end_lease`], or [`LEASE_FOR`] if this process
    /// dies first.
    ///
    /// # Errors
    /// [`OriginalsError::Database`].
    pub async fn lease(&self, sha256: &str) -> Result<Lease, OriginalsError> {
        let until = now_ms().saturating_add(i64::try_from(LEASE_FOR.as_millis()).unwrap_or(0));
        Ok(Lease(self.db.lease_original(sha256, until).await?))
    }

    /// Ends a lease taken by [`Originals::lease`] (a failure is logged: the lease then ends by
    /// itself after [`LEASE_FOR`]).
    pub async fn end_lease(&self, lease: Lease) {
        if let Err(e) = self.db.end_lease(lease.0, now_ms()).await {
            tracing::warn!(error = %e, "a lease on a retained original could not be ended");
        }
    }

    fn stored_before_ms(&self) -> i64 {
        now_ms()
            .saturating_sub(i64::try_from(self.policy.retain_for.as_millis()).unwrap_or(i64::MAX))
    }

    /// Deletes the originals the policy no longer allows: older than `retain_for`, then the
    /// oldest until the total fits `max_bytes` (all of them when retention is off). Returns
    /// how many went.
    ///
    /// # Errors
    /// [`OriginalsError`].
    pub async fn evict(&self) -> Result<usize, OriginalsError> {
        let (before, max) = if self.policy.enabled() {
            (self.stored_before_ms(), self.policy.max_bytes)
        } else {
            (i64::MAX, 0)
        };
        // One replica at a time: the others skip, the holder evicts for all of them.
        let Some(turn) = self.db.try_exclusive("parley:evict-originals").await? else {
            return Ok(0);
        };
        let outcome = self.evict_now(before, max).await;
        turn.release().await;
        outcome
    }

    async fn evict_now(&self, before: i64, max: u64) -> Result<usize, OriginalsError> {
        let mut evicted = 0;
        for sha256 in self.db.originals_to_evict(before, max, now_ms()).await? {
            if self.delete(&sha256).await? {
                tracing::info!(%sha256, "retained original evicted");
                metrics::counter!("parley_original_evictions_total").increment(1);
                evicted += 1;
            }
        }
        Ok(evicted)
    }

    /// Removes staging leftovers — this process's, and any older than a day (a process that
    /// died mid-upload) — and evicts; run at start-up. Another replica's upload in flight is
    /// left alone.
    ///
    /// # Errors
    /// [`OriginalsError`].
    pub async fn tidy(&self) -> Result<(), OriginalsError> {
        let mine = Key::from(format!("staging/{}", instance()));
        let cutoff = millis_ago(STAGING_MAX_AGE);
        let staged: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&Key::from("staging"))).try_collect().await?;
        for meta in staged {
            let own = meta.location.prefix_matches(&mine);
            if own || meta.last_modified.timestamp_millis() < cutoff {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        self.evict().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    async fn read(bytes: &StoredBytes, range: Range<u64>) -> Vec<u8> {
        use gemini::UploadSource;
        bytes.read(range).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap()
    }

    async fn read_all(originals: &Originals, sha: &str) -> Option<Vec<u8>> {
        let (bytes, size) = originals.open(sha).await.unwrap()?;
        Some(read(&bytes, 0..size).await)
    }

    fn here() -> crate::ClientKey {
        crate::ClientKey("127.0.0.1".into())
    }

    /// Every key in the store (under its prefix).
    async fn keys(originals: &Originals) -> Vec<String> {
        let all: Vec<object_store::ObjectMeta> =
            originals.store.list(None).try_collect().await.unwrap();
        all.into_iter().map(|m| m.location.to_string()).collect()
    }

    /// A store for each backend the tests have: a local folder, and S3 when
    /// `PARLEY_TEST_S3_BUCKET` names a bucket (`scripts/test.sh` runs moto; a missing one fails
    /// there). Each S3 store has a prefix of its own.
    fn stores(temp: &tempfile::TempDir, name: &str) -> Vec<OriginalsUrl> {
        let mut urls = vec![OriginalsUrl::File(temp.path().join("originals"))];
        match std::env::var("PARLEY_TEST_S3_BUCKET") {
            Ok(bucket) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                urls.push(OriginalsUrl::S3 { bucket, prefix: format!("test/{name}-{nanos:08x}") });
            }
            Err(_) => {
                assert!(
                    std::env::var_os("PARLEY_TEST_REQUIRE_SERVICES").is_none(),
                    "PARLEY_TEST_S3_BUCKET is not set"
                );
                eprintln!("PARLEY_TEST_S3_BUCKET is not set: the S3 case is skipped");
            }
        }
        urls
    }

    #[tokio::test]
    async fn originals_are_kept_by_content_and_evicted_oldest_first() {
        let temp = tempfile::tempdir().unwrap();
        for url in stores(&temp, "keep") {
            let db = Store::in_memory().unwrap();
            let policy = RetainPolicy { retain_for: Duration::from_secs(3600), max_bytes: 10 };
            let originals = Originals::at(&url, db, policy).unwrap();
            originals.ping().await.unwrap();
            let a = originals.spool(body(&[b"hel", b"lo"]), 5).await.unwrap();
            assert_eq!(
                (a.size_bytes, a.sha256.as_str()),
                (5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
            );
            let sha_a = a.sha256.clone();
            assert!(originals.keep(a, &here()).await.unwrap());
            assert_eq!(read_all(&originals, &sha_a).await.unwrap(), b"hello", "{url:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
            // Six more bytes pass the 10-byte budget: the older one goes.
            let b = originals.spool(body(&[b"world!"]), 6).await.unwrap();
            let sha_b = b.sha256.clone();
            assert!(originals.keep(b, &here()).await.unwrap());
            assert!(read_all(&originals, &sha_a).await.is_none(), "evicted");
            assert_eq!(read_all(&originals, &sha_b).await.unwrap(), b"world!");
            // Released when no record needs it.
            originals.release(&sha_b).await.unwrap();
            assert!(read_all(&originals, &sha_b).await.is_none());
            // Too long: refused, nothing staged is left.
            assert!(matches!(
                originals.spool(body(&[b"123456"]), 5).await,
                Err(OriginalsError::TooLong { declared: 5 })
            ));
            let failing = futures::stream::iter(vec![
                Ok(Bytes::from_static(b"ab")),
                Err(std::io::Error::other("gone")),
            ]);
            assert!(matches!(originals.spool(failing, 5).await, Err(OriginalsError::Body(_))));
            originals.tidy().await.unwrap();
            assert!(keys(&originals).await.is_empty(), "nothing left in {url:?}");
        }
    }

    #[tokio::test]
    async fn an_original_being_read_is_not_evicted_under_it() {
        let temp = tempfile::tempdir().unwrap();
        for url in stores(&temp, "lease") {
            let policy = RetainPolicy { retain_for: Duration::from_secs(3600), max_bytes: 10 };
            let originals = Originals::at(&url, Store::in_memory().unwrap(), policy).unwrap();
            let a = originals.spool(body(&[b"hello"]), 5).await.unwrap();
            let sha_a = a.sha256.clone();
            assert!(originals.keep(a, &here()).await.unwrap());
            // A re-upload starts reading it; meanwhile the budget is passed.
            let lease = originals.lease(&sha_a).await.unwrap();
            let (reading, _) = originals.open(&sha_a).await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            let b = originals.spool(body(&[b"world!"]), 6).await.unwrap();
            let sha_b = b.sha256.clone();
            assert!(!originals.keep(b, &here()).await.unwrap(), "the newer one had to go");
            assert_eq!(read(&reading, 0..5).await, b"hello", "still readable in {url:?}");
            assert!(originals.release(&sha_a).await.is_ok());
            assert!(originals.is_retained(&sha_a).await.unwrap(), "a release waits for the lease");
            // Once the re-upload is done, the policy applies again.
            originals.end_lease(lease).await;
            assert_eq!(originals.evict().await.unwrap(), 0, "within the budget now");
            originals.release(&sha_a).await.unwrap();
            assert!(read_all(&originals, &sha_a).await.is_none());
            assert!(read_all(&originals, &sha_b).await.is_none());
        }
    }

    #[tokio::test]
    async fn large_uploads_are_spooled_in_parts_the_store_takes() {
        // 12 MiB: three multipart parts on S3 (5 MiB at least each but the last).
        let temp = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Bytes> = bytes.chunks(64 << 10).map(Bytes::copy_from_slice).collect();
        for url in stores(&temp, "large") {
            let policy = RetainPolicy { retain_for: Duration::from_secs(3600), max_bytes: 1 << 30 };
            let originals = Originals::at(&url, Store::in_memory().unwrap(), policy).unwrap();
            let spooled = originals
                .spool(
                    futures::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>)),
                    bytes.len() as u64,
                )
                .await
                .unwrap();
            let source = originals.spooled_bytes(&spooled);
            assert_eq!(
                read(&source, (5 << 20) - 3..(5 << 20) + 3).await,
                bytes[(5 << 20) - 3..(5 << 20) + 3]
            );
            let sha = spooled.sha256.clone();
            assert!(originals.keep(spooled, &here()).await.unwrap());
            assert_eq!(read_all(&originals, &sha).await.unwrap(), bytes, "{url:?}");
        }
    }

    #[tokio::test]
    async fn a_restart_leaves_another_replicas_upload_in_flight_alone() {
        let temp = tempfile::tempdir().unwrap();
        for url in stores(&temp, "tidy") {
            let originals =
                Originals::at(&url, Store::in_memory().unwrap(), RetainPolicy::DISABLED).unwrap();
            // Another replica's staging object, written just now, and a dead one's from days ago
            // (its age can only be faked on a local folder).
            let theirs = Key::from("staging/0123456789abcdef/1-0");
            originals.store.put(&theirs, Bytes::from_static(b"in flight").into()).await.unwrap();
            let mine = originals.spool(body(&[b"mine"]), 4).await.unwrap();
            originals.tidy().await.unwrap();
            let left = keys(&originals).await;
            assert!(left.contains(&theirs.to_string()), "{left:?}");
            assert!(
                !left.iter().any(|k| k.starts_with(&format!("staging/{}", instance()))),
                "own leftovers go: {left:?}"
            );
            drop(mine);
            if let OriginalsUrl::File(root) = &url {
                let old = root.join("staging/0123456789abcdef/1-0");
                let long_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
                std::fs::File::options()
                    .write(true)
                    .open(&old)
                    .unwrap()
                    .set_modified(long_ago)
                    .unwrap();
                originals.tidy().await.unwrap();
                assert!(keys(&originals).await.is_empty(), "a day-old leftover goes");
            }
        }
    }

    #[tokio::test]
    async fn nothing_is_retained_when_retention_is_off() {
        let temp = tempfile::tempdir().unwrap();
        for url in stores(&temp, "off") {
            let originals =
                Originals::at(&url, Store::in_memory().unwrap(), RetainPolicy::DISABLED).unwrap();
            let a = originals.spool(body(&[b"hello"]), 5).await.unwrap();
            let sha = a.sha256.clone();
            let spooled = originals.spooled_bytes(&a);
            assert_eq!(read(&spooled, 0..5).await, b"hello");
            assert_eq!(
                read(&spooled, 1..4).await,
                b"ell",
                "any range, as a resumed chunk reads it"
            );
            assert_eq!(read(&spooled, 5..5).await, b"", "an empty range (a zero-byte file)");
            assert!(!originals.keep(a, &here()).await.unwrap());
            assert!(read_all(&originals, &sha).await.is_none());
            let left = keys(&originals).await;
            assert!(left.is_empty(), "no bytes left in {url:?}: {left:?}");
        }
    }

    #[test]
    fn originals_urls_parse() {
        assert_eq!(
            "file:///srv/parley/originals".parse(),
            Ok(OriginalsUrl::File("/srv/parley/originals".into()))
        );
        assert_eq!(
            "s3://bucket/some/prefix/".parse(),
            Ok(OriginalsUrl::S3 { bucket: "bucket".into(), prefix: "some/prefix".into() })
        );
        assert_eq!(
            "s3://bucket".parse(),
            Ok(OriginalsUrl::S3 { bucket: "bucket".into(), prefix: String::new() })
        );
        for bad in ["file://", "s3://", "s3:///prefix", "gs://bucket", "/srv/originals"] {
            assert!(bad.parse::<OriginalsUrl>().is_err(), "{bad}");
        }
    }
}
