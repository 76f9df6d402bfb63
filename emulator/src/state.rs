//! The emulator's memory: Files, open upload sessions, and the request log.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use rand::{distr::Alphanumeric, Rng};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{error::ApiError, inspect::Description, EmulatorConfig};

/// Everything the emulator knows. Locks are held only for map operations, never across an
/// `.await`.
pub struct State {
    pub config: EmulatorConfig,
    pub files: Mutex<HashMap<String, FileRecord>>,
    pub uploads: Mutex<HashMap<String, UploadSession>>,
    pub log: Mutex<Vec<LoggedRequest>>,
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
    /// Body length, bytes.
    pub body_bytes: usize,
    /// The JSON body, for JSON requests (generate, upload start); never chunk bytes.
    pub json: Option<Value>,
    /// Whether an API key (header or `?key=`) came with the request. The key itself is never
    /// logged.
    pub had_api_key: bool,
}

/// A stored File: its metadata and what [`crate::inspect`] found in its bytes. The bytes
/// themselves are not kept (Gemini does not let uploaded Files be downloaded either).
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub id: String,
    pub owner: String,
    pub display_name: Option<String>,
    pub created: SystemTime,
    /// `created` + the configured TTL; after it the File is gone.
    pub expires: SystemTime,
    /// `{scheme}://{host}{prefix}/{version}/files/{id}`.
    pub uri: String,
    pub description: Description,
}

/// An open resumable upload.
#[derive(Debug)]
pub struct UploadSession {
    pub owner: String,
    pub display_name: Option<String>,
    pub mime_type: String,
    /// `X-Goog-Upload-Header-Content-Length`, bytes, when announced.
    pub declared_size: Option<u64>,
    pub data: Vec<u8>,
    /// Base for the new File's `uri`: `{scheme}://{host}{prefix}/{version}`.
    pub uri_base: String,
}

impl State {
    pub fn new(config: EmulatorConfig) -> Self {
        State {
            config,
            files: Mutex::default(),
            uploads: Mutex::default(),
            log: Mutex::default(),
        }
    }

    pub fn record(&self, entry: LoggedRequest) {
        self.log.lock().expect("log lock").push(entry);
    }

    /// The File `id` if `owner` may use it now: missing, expired and foreign Files all give
    /// the same 403, as on Gemini.
    pub fn file_for(&self, owner: &str, id: &str) -> Result<FileRecord, ApiError> {
        let mut files = self.files.lock().expect("files lock");
        let now = SystemTime::now();
        match files.get(id) {
            Some(f) if f.expires <= now => {
                files.remove(id);
                Err(ApiError::file_inaccessible(id))
            }
            Some(f) if f.owner == owner => Ok(f.clone()),
            _ => Err(ApiError::file_inaccessible(id)),
        }
    }
}

impl FileRecord {
    /// `PROCESSING` until the configured delay has passed, then `ACTIVE`.
    pub fn state(&self, processing: Duration) -> &'static str {
        let age = SystemTime::now().duration_since(self.created).unwrap_or_default();
        if age < processing { "PROCESSING" } else { "ACTIVE" }
    }

    /// The File resource as Gemini writes it (camelCase, `sizeBytes` a string).
    pub fn resource(&self, processing: Duration) -> Value {
        let d = &self.description;
        let created = rfc3339(self.created);
        let mut file = json!({
            "name": format!("files/{}", self.id),
            "mimeType": d.mime_type,
            "sizeBytes": d.size_bytes.to_string(),
            "createTime": created,
            "updateTime": created,
            "expirationTime": rfc3339(self.expires),
            "sha256Hash": d.sha256_hash_field(),
            "uri": self.uri,
            "state": self.state(processing),
            "source": "UPLOADED",
        });
        if let Some(name) = &self.display_name {
            file["displayName"] = json!(name);
        }
        file
    }
}

/// RFC 3339 with microseconds and `Z`, as Gemini's times look.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// A new File id: 12 characters of `[a-z0-9]`, like Gemini's.
pub fn new_file_id() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .map(|c| (c as char).to_ascii_lowercase())
        .take(12)
        .collect()
}

/// A new opaque upload id: 48 URL-safe characters.
pub fn new_upload_id() -> String {
    rand::rng().sample_iter(&Alphanumeric).map(char::from).take(48).collect()
}
