//! Upload ingest: a person's file, arriving as a request body, made an `ACTIVE` File —
//! [`Lifecycle::ingest`].
//!
//! Every piece is counted as it arrives, against the announced size and the caller's byte
//! quotas ([`Admission::take_bytes`]); the first [`HEAD_BYTES`] are checked against the
//! declared type before anything goes on. Then the bytes are spooled to the store of originals
//! (hashed on the way) and, with relay memory free ([`RelayBudget`]), sent to Gemini's
//! resumable upload at the same time (`relay`); without, stored whole first and then sent
//! (`stored`). Only once the body has ended are its size and SHA-256 known: a SHA-256 other
//! than the declared one refuses the upload, and content the owner already has `ACTIVE` is
//! answered with that File — while relaying, both before Gemini's last chunk, so that neither
//! becomes a File.
//!
//! Why an upload stopped is a value, returned by the part that saw it ([`IngestError`]); a
//! stream it stops ends with [`Abandoned`], so that its reader (Gemini's upload, the spool)
//! never takes the bytes before as the whole file.

mod body;
mod relay;
mod stored;

use std::{future::Future, sync::Arc, time::SystemTime};

use bytes::Bytes;
use futures::Stream;
use parley_store::{FileRow, Owner};

use crate::{content::content_matches, FilesError, Lifecycle, Spooled};

/// Bytes of the file's start read before anything is sent or stored, for the magic-byte check
/// ([`crate::content::content_matches`]).
pub const HEAD_BYTES: usize = 8192;

/// What the request says of the file before its bytes: the `size`, `mime_type`, `name` and
/// optional `sha256` fields of `upload_file`.
#[derive(Debug, Clone)]
pub struct Announced {
    /// Size, bytes.
    pub size_bytes: u64,
    /// MIME type (its essence, [`crate::content::essence`]).
    pub mime_type: String,
    /// The person's file name, made safe ([`crate::content::display_name`]).
    pub name: String,
    /// The SHA-256 the browser computed, lowercase hex.
    pub sha256: Option<String>,
}

/// What the caller lets an upload use, in its own terms: upload bytes under its quotas, and a
/// slot towards Gemini. A refusal ends the upload with [`IngestError::Refused`].
pub trait Admission: Sync {
    /// A refusal, as the caller will answer it.
    type Refusal: Send;
    /// A slot towards Gemini, held while the upload is sent (given back when dropped).
    type Slot: Send;

    /// Takes `bytes` more from the upload-bytes quotas (called for each piece as it arrives).
    ///
    /// # Errors
    /// The refusal when a quota has no room for them.
    fn take_bytes(&self, bytes: u64) -> impl Future<Output = Result<(), Self::Refusal>> + Send;

    /// A slot towards Gemini, waiting as long as the caller allows.
    ///
    /// # Errors
    /// The refusal when none came free in time.
    fn slot(&self) -> impl Future<Output = Result<Self::Slot, Self::Refusal>> + Send;
}

/// One upload to ingest: whose, what was announced, the rules, and whom its stored bytes are
/// charged to.
pub struct Ingest<'a, A> {
    /// Who will own the File.
    pub owner: Owner,
    /// What the request announced.
    pub file: Announced,
    /// Largest upload accepted, bytes (never above [`gemini::MAX_FILE_BYTES`]).
    pub max_bytes: u64,
    /// Quotas and slots.
    pub admission: &'a A,
    /// Memory for relaying while the bytes arrive.
    pub relay: &'a RelayBudget,
    /// The client the bytes come from, charged for the retained original.
    pub from: crate::ClientKey,
}

/// An ingested upload's File.
#[derive(Debug)]
pub enum Ingested {
    /// Uploaded now, `ACTIVE` and recorded.
    Uploaded(FileRow),
    /// The owner's `ACTIVE` File with the same content: nothing new was uploaded.
    AlreadyActive(FileRow),
}

