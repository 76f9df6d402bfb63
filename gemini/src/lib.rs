//! # gemini — a small client for the Gemini REST API
//!
//! What Parley needs from Gemini, with nothing from Leptos:
//!
//! * the **resumable upload** of the Files API (`start` → `x-goog-upload-url` → 8 MiB
//!   `upload` chunks, the last one `upload, finalize`) — [`Client::upload_from`] for bytes
//!   that can be read again ([`UploadSource`], [`FileSource`]: no chunk held in memory),
//!   [`Client::upload_stream`] for a one-pass stream, [`Client::upload_pipelined`] for one
//!   relayed while it arrives; resumed after a dropped connection, in direct or gateway mode
//!   ([`Mode`]);
//! * `files.get` / `files.list` / `files.delete` and the wait for a File to become `ACTIVE`,
//!   polling with exponential backoff and jitter — [`Client::wait_active`], [`PollPolicy`],
//!   and for local files [`Client::upload_and_wait_active`];
//! * retries of transient failures (429 honouring `RetryInfo`, 5xx, dropped connections)
//!   with backon — [`RetryPolicy`] — and timeouts on every call — [`Timeouts`];
//! * `streamGenerateContent?alt=sse` — [`Client::stream_generate_content`];
//! * `models.list` / `models.get` — [`Client::list_models`], [`Client::get_model`], [`Model`];
//! * `countTokens` — [`Client::count_tokens`], [`CountTokensResponse`];
//! * context caches (`cachedContents` create / get / list / patch / delete) —
//!   [`Client::create_cached_content`], [`CachedContent`], used by
//!   [`GenerateContentRequest::cached_content`];
//! * one typed [`Error`] for everything that can go wrong.
//!
//! The wire protocol is described, with sources, in `docs/gemini-protocol.md`; the
//! official references are <https://ai.google.dev/api/files>,
//! <https://ai.google.dev/api/generate-content>, <https://ai.google.dev/api/models>,
//! <https://ai.google.dev/api/tokens> and <https://ai.google.dev/api/caching>.
//!
//! The API key travels only in the `x-goog-api-key` header, never in a URL, and [`ApiKey`]
//! redacts itself in `Debug` output so that it cannot reach a log by accident.

mod caching;
mod client;
mod error;
mod generate;
mod local;
mod models;
mod pipeline;
mod poll;
mod tokens;
mod types;
mod upload;

pub use caching::{CachedContent, CachedContentList, CachedContentUsage};
pub use client::{ApiKey, Client, ClientConfig, Mode, RetryPolicy, Timeouts, CONNECT_TIMEOUT};
pub use error::{Error, Result};
pub use generate::{sse_chunks, SseStream};
pub use local::{UploadOptions, UploadResult, MAX_FILE_BYTES};
pub use models::{Model, ModelList};
pub use poll::{PollPolicy, MIN_DELAY};
pub use tokens::CountTokensResponse;
pub use types::{
    Candidate, Content, File, FileData, FileList, FileState, GenerateContentRequest,
    GenerateContentResponse, GenerationConfig, InlineData, Modality, ModalityTokenCount, Part,
    Status, UsageMetadata, VideoMetadata,
};
pub use upload::{
    upload_target, ByteStream, FileSource, ResumableUpload, UploadRequest, UploadSource, CHUNK_SIZE,
};
