//! Seeing what `parley` does: Prometheus metrics at `GET /metrics`, a request id on every
//! request and in every log line of it, and the log format (`PARLEY_LOG_FORMAT=text|json`).
//!
//! Metrics go through the `metrics` facade (recorded where things happen: `parley-files`,
//! `app`, here) into `metrics-exporter-prometheus`, rendered in the Prometheus text format
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>). Their labels are small
//! fixed sets (a route, a status, a kind): never a key, a File URI, a session or an address.
//! The whole list, with what each counts, is in `docs/operating.md`.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{Request, State},
    http::{header, HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::guard::TrustProxy;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// tracing-subscriber's human format.
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `fields` (with `message`) and
    /// the current `span` (with the request's `request_id`), as tracing-subscriber's json
    /// layer writes it.
    Json,
}

/// Sets up logging to stderr in `format`, filtered by `PARLEY_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// The request id header, taken from a trusted proxy and returned on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request (in its extensions): from `X-Request-Id` when a trusted
/// proxy sent a usable one, else 32 random hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// True for an id safe to log and to send back: 1 to 128 of `A-Z a-z 0-9 - _ . :`.
fn usable_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Gives every request its [`RequestId`] (a client's own `X-Request-Id` is believed only
/// behind `--trust-proxy`, and only when it is a short run of safe characters) and returns it in `X-Request-Id`.
pub async fn request_id(
    State(TrustProxy(trust_proxy)): State<TrustProxy>,
    mut req: Request,
    next: Next,
) -> Response {
    let given = trust_proxy
        .then(|| req.headers().get(&X_REQUEST_ID)?.to_str().ok().filter(|id| usable_id(id)))
        .flatten()
        .map(str::to_string);
    let id = given.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let value = HeaderValue::from_str(&id).expect("a usable id is a header value");
    req.headers_mut().insert(&X_REQUEST_ID, value.clone());
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.run(req).await;
    res.headers_mut().insert(&X_REQUEST_ID, value);
    res
}

/// The tracing span of a request: method, path (never the query) and request id, at `INFO`
/// so that every line logged while serving it carries them.
pub fn request_span(req: &Request) -> tracing::Span {
    let id = req.extensions().get::<RequestId>().map_or("", |r| r.0.as_str());
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// The Prometheus recorder, installed once per process (`None` if another recorder was
/// installed first: then there are no metrics, and that is logged).
pub fn metrics() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Seconds: 5 ms to 10 min.
            let buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                300.0, 600.0,
            ];
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .and_then(|b| b.install_recorder());
            match installed {
                Ok(handle) => {
                    describe();
                    zero_series();
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the metrics recorder could not be installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Every series of a fixed label set, at 0 from start-up: a series that appears only with its
/// first event gives `rate()` and alerts nothing to read until then (Prometheus' "avoid
/// missing metrics", <https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics>).
/// Series labelled by a status code appear as statuses are answered.
fn zero_series() {
    for kind in ["upload", "reupload"] {
        metrics::counter!("parley_uploads_total", "kind" => kind).absolute(0);
        metrics::counter!("parley_upload_bytes_total", "kind" => kind).absolute(0);
        // A handle is enough for the histogram to be rendered, with empty buckets.
        let _ = metrics::histogram!("parley_upload_active_seconds", "kind" => kind);
    }
    for kind in ["429", "5xx", "403_file", "transport", "other"] {
        metrics::counter!("parley_upstream_errors_total", "kind" => kind).absolute(0);
    }
    for limit in ["chat", "upload", "files", "upload-mib"] {
        metrics::counter!("parley_rate_limit_refusals_total", "limit" => limit).absolute(0);
    }
    for scope in ["own", "address", "site"] {
        metrics::counter!("parley_budget_refusals_total", "scope" => scope).absolute(0);
    }
    for counter in [
        "parley_upload_dedup_hits_total",
        "parley_expired_content_total",
        "parley_original_evictions_total",
        "parley_upstream_slot_waits_total",
        "parley_upstream_busy_total",
        "parley_summaries_total",
        "parley_context_caches_created_total",
    ] {
        metrics::counter!(counter).absolute(0);
    }
    metrics::gauge!("parley_chat_streams_in_flight").set(0.0);
    let _ = metrics::histogram!("parley_chat_first_token_seconds");
    let _ = metrics::histogram!("parley_chat_stream_seconds");
}

/// The `HELP` text of every metric.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("parley_http_requests_total", "HTTP requests answered, by route and status");
    describe_histogram!(
        "parley_http_request_duration_seconds",
        Unit::Seconds,
        "time to the response's head, by route (a streamed answer goes on after it)"
    );
    describe_counter!(
        "parley_uploads_total",
        "Files uploaded to Gemini and ACTIVE, by kind (upload, reupload of an expired File)"
    );
    describe_counter!("parley_upload_bytes_total", Unit::Bytes, "bytes of those uploads");
    describe_histogram!(
        "parley_upload_active_seconds",
        Unit::Seconds,
        "from the first byte sent to Gemini to the File being ACTIVE"
    );
    describe_counter!(
        "parley_upload_dedup_hits_total",
        "uploads answered with this session's ACTIVE File of the same content, not sent again"
    );
    describe_gauge!("parley_chat_streams_in_flight", "answers streaming now");
    describe_histogram!(
        "parley_chat_first_token_seconds",
        Unit::Seconds,
        "from a chat request's arrival to the answer's first text"
    );
    describe_histogram!(
        "parley_chat_stream_seconds",
        Unit::Seconds,
        "from a chat request's arrival to the end of its answer"
    );
    describe_counter!(
        "parley_upstream_errors_total",
        "failures of Gemini after retries, by kind (429, 5xx, 403_file, transport, other)"
    );
    describe_counter!(
        "parley_expired_content_total",
        "File parts sent as `expired content` (gone, with nothing to upload again)"
    );
    describe_gauge!("parley_retained_originals", "retained originals (all replicas')");
    describe_gauge!(
        "parley_retained_original_bytes",
        Unit::Bytes,
        "bytes of retained originals (all replicas')"
    );
    describe_counter!(
        "parley_original_evictions_total",
        "retained originals evicted by this process"
    );
    describe_counter!(
        "parley_rate_limit_refusals_total",
        "requests refused 429 by a rate limit or quota, by limit"
    );
    describe_gauge!("parley_upstream_slots_in_use", "slots towards Gemini held now (this process)");
    describe_counter!(
        "parley_upstream_slot_waits_total",
        "requests that had to wait for a slot towards Gemini"
    );
    describe_counter!(
        "parley_upstream_busy_total",
        "requests refused 503: no slot towards Gemini in time"
    );
    describe_counter!(
        "parley_tokens_total",
        "tokens Gemini reported for calls on the key, by kind (prompt not cached, cached, output, \
         thinking, cache_write) and model"
    );
    describe_gauge!(
        "parley_spend_dollars",
        "US dollars spent on the key since start-up, by model (the price table's)"
    );
    describe_counter!(
        "parley_budget_refusals_total",
        "requests a budget refused, by scope (own, address, site)"
    );
}

/// What `/metrics` reads at scrape time besides the recorder.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The store (retained originals' count and bytes).
    pub store: parley_store::Store,
    /// This process's slots towards Gemini.
    pub slots: parley_chat::slots::UpstreamSlots,
}

impl Scrape {
    /// What `/metrics` reads of `state`.
    pub fn of(state: &app::server::ServerState) -> Self {
        Scrape { store: state.files().store().clone(), slots: state.engine().slots().clone() }
    }
}

/// `GET /metrics` on its own router (for the main one, or `--metrics-listen`).
pub fn routes<S: Clone + Send + Sync + 'static>(scrape: Scrape) -> Router<S> {
    Router::new().route("/metrics", get(render)).with_state(scrape)
}