/// Why an upload was not ingested. `R` is the caller's refusal ([`Admission::Refusal`]).
/// Nothing of a failed upload is left: no File upstream, no staged bytes, no record.
#[derive(Debug, thiserror::Error)]
pub enum IngestError<R> {
    /// The caller's quotas or slots said no.
    #[error("the upload was refused: {0}")]
    Refused(R),
    /// The body could not be read (the browser went away, a malformed part, …); the text is
    /// the transport's.
    #[error("the upload could not be read: {0}")]
    Body(String),
    /// The announced size is over the limit; nothing was read.
    #[error("{name} is {size_bytes} bytes, over the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The file's name.
        name: String,
        /// Announced size, bytes.
        size_bytes: u64,
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// The first bytes are of another type than the one declared.
    #[error("{name} is declared {declared} but its bytes are {detected}")]
    ContentMismatch {
        /// The file's name.
        name: String,
        /// The declared MIME type.
        declared: String,
        /// What the bytes are.
        detected: String,
    },
    /// The body went on past the announced size (it is not read further).
    #[error("the file has more than the {announced} bytes announced")]
    LongerThanAnnounced {
        /// Bytes announced.
        announced: u64,
    },
    /// The body ended before the announced size.
    #[error("the file had {received} bytes, not the {announced} announced")]
    ShorterThanAnnounced {
        /// Bytes announced.
        announced: u64,
        /// Bytes received.
        received: u64,
    },
    /// The bytes' SHA-256 is not the one declared for them.
    #[error("the file's bytes do not have the SHA-256 declared for them")]
    NotAsDeclared,
    /// The store, the store of originals or Gemini failed.
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// The marker that ends a stream the ingest stops (towards Gemini or the spool): the bytes
/// before it are not the whole file. Why is the ingest's own [`IngestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upload was stopped by its sender")]
pub struct Abandoned;

/// Memory for uploads relayed while they arrive, counted in chunks of [`gemini::CHUNK_SIZE`]
/// (8 MiB: what a relayed upload holds until Gemini acknowledges it). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RelayBudget(Arc<tokio::sync::Semaphore>);

impl RelayBudget {
    /// A budget of `bytes` (rounded down to whole chunks; `0`: no upload is relayed).
    pub fn new(bytes: u64) -> Self {
        let chunks = usize::try_from(bytes / gemini::CHUNK_SIZE as u64).unwrap_or(usize::MAX);
        RelayBudget(Arc::new(tokio::sync::Semaphore::new(
            chunks.min(tokio::sync::Semaphore::MAX_PERMITS),
        )))
    }

    /// One chunk's memory, if there is some free now (given back when dropped).
    fn take(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

impl Lifecycle {
    /// Makes `body` — the bytes of `ingest.file`, as they arrive — an `ACTIVE` File of
    /// `ingest.owner` (see the module's documentation). With a declared SHA-256 the owner
    /// already has `ACTIVE`, nothing is read at all.
    ///
    /// # Errors
    /// [`IngestError`]; on any of them nothing is left behind.
    pub async fn ingest<A, E>(
        &self,
        ingest: Ingest<'_, A>,
        body: impl Stream<Item = Result<Bytes, E>> + Send,
    ) -> Result<Ingested, IngestError<A::Refusal>>
    where
        A: Admission,
        E: std::fmt::Display,
    {
        let Ingest { owner, file, max_bytes, admission, relay, from } = ingest;
        let limit_bytes = max_bytes.min(gemini::MAX_FILE_BYTES);
        if file.size_bytes > limit_bytes {
            let (name, size_bytes) = (file.name, file.size_bytes);
            return Err(IngestError::TooLarge { name, size_bytes, limit_bytes });
        }
        if let Some(sha256) = &file.sha256 {
            if let Some(copy) = self.usable_copy(&owner, sha256, SystemTime::now()).await? {
                return Ok(Ingested::AlreadyActive(copy));
            }
        }
        let mut body = body::Body::new(Box::pin(body), admission, file.size_bytes);
        let head = body.head(HEAD_BYTES).await?;
        let start: Vec<u8> = head.iter().flat_map(|piece| piece.iter().copied()).collect();
        if let Err(detected) = content_matches(&file.mime_type, &start) {
            tracing::info!(declared = %file.mime_type, %detected, "upload refused: its bytes are another type");
            let (name, declared) = (file.name, file.mime_type);
            return Err(IngestError::ContentMismatch { name, declared, detected });
        }
        let job = Job { lifecycle: self, owner, file, admission, from };
        match relay.take() {
            Some(_held) => relay::run(job, head, body).await,
            None => stored::run(job, head, body).await,
        }
    }
}

/// An upload past its first checks, on one of the two paths.
struct Job<'a, A> {
    lifecycle: &'a Lifecycle,
    owner: Owner,
    file: Announced,
    admission: &'a A,
    from: crate::ClientKey,
}

impl<A> Job<'_, A> {
    /// Checks the whole content once its SHA-256 is known: the one declared, or else whether
    /// the owner already has it `ACTIVE` (`Ok(Some)`: that File answers the upload).
    async fn whole_content<R>(&self, sha256: &str) -> Result<Option<FileRow>, IngestError<R>> {
        if let Some(declared) = &self.file.sha256 {
            if declared != sha256 {
                tracing::info!(%declared, received = %sha256, "upload refused: its bytes are not the SHA-256 declared");
                return Err(IngestError::NotAsDeclared);
            }
            return Ok(None);
        }
        // A failing lookup only costs the dedup: the upload goes on.
        let now = SystemTime::now();
        Ok(self.lifecycle.usable_copy(&self.owner, sha256, now).await.ok().flatten())
    }

    /// Retains a spooled upload per the policy, charged to the client it came from; a failure
    /// only costs a later re-upload.
    async fn keep(&self, spooled: Spooled) {
        if let Err(e) = self.lifecycle.originals().keep(spooled, &self.from).await {
            tracing::warn!(error = %e, "an original could not be retained");
        }
    }

    /// The upload of these bytes towards Gemini.
    fn upload<'s>(&self, source: crate::UploadBytes<'s>) -> crate::Upload<'s> {
        crate::Upload {
            source,
            size_bytes: self.file.size_bytes,
            mime_type: self.file.mime_type.clone(),
            display_name: self.file.name.clone(),
            owner: self.owner.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
