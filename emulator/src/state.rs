//! The emulator's memory: Files, open upload sessions, context caches, armed faults, the
//! clock and the request log.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime},
};

use rand::{distr::Alphanumeric, Rng};
use serde::Serialize;
use serde_json::Value;

use crate::{
    caches::Caches,
    error::ApiError,
    faults::{proto_duration, FaultKind, Faults, Route},
    inspect::{Description, Inspector},
    EmulatorConfig,
};

/// How long an unfinished upload session lives (Google's resumable sessions: 7 days).
pub const UPLOAD_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything the emulator knows. Locks are held only for map operations, never across an
/// `.await` (upload sessions have their own async lock for that).
pub struct State {
    pub config: EmulatorConfig,
    files: Mutex<HashMap<String, FileRecord>>,
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadSession>>>>,
    caches: Mutex<Caches>,
    /// Answers given so far: each answer's number makes its `thoughtSignature` unique.
    answers_given: AtomicU64,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<Faults>,
    answers: Mutex<VecDeque<String>>,
    /// Added to the wall clock: the control surface moves time forward for expiry tests.
    clock_offset: Mutex<Duration>,
}

/// One request as the emulator saw it, for tests to assert on.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path, e.g. `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// `X-Goog-Upload-Command`, for upload requests.
    pub upload_command: Option<String>,
    /// `X-Goog-Upload-Offset`, for upload chunks.
    pub upload_offset: Option<u64>,
    /// Body length, bytes (for chunks: the bytes taken, which a dropped connection cuts short).
    pub body_bytes: usize,
    /// The JSON body, for JSON requests (generate, upload start); never chunk bytes.
    pub json: Option<Value>,
    /// Whether an API key (`x-goog-api-key` or `?key=`) came with the request. Keys themselves
    /// are never logged.
    pub had_api_key: bool,
    /// Whether a gateway subscription key (`Ocp-Apim-Subscription-Key`) came with it.
    pub had_subscription_key: bool,
    /// The fault injected into this request, if any (`rate_limited`, `drop`, …).
    pub fault: Option<String>,
}

/// A stored File: its metadata and what [`crate::inspect`] found in its bytes. The bytes
/// themselves are not kept (Gemini does not let uploaded Files be downloaded either).
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub id: String,
    pub owner: String,
    pub display_name: Option<String>,
    /// On the emulator's clock.
    pub created: SystemTime,
    /// `created` + the configured TTL; after it the File is gone.
    pub expires: SystemTime,
    /// `{base}/{version}/files/{id}`.
    pub uri: String,
    pub description: Description,
    /// How long it stays `PROCESSING`.
    pub processing: Duration,
    /// Set when processing is made to fail: the `error.message`.
    pub failure: Option<String>,
}

/// An open resumable upload.
pub struct UploadSession {
    pub owner: String,
    pub display_name: Option<String>,
    /// `X-Goog-Upload-Header-Content-Length`, bytes, when announced.
    pub declared_size: Option<u64>,
    pub inspector: Inspector,
    /// Base for the new File's `uri`: `{base}/{version}`.
    pub uri_base: String,
    /// On the emulator's clock; sessions older than [`UPLOAD_SESSION_TTL`] are dropped.
    pub started: SystemTime,
    /// The File made by `finalize`, so that a `query` after a lost answer can still return it.
    pub finalized: Option<String>,
}

impl State {
    pub fn new(config: EmulatorConfig) -> Self {
        State {
            config,
            files: Mutex::default(),
            uploads: Mutex::default(),
            caches: Mutex::default(),
            answers_given: AtomicU64::new(0),
            log: Mutex::default(),
            faults: Mutex::default(),
            answers: Mutex::default(),
            clock_offset: Mutex::default(),
        }
    }

