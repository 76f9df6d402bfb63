//! # gemini-emulator — Gemini's REST surface, locally
//!
//! A faithful stand-in for the parts of the Gemini Developer API that Parley uses: the
//! resumable upload of the Files API, `files.get` / `files.list` / `files.delete`, and
//! `generateContent` / `streamGenerateContent?alt=sse`, served under `v1`, `v1beta` and
//! `v1alpha`. It is the backend of every Parley test and the site's offline default.
//!
//! Its answers are deterministic and prove the bytes arrived: for every attached part it
//! names the MIME type, the size in bytes and the first 12 hex digits of the SHA-256, plus the
//! pixel size of images and the page count of PDFs (see [`inspect`]).
//!
//! The wire behaviour follows `shared/gemini-files-api.md` (each fact there has a source).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let running = gemini_emulator::spawn("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("emulator at {}", running.base_url());
//! # Ok(()) }
//! ```

mod error;
pub mod inspect;
mod routes;
mod state;

use std::{net::SocketAddr, sync::Arc, time::Duration};

pub use error::ApiError;
pub use state::LoggedRequest;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// How long a new File stays `PROCESSING` before it is `ACTIVE` (default 300 ms).
    pub processing: Duration,
    /// How long a File lives after creation (default 48 h, Gemini's retention).
    pub file_ttl: Duration,
    /// When set, only this API key is accepted; otherwise any non-empty key is.
    pub api_key: Option<String>,
    /// Pause between two SSE chunks of a streamed answer (default 40 ms), so that streaming
    /// is visible to a person and to tests.
    pub chunk_delay: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            processing: Duration::from_millis(300),
            file_ttl: Duration::from_secs(48 * 3600),
            api_key: None,
            chunk_delay: Duration::from_millis(40),
        }
    }
}

/// A handle on an emulator's state: build its router, read its request log.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<state::State>,
}

impl Emulator {
    /// A fresh emulator with no Files.
    pub fn new(config: EmulatorConfig) -> Self {
        Emulator { state: Arc::new(state::State::new(config)) }
    }

    /// The axum router serving the REST surface.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Every request received so far, oldest first (upload chunks without their bytes).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.state.log.lock().expect("request log lock").clone()
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
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "gemini emulator stopped");
        }
    });
    Ok(RunningEmulator { addr, emulator, task })
}
