//! The axum application: Leptos pages, server functions, static files.

use std::sync::Arc;

use app::{server::ServerState, shell, App};
use axum::{extract::DefaultBodyLimit, middleware, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

use crate::{
    config::Config,
    error::ServerError,
    guard::{self, BodyLimits, TrustProxy},
    limits::Limits,
    middleware::Guarded,
    session::{SessionKey, Sessions},
    upstream::Upstream,
};

/// Serves the site until Ctrl-C / SIGTERM.
///
/// # Errors
/// [`ServerError`] when something it needs cannot be had at start-up, or serving fails.
pub async fn run(config: Config) -> Result<(), ServerError> {
    config.check()?;
    // Watched from the start: a signal at any moment reaches whichever wait comes next.
    let signals = watch_signals();
    let descriptors = crate::listen::raise_descriptor_limit();
    let upstream = Upstream::connect(&config).await?;
    let mut options = get_configuration(None)?.leptos_options;
    options.site_addr = config.listen;
    if let Some(root) = &config.site_root {
        options.site_root = Arc::from(root.to_string_lossy().as_ref());
    }
    let key = SessionKey::load(config.session_secret.as_deref(), &config.data_dir)?;
    // Bound first: while a database started beside the site comes up, the probes answer.
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let stop = signalled(signals.clone());
    let state = crate::waiting::for_database(&listener, config.database_wait, stop, || {
        state(&config, &upstream, &key)
    })
    .await?;
    // An S3 store not up yet (started beside the site) is no reason to stop: `/readyz` says so
    // until it answers, and what this would have tidied is tidied at the next start.
    if let Err(e) = state.files().originals().tidy().await {
        tracing::warn!(error = %e, "the store of originals could not be tidied at start-up");
    }
    tokio::spawn(evict_periodically(state.files().originals().clone()));
    let guards = Guards::new(&config, key, state.files().store())?;
    if let Some(addr) = config.metrics_listen {
        let scrape = crate::observe::Scrape::of(&state);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(url = %format!("http://{}/metrics", listener.local_addr()?), "metrics listening");
        let metrics = crate::observe::routes::<()>(scrape);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, metrics).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    tokio::spawn(tidy_periodically(guards.limits.clone(), state.files().store().clone()));
    tokio::spawn(purge_periodically(state.sync().clone()));
    let router = router(options.clone(), state, guards);
    let limits = config.connection_limits(descriptors);
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        site_root = %options.site_root,
        descriptors,
        connections = limits.total,
        "parley listening"
    );
    crate::listen::serve(listener, router, limits, signalled(signals), config.shutdown_grace)
        .await?;
    drop(upstream);
    Ok(())
}

/// `parley registry copy`: every record and original entry of the registry at `from` into the
/// one at `to` (created and migrated if needed).
///
/// # Errors
/// [`ServerError::Store`] when either cannot be opened or a write fails (what was written
/// stays: running the command again completes it).
pub async fn copy_registry(from: &str, to: &str) -> Result<parley_store::Copied, ServerError> {
    let (from, to): (parley_store::DatabaseUrl, parley_store::DatabaseUrl) =
        (from.parse()?, to.parse()?);
    let source = parley_store::Store::connect(&from).await?;
    let target = parley_store::Store::connect(&to).await?;
    let copied = source.copy_into(&target).await?;
    tracing::info!(from = ?from, to = ?to, files = copied.files, originals = copied.originals, "registry copied");
    Ok(copied)
}

/// Every minute, forgets replenished rate-limit keys (and day-old shared ones), the
/// exclusive turns of replicas that died, the budget holds they never settled, and the
/// ledger's anonymous rows older than any budget period.
async fn tidy_periodically(limits: Arc<Limits>, store: parley_store::Store) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        limits.tidy();
        limits.tidy_shared().await;
        if let Err(e) = store.tidy_leases().await {
            tracing::warn!(error = %e, "old exclusive turns could not be removed");
        }
        if let Err(e) = store.tidy_usage(parley_files::time::now_ms()).await {
            tracing::warn!(error = %e, "lapsed budget holds could not be removed");
        }
    }
}

