//! The check before every chat request ([`parley_chat::precheck`], as [`parley_chat::Engine::turn`]
//! runs it): how long it adds for a
//! conversation with 50 Files, all live, on an on-disk store holding other sessions'
//! uploads too. A benchmark that prints figures, not a test:
//!
//! ```text
//! cargo bench -p parley-chat --bench precheck
//! PARLEY_BENCH_DATABASE_URL=postgres://… cargo bench -p parley-chat --bench precheck
//! ```
//!
//! With `PARLEY_BENCH_DATABASE_URL` (an empty PostgreSQL database), the 50-File check is
//! measured on that store too, after the SQLite one.

use std::time::{Duration, Instant};

use parley_chat::{
    slots::{SlotCaps, UpstreamSlots},
    Engine, EngineParts, Principal,
};
use parley_files::{Lifecycle, Originals, RetainPolicy};
use parley_store::{FileRow, FileState, Store};

const FILES: usize = 50;
const ROUNDS: usize = 500;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let state = state_on(temp.path(), Store::open(temp.path()).unwrap());
    live_files(&runtime, &state, "SQLite");
    hostile(&runtime, &state);
    if let Ok(url) = std::env::var("PARLEY_BENCH_DATABASE_URL") {
        let store = runtime.block_on(Store::connect(&url.parse().unwrap())).unwrap();
        live_files(&runtime, &state_on(temp.path(), store), "PostgreSQL");
    }
}

/// The engine on `store` (Gemini is never called: no File expires).
fn state_on(dir: &std::path::Path, store: Store) -> Engine {
    let originals = Originals::local(
        dir,
        store.clone(),
        RetainPolicy { retain_for: Duration::from_secs(3600), max_bytes: 1 << 30 },
    )
    .unwrap();
    let key = gemini::ApiKey::new("unused: no File is expired, so Gemini is not called").unwrap();
    let gemini =
        gemini::Client::new(gemini::ClientConfig::new("http://127.0.0.1:9".parse().unwrap(), key))
            .unwrap();
    let budgets = parley_chat::budget::Budgets::new(
        store.clone(),
        parley_chat::budget::Prices::load(None).unwrap(),
        parley_chat::budget::BudgetConfig::default(),
        std::sync::Arc::new(parley_files::time::now_ms),
    );
    let files = Lifecycle::new(
        gemini,
        store,
        originals,
        "upstream".into(),
        Duration::from_secs(600),
        gemini::PollPolicy::default(),
    );
    Engine::new(EngineParts {
        files,
        models: parley_chat::models::Models::new("gemini-2.5-flash", &[]),
        context_budget: parley_chat::models::ContextBudget::Off,
        caching: None,
        summary_signer: parley_chat::summary::Signer::new([0; 32]),
        slots: UpstreamSlots::new(SlotCaps { total: 64, per_session: 8, per_address: 16 }),
        upstream_wait: std::time::Duration::from_secs(30),
        budgets,
    })
}

/// The check for a conversation with [`FILES`] live Files, among 20 other sessions' uploads.
fn live_files(runtime: &tokio::runtime::Runtime, state: &Engine, backend: &str) {
    let store = state.files().store();
    let uris: Vec<String> = (0..FILES)
        .map(|i| format!("https://generativelanguage.googleapis.com/v1beta/files/f{i:011}"))
        .collect();
    runtime.block_on(async {
        // Other sessions' uploads make the table realistic.
        for owner in 0..20 {
            for (i, uri) in uris.iter().enumerate() {
                store.record(row(&principal(owner), uri, i)).await.unwrap();
            }
        }
    });
    let request = gemini::GenerateContentRequest {
        contents: vec![gemini::Content {
            role: Some("user".into()),
            parts: uris
                .iter()
                .map(|uri| gemini::Part::file("application/pdf", uri))
                .chain([gemini::Part::text("Compare them.")])
                .collect(),
        }],
        ..Default::default()
    };
    let session = principal(7);
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            runtime.block_on(async {
                let request = request.clone();
                let started = Instant::now();
                let uris = parley_chat::file_uris(&request);
                let (_, treated) =
                    parley_chat::precheck(state, &session, request, uris).await.unwrap();
                let elapsed = started.elapsed();
                assert!(treated.expired.is_empty() && treated.replaced.is_empty());
                elapsed
            })
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "pre-request check on {backend}, {FILES} live files, {ROUNDS} rounds: median {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 9 / 10]),
        ms(times[ROUNDS - 1])
    );
}

/// Hostile requests: how long the check takes to refuse or pass them.
fn hostile(runtime: &tokio::runtime::Runtime, state: &Engine) {
    let session = principal(7);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // A hostile request: 40,000 parts naming 500 made-up Files (the most one request may
    // name), each 80 times; and 40,000 distinct ones (refused).
    for distinct in [parley_chat::MAX_FILES_PER_REQUEST, 40_000] {
        let parts = (0..40_000)
            .map(|i| {
                gemini::Part::file(
                    "application/pdf",
                    format!(
                        "https://generativelanguage.googleapis.com/v1beta/files/x{:011}",
                        i % distinct
                    ),
                )
            })
            .collect();
        let request = gemini::GenerateContentRequest {
            contents: vec![gemini::Content { role: Some("user".into()), parts }],
            ..Default::default()
        };
        let times: Vec<Duration> = (0..5)
            .map(|_| {
                runtime.block_on(async {
                    let request = request.clone();
                    let started = Instant::now();
                    let uris = parley_chat::file_uris(&request);
                    let outcome = parley_chat::precheck(state, &session, request, uris).await;
                    let elapsed = started.elapsed();
                    assert_eq!(outcome.is_ok(), distinct <= parley_chat::MAX_FILES_PER_REQUEST);
                    elapsed
                })
            })
            .collect();
        let best = times.iter().min().copied().unwrap_or_default();
        println!("pre-request check, 40,000 file parts naming {distinct} unknown files: best of 5 {:.1} ms", ms(best));
    }
}

/// The `n`th session of the benchmark's store.
fn principal(n: usize) -> Principal {
    let id = parley_store::SessionId::parse(&format!("{n:032x}")).expect("32 hex digits");
    Principal::anonymous(id)
}

fn row(principal: &Principal, uri: &str, i: usize) -> FileRow {
    FileRow {
        owner: principal.owner(),
        upstream: "upstream".into(),
        name: format!("files/f{i:011}"),
        uri: uri.into(),
        mime_type: "application/pdf".into(),
        size_bytes: 1000,
        display_name: format!("file-{i}.pdf"),
        sha256: format!("{i:064x}"),
        create_time: Some("2026-11-23T10:00:00Z".into()),
        expiration_time: Some("2099-11-25T10:00:00Z".into()),
        state: FileState::Active,
        recorded_at_ms: i as i64,
    }
}
