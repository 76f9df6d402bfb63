//! # gemini-emulator — Gemini's REST surface, locally
//!
//! A faithful stand-in for the parts of the Gemini Developer API that Parley uses: the
//! resumable upload of the Files API, `files.get` / `files.list` / `files.delete`,
//! `generateContent` / `streamGenerateContent?alt=sse`, `models.list` / `models.get`
//! ([`MODELS`]), `countTokens` ([`tokens`]) and context caches (`cachedContents`), served
//! under `v1`, `v1beta` and `v1alpha`. It is the backend of every Parley test and the site's
//! offline default.
//!
//! Its answers are deterministic and prove the bytes arrived: for every attached part it
//! names the MIME type, the size in bytes and the first 12 hex digits of the SHA-256, plus the
//! pixel size of images and the page count of PDFs (see [`inspect`]).
//!
//! The wire behaviour follows `docs/gemini-protocol.md` (each fact there has a source).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let running = gemini_emulator::spawn("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("emulator at {}", running.base_url());
//! # Ok(()) }
//! ```

mod caches;
mod error;
pub mod faults;
pub mod inspect;
pub mod models;
mod prompt;
mod routes;
pub mod serve;
mod state;
pub mod testing;
pub mod tokens;
mod wire;

use std::{net::SocketAddr, sync::Arc, time::Duration};

pub use error::ApiError;
pub use faults::{Fault, FaultKind, Route};
pub use models::{ModelInfo, MODELS};
pub use state::LoggedRequest;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// How long a File that is processed stays `PROCESSING` before it is `ACTIVE` (default
    /// 300 ms). Which Files are processed: those of [`EmulatorConfig::processing_by_prefix`],
    /// those of [`EmulatorConfig::large_file_bytes`] or more, and — with
    /// [`EmulatorConfig::process_every_file`] — all. The others are `ACTIVE` in the finalize
    /// answer already, as small documents, images and audio are on Gemini.
    pub processing: Duration,
    /// Per-MIME-prefix processing times, the longest matching prefix winning; a File of such
    /// a type is always processed (default: `video/` 3 s, as videos are on Gemini).
    pub processing_by_prefix: Vec<(String, Duration)>,
    /// Files of at least this many bytes are processed (default 64 MiB: Gemini had a 41.7 MB
    /// MP3 `ACTIVE` at once, a 64 MB video not).
    pub large_file_bytes: u64,
    /// Process every File, whatever its type and size (for tests of the `PROCESSING` wait;
    /// default off).
    pub process_every_file: bool,
    /// How long a File lives after creation (default 48 h, Gemini's retention).
    pub file_ttl: Duration,
    /// When set, only this API key is accepted; otherwise any non-empty key is.
    pub api_key: Option<String>,
    /// Pause between two SSE chunks of a streamed answer (default 40 ms), so that streaming
    /// is visible to a person and to tests.
    pub chunk_delay: Duration,
    /// Also serve the surface behind an Azure API Management–style gateway.
    pub gateway: Option<GatewayConfig>,
    /// Serve the test control surface under `/_emulator` (off by default).
    pub control: bool,
}

/// Gateway mode, modelled on ChatSphere's format (`docs/export-format.md`): every route is served
/// again under `prefix`, guarded by `Ocp-Apim-Subscription-Key: key`; the resumable start is
/// taken at `{prefix}/files` (and `{prefix}/upload/{v}/files`), and its `x-goog-upload-url`
/// points at `https://generativelanguage.googleapis.com/upload/v1beta/files?…`, as real
/// Gemini's does through a gateway that passes headers through. Only a client that keeps the
/// query string and re-targets `{prefix}/files` can finish the upload.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The subscription key the gateway demands.
    pub key: String,
    /// Path prefix, e.g. `/gemini` (leading `/`, no trailing `/`).
    pub prefix: String,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            processing: Duration::from_millis(300),
            processing_by_prefix: vec![("video/".into(), Duration::from_secs(3))],
            large_file_bytes: 64 << 20,
            process_every_file: false,
            file_ttl: Duration::from_secs(48 * 3600),
            api_key: None,
            chunk_delay: Duration::from_millis(40),
            gateway: None,
            control: false,
        }
    }
}

/// A handle on an emulator's state: build its router, arm faults, move its clock, read its
/// request log. Cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<state::State>,
}

impl Emulator {
    /// A fresh emulator with no Files.
    pub fn new(config: EmulatorConfig) -> Self {
        Emulator { state: Arc::new(state::State::new(config)) }
    }

    /// The axum router serving the REST surface. Serve it with [`serve::serve`] for faults
    /// that drop connections to drop them for real.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Every request received so far, oldest first (upload chunks without their bytes).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state.log()
    }

    /// Forgets the request log.
    pub fn clear_request_log(&self) {
        self.state.clear_log();
    }

    /// Arms a fault for the next `fault.count` requests on `fault.route`.
    pub fn inject(&self, fault: Fault) {
        self.state.faults().push(fault);
    }

    /// Moves the emulator's clock forward by `by` (Files and context caches expire by this
    /// clock).
    pub fn advance_clock(&self, by: Duration) {
        self.state.advance_clock(by);
    }

    /// Makes the File `id` (`abc` or `files/abc`) fail processing with `message`; false when
    /// there is no such File.
    pub fn fail_file(&self, id: &str, message: &str) -> bool {
        self.state.fail_file(id.strip_prefix("files/").unwrap_or(id), message)
    }

    /// The next answers say exactly these texts, one answer each.
    pub fn queue_answers(&self, texts: impl IntoIterator<Item = String>) {
        self.state.queue_answers(texts);
    }
}

/// A running emulator bound to a socket.
pub struct RunningEmulator {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The emulator's state.
    pub emulator: Emulator,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://{addr}`: the base URL a client should use.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves a new emulator on the current tokio runtime until the returned
/// value is dropped.
///
/// # Errors
/// The bind error (address in use, permission denied, …).
pub async fn spawn(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let emulator = Emulator::new(config);
    let router = emulator.router();
    let task = tokio::spawn(serve::serve(listener, router, std::future::pending()));
    Ok(RunningEmulator { addr, emulator, task })
}