/// Every hour, purges the conversations deleted over 30 days ago, with the records of the
/// Files only they used.
async fn purge_periodically(sync: parley_chat::sync::Sync) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match sync.purge().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "deleted conversations purged"),
            Err(e) => tracing::warn!(error = %e, "deleted conversations could not be purged"),
        }
    }
}

/// Applies the retention policy every 10 minutes (`retain_for` passes while the server runs).
async fn evict_periodically(originals: parley_files::Originals) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = originals.evict().await {
            tracing::warn!(error = %e, "retained originals could not be evicted");
        }
    }
}

/// The server functions' context for this configuration and upstream, with what it signs
/// (summaries) signed under a key derived from the session `key`.
///
/// # Errors
/// [`ServerError::Store`] / [`ServerError::Originals`] when the file registry or the store
/// of originals in the data directory cannot be opened.
pub async fn state(
    config: &Config,
    upstream: &Upstream,
    key: &SessionKey,
) -> Result<ServerState, ServerError> {
    let store = parley_store::Store::connect(&config.database()?).await?;
    let originals =
        parley_files::Originals::at(&config.originals()?, store.clone(), config.retain_policy())?;
    let poll = gemini::PollPolicy {
        timeout: config.upload_timeout,
        cleanup_on_timeout: true,
        ..gemini::PollPolicy::default()
    };
    let files = parley_files::Lifecycle::new(
        upstream.client.clone(),
        store.clone(),
        originals,
        upstream.identity(),
        config.expiry_margin,
        poll,
    );
    let offered = std::iter::once(config.model.as_str())
        .chain(config.models.iter().map(|m| m.id.as_str()))
        .filter(|id| !id.trim().is_empty());
    let budgets = config.budgets.budgets(store.clone(), offered)?;
    let models = parley_chat::models::Models::new(&config.model, &config.models);
    let clock: parley_chat::budget::Clock = Arc::new(parley_files::time::now_ms);
    let sync =
        parley_chat::sync::Sync::new(store.clone(), config.storage_per_account, clock.clone());
    let share_ttl = i64::try_from(config.share_ttl.as_millis()).unwrap_or(i64::MAX);
    let shares =
        parley_chat::share::Shares::new(store.clone(), (share_ttl > 0).then_some(share_ttl), clock);
    // What Gemini says of each model (names, limits) is asked for in the background: an
    // upstream that is slow to answer must not hold up the start.
    tokio::spawn({
        let (models, gemini) = (models.clone(), files.gemini().clone());
        async move { models.learn(&gemini).await }
    });
    Ok(ServerState::new(app::server::ServerParts {
        engine: parley_chat::EngineParts {
            files,
            models,
            context_budget: config.context_budget,
            caching: config.caching(),
            summary_signer: parley_chat::summary::Signer::new(key.derive("parley:summaries")),
            slots: parley_chat::slots::UpstreamSlots::new(config.slot_caps()),
            upstream_wait: config.upstream_wait,
            budgets,
        },
        upstream: upstream.kind.clone(),
        max_file_bytes: config.max_file_bytes,
        relay_memory: config.relay_memory,
        sync,
        shares,
        sharing: config.sharing,
        public_url: config.sign_in.public_url.as_ref().map(ToString::to_string),
    }))
}

/// What guards the application: sessions, rate limits and quotas, body limits, and whether
/// a reverse proxy's `X-Forwarded-*` headers are believed.
#[derive(Debug, Clone)]
pub struct Guards {
    /// Signs the session cookie.
    pub key: SessionKey,
    /// The rate limiters, shared by every request.
    pub limits: Arc<Limits>,
    /// Slowest a body may arrive, bytes per second (0: no minimum), over `rate_window`.
    pub min_body_rate: u64,
    /// How much waiting for a body the minimum rate is measured over (the header-read timeout).
    pub rate_window: std::time::Duration,
    /// `--trust-proxy`.
    pub trust_proxy: bool,
    /// Whether `GET /metrics` is served with the site (`--metrics-on-site`; else only on
    /// `--metrics-listen`, if given).
    pub metrics_with_site: bool,
    /// Signing in.
    pub auth: Arc<crate::auth::Auth>,
}

