//! The life of an uploaded File: sent to Gemini and waited to `ACTIVE`, recorded, replaced
//! once it expires, and what counts as usable on the way.
//!
//! [`Lifecycle::upload`] is the one pipeline both paths take — a person's upload (from the
//! spooled bytes) and the re-upload of an expired File (from its retained original):
//! resumable upload → wait for `ACTIVE` → record, or delete the File upstream again if it
//! cannot be recorded. [`Lifecycle::refresh`] stands a File in for an expired one: the
//! session's `ACTIVE` File with the same content, or a re-upload of the retained original —
//! one per content at a time ([`Flights`] in the process, then an exclusive turn in the
//! store across replicas): concurrent requests wait for it and use its result.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime},
};

use parley_store::{FileRow, FileState, Owner, Store};

use crate::{
    error::FilesError,
    originals::Originals,
    time::{is_expired, now_ms},
};

/// How long a re-upload waits for another replica's re-upload of the same content before it
/// gives up (with [`crate::RegistryError::LockTimeout`]): longer than an upload and its
/// `ACTIVE` wait take.
const FLIGHT_PATIENCE: Duration = Duration::from_secs(10 * 60);

/// Single flight per key: one async lock per key in use, dropped with its last holder.
#[derive(Debug, Clone, Default)]
pub struct Flights(Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>);

impl Flights {
    /// The lock for `key`, shared with everyone holding it now (lock it for the turn).
    pub fn slot(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, slot| slot.strong_count() > 0);
        if let Some(slot) = map.get(&key).and_then(Weak::upgrade) {
            return slot;
        }
        let slot = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&slot));
        slot
    }
}

/// Where an upload's bytes come from, and how their SHA-256 is known.
pub enum UploadBytes<'a> {
    /// Bytes that can be read again from any offset — a retained original (a re-upload) —
    /// sent with [`gemini::Client::upload_from`]; their SHA-256 is known.
    Stored {
        /// The bytes.
        source: &'a dyn gemini::UploadSource,
        /// Lowercase hex SHA-256 of the bytes.
        sha256: String,
    },
    /// Bytes still arriving, relayed as they come ([`gemini::Client::upload_pipelined`]): a
    /// stream that ends with [`crate::ingest::Abandoned`], even after its last byte, cancels
    /// the upload (see [`Lifecycle::ingest`]).
    Arriving {
        /// The bytes.
        stream: futures::stream::BoxStream<'a, Result<bytes::Bytes, crate::ingest::Abandoned>>,
        /// Their SHA-256 (lowercase hex), sent by the stream's owner once the whole content
        /// has arrived and passed its checks, before the stream ends.
        sha256: futures::channel::oneshot::Receiver<String>,
    },
}

/// What one upload sends: the bytes, their size and type, the person's name for them, and
/// who owns the File.
pub struct Upload<'a> {
    /// The bytes.
    pub source: UploadBytes<'a>,
    /// Size, bytes.
    pub size_bytes: u64,
    /// MIME type (its essence).
    pub mime_type: String,
    /// The person's file name, made safe ([`crate::content::display_name`]).
    pub display_name: String,
    /// The browser session that owns it.
    pub owner: Owner,
}

/// Everything a File's life needs: Gemini, the store, the retained originals, and the rules.
/// Cheap to clone; its parts are read through its methods.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    gemini: gemini::Client,
    store: Store,
    originals: Originals,
    upstream_id: String,
    expiry_margin: Duration,
    poll: gemini::PollPolicy,
    flights: Flights,
}

impl Lifecycle {
    /// A File's life with `gemini` (Gemini, or the built-in emulator), the `store` (every
    /// upload, by principal; the exclusive turns), the retained `originals`, the identity of the
    /// upstream credential (`upstream_id`: a hash of mode, base URL and key — Files belong to
    /// the key that uploaded them), how long before its `expirationTime` a File counts as
    /// expired (`expiry_margin`), and how to wait for an uploaded File to become `ACTIVE`.
    pub fn new(
        gemini: gemini::Client,
        store: Store,
        originals: Originals,
        upstream_id: String,
        expiry_margin: Duration,
        poll: gemini::PollPolicy,
    ) -> Lifecycle {
        Lifecycle {
            gemini,
            store,
            originals,
            upstream_id,
            expiry_margin,
            poll,
            flights: Flights::default(),
        }
    }