async fn render(State(scrape): State<Scrape>) -> Response {
    let Some(handle) = metrics() else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder")
            .into_response();
    };
    metrics::gauge!("parley_upstream_slots_in_use").set(scrape.slots.in_use() as f64);
    match scrape.store.originals_total().await {
        Ok((count, bytes)) => {
            metrics::gauge!("parley_retained_originals").set(count as f64);
            metrics::gauge!("parley_retained_original_bytes").set(bytes as f64);
        }
        Err(e) => tracing::warn!(error = %e, "retained originals could not be counted"),
    }
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
        .into_response()
}

/// The route label of `path`: a server function's path, `page`, `static`, a probe, or `other`
/// (a fixed set: a visitor cannot make new series).
fn route_label(path: &str) -> &'static str {
    if let Some(endpoint) = crate::endpoints::find(path) {
        return endpoint.path;
    }
    match path {
        "/" => "page",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/pkg/") || p == "/favicon.ico" => "static",
        _ => "other",
    }
}

/// Counts every request in `parley_http_requests_total{route, status}` and times it to its
/// response's head in `parley_http_request_duration_seconds{route}`.
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("parley_http_requests_total", "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("parley_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_a_proxy_must_be_plain() {
        assert!(usable_id("3f2a-11.b_c:9"));
        for bad in ["", "has space", "quote\"", "new\nline", &"x".repeat(129)] {
            assert!(!usable_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn routes_are_a_fixed_set() {
        assert_eq!(route_label("/api/chat"), "/api/chat");
        assert_eq!(route_label("/pkg/parley.wasm"), "static");
        assert_eq!(route_label("/"), "page");
        assert_eq!(route_label("/api/whatever-a-visitor-types"), "other");
        assert_eq!(route_label("/some/page?x=1"), "other");
    }
}