impl Guards {
    /// The guards `config` asks for, with sessions signed by `key`, and the request limits
    /// and sign-ins kept in `store` (the limits only when it is PostgreSQL).
    ///
    /// # Errors
    /// [`ServerError::Config`] for sign-in settings that cannot work.
    pub fn new(
        config: &Config,
        key: SessionKey,
        store: &parley_store::Store,
    ) -> Result<Self, ServerError> {
        Ok(Guards {
            auth: Arc::new(crate::auth::Auth::new(&config.sign_in, store.clone())?),
            key,
            limits: Limits::new(config.limits(), store.shared_rate_limits()),
            min_body_rate: config.min_body_rate,
            rate_window: config.header_read_timeout,
            trust_proxy: config.trust_proxy,
            metrics_with_site: config.metrics_on_site,
        })
    }
}

/// The whole application: Leptos pages, server functions (with `state` as context), static
/// files from `options.site_root`, `/healthz`, `/readyz` and `/metrics`; and around it,
/// outermost first, the request id, tracing, HTTP metrics, compression, security headers,
/// then the one middleware of [`crate::middleware::guard_requests`] (the same-origin check,
/// the client address, sessions, body limits, rate limits, the multipart check and
/// `Cache-Control`).
pub fn router(mut options: LeptosOptions, state: ServerState, guards: Guards) -> Router {
    // Installed before the first request, so that nothing counted is lost.
    crate::observe::metrics();
    crate::site::use_hashed_names(&mut options);
    let routes = generate_route_list(App);
    let body_limits = BodyLimits {
        max_file_bytes: state.max_file_bytes(),
        min_bytes_per_sec: guards.min_body_rate,
        rate_window: guards.rate_window,
    };
    let trust = TrustProxy(guards.trust_proxy);
    let sessions = Sessions { key: guards.key, trust_proxy: guards.trust_proxy, auth: guards.auth };
    let guarded = Arc::new(Guarded {
        trust_proxy: guards.trust_proxy,
        sessions: sessions.clone(),
        body_limits,
        limits: guards.limits,
    });
    let mut probes = crate::health::routes(state.files().clone());
    if guards.metrics_with_site {
        probes = probes.merge(crate::observe::routes(crate::observe::Scrape::of(&state)));
    }
    // One shared state: each request clones the router's services (and this closure), so
    // what they hold by value is copied per request.
    let state = std::sync::Arc::new(state);
    let admin =
        crate::budgets::admin::Admin { sessions: Arc::new(sessions.clone()), state: state.clone() };
    let (thumbnails, shared) = (state.clone(), state.clone());
    let app = Router::new()
        .leptos_routes_with_context(&options, routes, move || provide_context(state.clone()), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .merge(probes)
        .merge(crate::auth::routes::routes(Arc::new(sessions)))
        .merge(crate::budgets::admin::routes(admin))
        .merge(crate::thumbnails::routes(thumbnails))
        .merge(crate::share::routes(shared))
        .fallback(crate::site::files)
        // The body guard reads JSON bodies whole within its own limit (server_fn's default,
        // 2 MiB, would cut them short), so that a refusal after it comes once the browser has
        // sent its request; an upload's body is only watched, and refused before it is read.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(guarded, crate::middleware::guard_requests));
    guard::security_headers(app)
        .layer(crate::site::compression())
        .layer(middleware::from_fn(crate::observe::http_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(crate::observe::request_span))
        .layer(middleware::from_fn_with_state(trust, crate::observe::request_id))
        .with_state(options)
}

/// A flag raised at the first Ctrl-C or SIGTERM (listened for from now on).
fn watch_signals() -> tokio::sync::watch::Receiver<bool> {
    let (raise, raised) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = raise.send(true);
    });
    raised
}

/// Resolves once `signals` is raised (at once if it already was).
async fn signalled(mut signals: tokio::sync::watch::Receiver<bool>) {
    let _ = signals.wait_for(|raised| *raised).await;
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
