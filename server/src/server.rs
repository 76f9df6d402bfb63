//! The axum application: Leptos pages, server functions, static files.

use std::sync::Arc;

use app::{server::ServerState, shell, App};
use axum::{middleware, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

use crate::{
    config::Config,
    guard::{self, BodyLimits},
    limits::Limits,
    session::SessionKey,
    upstream::Upstream,
};

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
    /// The session-signing key could not be had.
    #[error("{0}")]
    SessionKey(#[from] crate::session::SessionKeyError),
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
    let key = SessionKey::load(config.session_secret.as_deref(), &config.data_dir)?;
    let limits = Limits::new(config.limits());
    tokio::spawn(tidy_limits_periodically(limits.clone()));
    let router = router(options.clone(), state, key, limits).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), site_root = %options.site_root, "parley listening");
    serve(listener, router, shutdown_signal(), config.shutdown_grace).await?;
    drop(upstream);
    Ok(())
}

/// Serves `app` on `listener` until `stop` resolves; then takes no new connection and gives
/// the requests in flight up to `grace` to finish (an answer streams to its end, an upload
/// reaches `ACTIVE`). Whatever still runs after that is cut off when the process exits: the
/// browser sees the request fail and keeps the message for Retry; a spooled upload left in
/// `staging/` is tidied at the next start.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        stop.await;
        tracing::info!(grace = %humantime::format_duration(grace), "shutting down: finishing the requests in flight");
        let _ = stopping.send(true);
    };
    let serving = std::future::IntoFuture::into_future(axum::serve(listener, app).with_graceful_shutdown(signal));
    let deadline = async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = serving => {
            tracing::info!("every request finished; stopped");
            served
        }
        () = deadline => {
            tracing::warn!("requests still in flight after the shutdown grace period are cut off");
            Ok(())
        }
    }
}

/// Forgets replenished rate-limit keys every minute.
async fn tidy_limits_periodically(limits: Arc<Limits>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        limits.tidy();
    }
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
        max_file_bytes: config.max_file_bytes.min(gemini::MAX_FILE_BYTES),
        upstream_slots: Arc::new(tokio::sync::Semaphore::new(config.upstream_concurrency.max(1))),
        upstream_wait: config.upstream_wait,
    })
}

/// The whole application: Leptos pages, server functions (with `state` as context), static
/// files from `options.site_root`; sessions signed with `key`, rate `limits`, and the guards
/// of [`crate::guard`] around it all.
pub fn router(options: LeptosOptions, state: ServerState, key: SessionKey, limits: Arc<Limits>) -> Router {
    let routes = generate_route_list(App);
    let body_limits = BodyLimits { max_file_bytes: state.max_file_bytes };
    let app = Router::new()
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
        .layer(middleware::from_fn(guard::require_multipart))
        .layer(middleware::from_fn_with_state(body_limits, guard::limit_bodies))
        .layer(middleware::from_fn_with_state(limits, crate::limits::rate_limit))
        .layer(middleware::from_fn_with_state(key, crate::session::sessions))
        .layer(middleware::from_fn(guard::same_origin));
    guard::security_headers(app).layer(TraceLayer::new_for_http()).with_state(options)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
