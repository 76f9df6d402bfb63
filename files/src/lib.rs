//! # parley-files — the life of an uploaded File, without Leptos
//!
//! Everything Parley keeps about the Files people upload, and the steps of their life:
//!
//! * [`registry`]: who uploaded which File (an embedded SQLite database), its state
//!   ([`FileState`]) and the retained originals it knows of;
//! * [`originals`]: the bytes of every upload, spooled first (hashing on the way), then kept by
//!   SHA-256 for re-uploads, and evicted by age and by each client's share of the budget;
//! * [`lifecycle`]: the one upload pipeline (resumable upload → `ACTIVE` → recorded) for a
//!   person's upload and for the re-upload of an expired File, single flight per content, and
//!   what counts as usable;
//! * [`content`]: what an upload claims (MIME type, display name), checked against its bytes;
//! * [`time`]: the registry's clock and Gemini's `expirationTime`.
//!
//! Errors are [`FilesError`]; the `app` crate maps them to what the page shows. Protocol facts
//! (resumable upload, `files.get`, `ACTIVE`, 48 h expiry) are in `docs/gemini-protocol.md`.

pub mod content;
pub mod error;
pub mod lifecycle;
pub mod originals;
pub mod registry;
pub mod time;

pub use error::FilesError;
pub use lifecycle::{Flights, Lifecycle, Upload, UploadBytes};
pub use originals::{Originals, OriginalsError, RetainPolicy, Spooled, StoredBytes};
pub use registry::{CacheRow, FileRow, FileState, Original, Registry, RegistryError};

/// Whom an upload's stored bytes are charged to: a key of the client it came from (its
/// address, IPv6 by /64). The registry keeps only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(pub String);
