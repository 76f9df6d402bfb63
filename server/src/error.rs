//! [`ServerError`]: why `parley` could not start or stopped.

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The Leptos site configuration is invalid.
    #[error("site configuration: {0}")]
    Site(#[from] leptos::config::errors::LeptosConfigError),
    /// The listen address could not be bound, or serving failed.
    #[error("serving on the listen address: {0}")]
    Io(#[from] std::io::Error),
    /// The built-in emulator could not start.
    #[error("starting the built-in Gemini emulator: {0}")]
    Emulator(std::io::Error),
    /// The Gemini client could not be built.
    #[error("Gemini client: {0}")]
    Gemini(#[from] gemini::Error),
    /// The file registry could not be opened.
    #[error("{0}")]
    Store(#[from] parley_store::StoreError),
    /// The store of retained originals could not be opened.
    #[error("{0}")]
    Originals(#[from] parley_files::OriginalsError),
    /// The configuration cannot work (the text says what to set).
    #[error("{0}")]
    Config(String),
    /// The session-signing key could not be had.
    #[error("{0}")]
    SessionKey(#[from] crate::session::SessionKeyError),
    /// Asked to stop (SIGTERM) before it was serving.
    #[error("stopped before the database could be reached")]
    Stopped,
    /// `parley healthcheck`: the server did not answer `/healthz` with 200.
    #[error("not healthy: {0}")]
    Unhealthy(String),
}

impl ServerError {
    /// True when the database could not be reached at all (see
    /// [`parley_store::StoreError::is_unreachable`]): worth waiting for at start-up.
    pub fn is_unreachable_database(&self) -> bool {
        matches!(self, ServerError::Store(e) if e.is_unreachable())
    }
}
