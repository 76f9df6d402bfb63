//! The axum application: Leptos pages, server functions, static files.

use std::sync::Arc;

use app::{error::AppError, server::ServerState, shell, App};
use axum::{
    extract::Request,
    http::{header, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

use crate::{config::Config, upstream::Upstream};

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
    Registry(#[from] app::server::registry::RegistryError),
    /// The store of retained originals could not be opened.
    #[error("{0}")]
    Originals(#[from] app::server::originals::OriginalsError),
}

/// Serves the site until Ctrl-C / SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let upstream = Upstream::connect(&config).await?;
    let mut options = get_configuration(None)?.leptos_options;
    options.site_addr = config.listen;
    if let Some(root) = &config.site_root {
        options.site_root = Arc::from(root.to_string_lossy().as_ref());
    }
    let state = state(&config, &upstream)?;
    state.originals.tidy().await?;
    tokio::spawn(evict_periodically(state.originals.clone()));
    let router = router(options.clone(), state);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), site_root = %options.site_root, "parley listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown()).await?;
    drop(upstream);
    Ok(())
}

/// Applies the retention policy every 10 minutes (`retain_for` passes while the server runs).
async fn evict_periodically(originals: app::server::originals::Originals) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = originals.evict().await {
            tracing::warn!(error = %e, "retained originals could not be evicted");
        }
    }
}

/// The server functions' context for this configuration and upstream.
///
/// # Errors
/// [`ServerError::Registry`] / [`ServerError::Originals`] when the file registry or the store
/// of originals in the data directory cannot be opened.
pub fn state(config: &Config, upstream: &Upstream) -> Result<ServerState, ServerError> {
    let registry = app::server::registry::Registry::open(&config.data_dir)?;
    let originals = app::server::originals::Originals::local(&config.data_dir, registry.clone(), config.retain_policy())?;
    Ok(ServerState {
        gemini: upstream.client.clone(),
        model: config.model.clone(),
        upstream: upstream.kind.clone(),
        poll: gemini::PollPolicy { timeout: config.upload_timeout, cleanup_on_timeout: true, ..gemini::PollPolicy::default() },
        registry,
        upstream_id: upstream.identity(),
        expiry_margin: config.expiry_margin,
        originals,
        flights: Default::default(),
    })
}

/// The whole application: Leptos pages, server functions (with `state` as context), static
/// files from `options.site_root`.
pub fn router(options: LeptosOptions, state: ServerState) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || provide_context(state.clone()),
            {
                let options = options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .layer(middleware::from_fn(require_multipart))
        .layer(middleware::from_fn(crate::session::sessions))
        .layer(TraceLayer::new_for_http())
        .with_state(options)
}

/// Server functions whose input is `multipart/form-data`.
const MULTIPART_ENDPOINTS: [&str; 1] = ["/api/upload_file"];

/// Refuses a request to a multipart server function that has no multipart boundary, with
/// 415 and an [`AppError`] body, before `server_fn` sets up its multipart parser (which
/// panics on such requests).
async fn require_multipart(req: Request, next: Next) -> Response {
    if MULTIPART_ENDPOINTS.contains(&req.uri().path()) {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_multipart = content_type.to_ascii_lowercase().starts_with("multipart/form-data")
            && content_type.contains("boundary=");
        if !is_multipart {
            let error = AppError::BadUpload("the body must be multipart/form-data".into());
            let body = serde_json::to_string(&error).unwrap_or_default();
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
    }
    next.run(req).await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
