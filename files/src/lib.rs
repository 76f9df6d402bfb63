//! # parley-files — the life of an uploaded File, without Leptos
//!
//! Everything Parley keeps about the Files people upload, and the steps of their life:
//!
//! * [`originals`]: the bytes of every upload, spooled first (hashing on the way), then kept by
//!   SHA-256 for re-uploads, and evicted by age and by each client's share of the budget;
//! * [`ingest`]: a person's upload as it arrives — counted, checked, spooled, relayed to
//!   Gemini or stored first, deduplicated — with why it stopped as a typed [`IngestError`];
//! * [`lifecycle`]: the one upload pipeline (resumable upload → `ACTIVE` → recorded) for a
//!   person's upload and for the re-upload of an expired File, single flight per content, and
//!   what counts as usable;
//! * [`thumbnails`]: small JPEGs of image originals for the Files view, decoded within limits;
//! * [`content`]: what an upload claims (MIME type, display name), checked against its bytes;
//! * [`time`]: the store's clock and Gemini's `expirationTime`.
//!
//! What is recorded — Files, retained originals' entries, exclusive turns — is kept by
//! `parley-store`.
//!
//! Errors are [`FilesError`]; the `app` crate maps them to what the page shows. Protocol facts
//! (resumable upload, `files.get`, `ACTIVE`, 48 h expiry) are in `docs/gemini-protocol.md`.

pub mod content;
pub mod error;
pub mod ingest;
pub mod lifecycle;
pub mod originals;
pub mod thumbnails;
pub mod time;

pub use error::FilesError;
pub use ingest::{Abandoned, Admission, Announced, Ingest, IngestError, Ingested, RelayBudget};
pub use lifecycle::{Flights, Lifecycle, Upload, UploadBytes};
pub use originals::{Originals, OriginalsError, RetainPolicy, Spooled, StoredBytes};

/// Whom an upload's stored bytes are charged to: a key of the client it came from (its
/// address, IPv6 by /64). The store keeps only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(pub String);