    /// The emulator's clock: the wall clock plus every advance made through the control
    /// surface.
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + *lock(&self.clock_offset)
    }

    /// Moves the clock forward; returns the new time.
    pub fn advance_clock(&self, by: Duration) -> SystemTime {
        *lock(&self.clock_offset) += by;
        self.now()
    }

    /// Puts the clock back to the wall clock; returns the time.
    pub fn reset_clock(&self) -> SystemTime {
        *lock(&self.clock_offset) = Duration::ZERO;
        self.now()
    }

    pub fn record(&self, entry: LoggedRequest) {
        lock(&self.log).push(entry);
    }

    pub fn log(&self) -> Vec<LoggedRequest> {
        lock(&self.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.log).clear();
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    /// The fault for the next request on `route`, if one is armed.
    pub fn take_fault(&self, route: Route) -> Option<FaultKind> {
        self.faults().take(route)
    }

    /// Queues texts for the next answers, one answer each, instead of the usual description.
    pub fn queue_answers(&self, texts: impl IntoIterator<Item = String>) {
        lock(&self.answers).extend(texts);
    }

    pub fn next_answer(&self) -> Option<String> {
        lock(&self.answers).pop_front()
    }

    /// The number of the next answer: 1, 2, 3, …
    pub fn answer_number(&self) -> u64 {
        self.answers_given.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The context caches, locked (never across an `.await`).
    pub fn caches(&self) -> MutexGuard<'_, Caches> {
        lock(&self.caches)
    }

    /// How long a new File of this MIME type and size stays `PROCESSING`: the longest
    /// matching per-prefix delay; else the default delay for a large File (or any, with
    /// `process_every_file`); else none (`ACTIVE` in the finalize answer).
    pub fn processing_for(&self, mime_type: &str, size_bytes: u64) -> Duration {
        let by_type = self
            .config
            .processing_by_prefix
            .iter()
            .filter(|(prefix, _)| mime_type.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, d)| *d);
        match by_type {
            Some(d) => d,
            None if self.config.process_every_file
                || size_bytes >= self.config.large_file_bytes =>
            {
                self.config.processing
            }
            None => Duration::ZERO,
        }
    }

    /// The File `id` if `owner` may use it now: missing, expired and foreign Files all give
    /// the same 403, as on Gemini.
    pub fn file_for(&self, owner: &str, id: &str) -> Result<FileRecord, ApiError> {
        let now = self.now();
        let mut files = lock(&self.files);
        match files.get(id) {
            Some(f) if f.expires <= now => {
                files.remove(id);
                Err(ApiError::file_inaccessible(id))
            }
            Some(f) if f.owner == owner => Ok(f.clone()),
            _ => Err(ApiError::file_inaccessible(id)),
        }
    }

    pub fn insert_file(&self, record: FileRecord) {
        lock(&self.files).insert(record.id.clone(), record);
    }

    pub fn remove_file(&self, id: &str) -> bool {
        lock(&self.files).remove(id).is_some()
    }

    /// Makes a File's processing fail with `message`; false when there is no such File.
    pub fn fail_file(&self, id: &str, message: &str) -> bool {
        match lock(&self.files).get_mut(id) {
            Some(f) => {
                f.failure = Some(message.to_string());
                true
            }
            None => false,
        }
    }

    /// `owner`'s live Files, oldest first.
    pub fn files_of(&self, owner: &str) -> Vec<FileRecord> {
        let now = self.now();
        let mut files = lock(&self.files);
        files.retain(|_, f| f.expires > now);
        let mut mine: Vec<_> = files.values().filter(|f| f.owner == owner).cloned().collect();
        mine.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        mine
    }

    /// Opens an upload session; drops sessions older than [`UPLOAD_SESSION_TTL`] on the way.
    pub fn open_upload(&self, session: UploadSession) -> String {
        let id = new_upload_id();
        let now = self.now();
        let mut uploads = lock(&self.uploads);
        uploads.retain(|_, s| {
            s.try_lock().map_or(true, |s| {
                now.duration_since(s.started).unwrap_or_default() < UPLOAD_SESSION_TTL
            })
        });
        uploads.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        id
    }

    pub fn upload(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<UploadSession>>> {
        lock(&self.uploads).get(id).cloned()
    }

    pub fn close_upload(&self, id: &str) {
        lock(&self.uploads).remove(id);
    }
}

/// Locks a std mutex, recovering from poisoning (a panicked holder cannot leave these maps
/// half-updated: every update is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FileRecord {
    /// `PROCESSING` until its processing delay has passed, then `ACTIVE` — or `FAILED` once
    /// made to fail.
    pub fn state(&self, now: SystemTime) -> &'static str {
        if self.failure.is_some() {
            return "FAILED";
        }
        let age = now.duration_since(self.created).unwrap_or_default();
        if age < self.processing {
            "PROCESSING"
        } else {
            "ACTIVE"
        }
    }

    /// The File resource as Gemini writes it (camelCase, `sizeBytes` a string, `error` when
    /// FAILED, `videoMetadata` for processed videos).
    pub fn resource(&self, now: SystemTime) -> FileResource {
        let d = &self.description;
        let state = self.state(now);
        let updated =
            if state == "PROCESSING" { self.created } else { self.created + self.processing };
        let video = (state == "ACTIVE" && d.mime_type.starts_with("video/")).then(|| {
            let secs = Duration::from_secs_f64(d.video_seconds.unwrap_or(0.0));
            VideoMetadata { video_duration: proto_duration(secs) }
        });
        FileResource {
            name: format!("files/{}", self.id),
            display_name: self.display_name.clone(),
            mime_type: d.mime_type.clone(),
            size_bytes: d.size_bytes.to_string(),
            create_time: rfc3339_micros(self.created),
            update_time: rfc3339_micros(updated),
            expiration_time: rfc3339_nanos(self.expires),
            sha256_hash: d.sha256_hash_field(),
            uri: self.uri.clone(),
            state: state.to_string(),
            source: "UPLOADED",
            // google.rpc.Code 3 = INVALID_ARGUMENT.
            error: self.failure.clone().map(|message| FileError { code: 3, message }),
            video_metadata: video,
        }
    }
}

/// A File as Gemini writes it, its keys in Gemini's order (a struct keeps its fields' order
/// when serialised; a `serde_json::Value` would sort them).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileResource {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub mime_type: String,
    pub size_bytes: String,
    pub create_time: String,
    pub update_time: String,
    pub expiration_time: String,
    pub sha256_hash: String,
    pub uri: String,
    pub state: String,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FileError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_metadata: Option<VideoMetadata>,
}

/// A FAILED File's `error` (a `google.rpc.Status`).
#[derive(Debug, Clone, Serialize)]
pub struct FileError {
    pub code: u16,
    pub message: String,
}

/// A processed video's `videoMetadata`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoMetadata {
    pub video_duration: String,
}

pub use crate::wire::{rfc3339_micros as rfc3339, rfc3339_micros, rfc3339_nanos};

/// A new File id: 12 characters of `[a-z0-9]`, like Gemini's.
pub fn new_file_id() -> String {
    lowercase_id(12)
}

/// A new context cache id: 40 characters of `[a-z0-9]`, like Gemini's.
pub fn new_cache_id() -> String {
    lowercase_id(40)
}

fn lowercase_id(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .map(|c| (c as char).to_ascii_lowercase())
        .take(len)
        .collect()
}

/// A new opaque upload id: 48 URL-safe characters.
fn new_upload_id() -> String {
    rand::rng().sample_iter(&Alphanumeric).map(char::from).take(48).collect()
}