    /// The client for Gemini, or for the built-in emulator.
    pub fn gemini(&self) -> &gemini::Client {
        &self.gemini
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The retained originals.
    pub fn originals(&self) -> &Originals {
        &self.originals
    }

    /// The identity of the upstream credential.
    pub fn upstream_id(&self) -> &str {
        &self.upstream_id
    }

    /// How long before its `expirationTime` a File counts as expired.
    pub fn expiry_margin(&self) -> Duration {
        self.expiry_margin
    }

    /// Single flight per key in this process (a re-upload's, a session's caches').
    pub fn flights(&self) -> &Flights {
        &self.flights
    }

    /// True when `row` can be sent to Gemini now: [`FileState::Active`], under the current
    /// upstream identity, and not within the expiry margin of its `expirationTime`.
    pub fn usable(&self, row: &FileRow, now: SystemTime) -> bool {
        row.state == FileState::Active
            && row.upstream == self.upstream_id
            && !is_expired(row.expiration_time.as_deref(), self.expiry_margin, now)
    }

    /// `owner`'s usable File with content `sha256`, if there is one (dedup: the same content
    /// is uploaded once per session).
    ///
    /// # Errors
    /// [`FilesError::Store`].
    pub async fn usable_copy(
        &self,
        owner: &Owner,
        sha256: &str,
        now: SystemTime,
    ) -> Result<Option<FileRow>, FilesError> {
        let copies = self.store.active_copies(owner, &self.upstream_id, sha256).await?;
        Ok(copies.into_iter().find(|c| self.usable(c, now)))
    }

    /// Uploads `upload` to Gemini (resumable), waits until its File is `ACTIVE` and records
    /// it. A File that cannot be recorded is deleted upstream again (unrecorded, it could
    /// never be used).
    ///
    /// # Errors
    /// [`FilesError::Gemini`] for the upload or the wait (a `FAILED` File and one not `ACTIVE`
    /// in time are deleted by the wait); [`FilesError::NotRecorded`].
    pub async fn upload(&self, upload: Upload<'_>) -> Result<FileRow, FilesError> {
        self.upload_as(upload, "upload").await
    }

    /// [`Lifecycle::upload`], counted under `kind` (`upload`, or `reupload` of an expired
    /// File) in `parley_uploads_total`, `parley_upload_bytes_total` and
    /// `parley_upload_active_seconds` (from the first byte sent to `ACTIVE`).
    async fn upload_as(
        &self,
        upload: Upload<'_>,
        kind: &'static str,
    ) -> Result<FileRow, FilesError> {
        let started = std::time::Instant::now();
        let name = upload.display_name.as_str();
        let req = gemini::UploadRequest {
            display_name: Some(upload.display_name.clone()),
            mime_type: upload.mime_type.clone(),
            size_bytes: upload.size_bytes,
        };
        let (file, sha256) = match upload.source {
            UploadBytes::Stored { source, sha256 } => {
                (self.gemini.upload_from(&req, source).await, sha256)
            }
            UploadBytes::Arriving { stream, sha256 } => {
                let file = self.gemini.upload_pipelined(&req, stream).await;
                let sha256 = match (&file, sha256.await) {
                    (Err(_), _) => String::new(),
                    (Ok(_), Ok(sha256)) => sha256,
                    (Ok(file), Err(_)) => {
                        let _ = self.gemini.delete_file(&file.name).await;
                        let lost = gemini::Error::Source("its SHA-256 was never given".into());
                        return Err(FilesError::gemini(lost, Some(name)));
                    }
                };
                (file, sha256)
            }
        };
        let file = file.map_err(|e| FilesError::gemini(e, Some(name)))?;
        let file = self
            .gemini
            .wait_active(file, &self.poll)
            .await
            .map_err(|e| FilesError::gemini(e, Some(name)))?;
        let row = FileRow {
            owner: upload.owner,
            upstream: self.upstream_id.clone(),
            name: file.name,
            uri: file.uri,
            mime_type: if file.mime_type.is_empty() { upload.mime_type } else { file.mime_type },
            size_bytes: upload.size_bytes,
            display_name: upload.display_name,
            sha256,
            create_time: file.create_time,
            expiration_time: file.expiration_time,
            state: FileState::Active,
            recorded_at_ms: now_ms(),
        };
        if let Err(source) = self.store.record(row.clone()).await {
            let _ = self.gemini.delete_file(&row.name).await;
            return Err(FilesError::NotRecorded { name: row.name, source });
        }
        tracing::info!(file = %row.name, bytes = row.size_bytes, mime = %row.mime_type, "upload ACTIVE and recorded");
        metrics::counter!("parley_uploads_total", "kind" => kind).increment(1);
        metrics::counter!("parley_upload_bytes_total", "kind" => kind).increment(row.size_bytes);
        metrics::histogram!("parley_upload_active_seconds", "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        Ok(row)
    }

    /// The File that stands in for `row`, which is not [`Lifecycle::usable`]: the session's
    /// `ACTIVE` File with the same content under the current upstream, or a new upload of the
    /// retained original. `Ok(None)` when there is neither: the caller puts `expired content`
    /// in its place. `row` is marked [`FileState::Replaced`] or [`FileState::Expired`].
    ///
    /// The caller holds a slot towards Gemini for the request that needs this: the re-upload
    /// takes none of its own (a full server would otherwise wait on itself).
    ///
    /// # Errors
    /// [`FilesError`] when the store, the originals or the re-upload fails (the conversation is
    /// not changed then: the person can try again).
    pub async fn refresh(&self, row: &FileRow) -> Result<Option<FileRow>, FilesError> {
        let key = format!("{}\n{}\n{}", row.owner, self.upstream_id, row.sha256);
        let flight = self.flights.slot(key.clone());
        let _turn = flight.lock().await;
        // Then across replicas: the second finds the first one's upload among the copies.
        let shared =
            self.store.exclusive(&format!("parley:refresh\n{key}"), FLIGHT_PATIENCE).await?;
        let outcome = self.refresh_now(row).await;
        shared.release().await;
        outcome
    }

    /// [`Lifecycle::refresh`], its turn taken.
    async fn refresh_now(&self, row: &FileRow) -> Result<Option<FileRow>, FilesError> {
        let now = SystemTime::now();
        let copies = self.store.active_copies(&row.owner, &self.upstream_id, &row.sha256).await?;
        let mut stand_in = None;
        for copy in copies.into_iter().filter(|c| c.uri != row.uri) {
            if self.usable(&copy, now) {
                stand_in = Some(copy);
                break;
            }
            let _ = self.store.set_state(&copy.owner, &copy.uri, FileState::Expired).await;
        }
        let stand_in = match stand_in {
            Some(copy) => Some(copy),
            None => self.reupload(row).await?,
        };
        let mark = if stand_in.is_some() { FileState::Replaced } else { FileState::Expired };
        self.store.set_state(&row.owner, &row.uri, mark).await?;
        Ok(stand_in)
    }

    /// True when [`Lifecycle::refresh`] would find a File for the unusable `row`: the same
    /// content is `ACTIVE` for its owner, or its original is retained.
    ///
    /// # Errors
    /// [`FilesError`] when the store fails.
    pub async fn refreshable(&self, row: &FileRow, now: SystemTime) -> Result<bool, FilesError> {
        let copies = self.store.active_copies(&row.owner, &self.upstream_id, &row.sha256).await?;
        if copies.iter().any(|c| c.uri != row.uri && self.usable(c, now)) {
            return Ok(true);
        }
        Ok(self.originals.is_retained(&row.sha256).await?)
    }

    /// Uploads `row`'s retained original again ([`Lifecycle::upload`]); `None` without one.
    /// The original is leased meanwhile, so that no eviction removes it while it is read.
    async fn reupload(&self, row: &FileRow) -> Result<Option<FileRow>, FilesError> {
        let lease = self.originals.lease(&row.sha256).await?;
        let outcome = self.reupload_leased(row).await;
        self.originals.end_lease(lease).await;
        outcome
    }

    async fn reupload_leased(&self, row: &FileRow) -> Result<Option<FileRow>, FilesError> {
        let Some((bytes, size_bytes)) = self.originals.open(&row.sha256).await? else {
            tracing::info!(file = %row.name, "expired, and no retained original");
            return Ok(None);
        };
        let upload = Upload {
            source: UploadBytes::Stored { source: &bytes, sha256: row.sha256.clone() },
            size_bytes,
            mime_type: row.mime_type.clone(),
            display_name: row.display_name.clone(),
            owner: row.owner.clone(),
        };
        let new = self.upload_as(upload, "reupload").await?;
        tracing::info!(old = %row.name, new = %new.name, "expired File uploaded again from its retained original");
        if let Err(e) = self.originals.touch(&row.sha256).await {
            tracing::warn!(error = %e, "a retained original's time could not be refreshed");
        }
        Ok(Some(new))
    }
}
