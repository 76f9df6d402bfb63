//! The registry side of the check before every chat request: how long looking up a
//! conversation's Files takes, for 50 Files, on an on-disk registry. A benchmark that prints
//! figures, not a test:
//!
//! ```text
//! cargo bench -p app --features ssr --bench precheck
//! ```

use std::time::{Duration, Instant};

use app::server::registry::{FileRow, Registry};

const FILES: usize = 50;
const ROUNDS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("parley-precheck-{}", std::process::id()));
    let registry = Registry::open(&dir).unwrap();
    let uris: Vec<String> = (0..FILES).map(|i| format!("https://generativelanguage.googleapis.com/v1beta/files/f{i:011}")).collect();
    runtime.block_on(async {
        // Other sessions' uploads make the table realistic.
        for owner in 0..20 {
            for (i, uri) in uris.iter().enumerate() {
                registry.record(row(&format!("session-{owner}"), uri, i)).await.unwrap();
            }
        }
    });
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            runtime.block_on(async {
                let started = Instant::now();
                for uri in &uris {
                    let found = registry.find("session-7", "upstream", uri).await.unwrap();
                    assert!(found.is_some());
                }
                started.elapsed()
            })
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "pre-request registry check, {FILES} files, {ROUNDS} rounds: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 9 / 10]),
        ms(times[ROUNDS - 1])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn row(owner: &str, uri: &str, i: usize) -> FileRow {
    FileRow {
        owner: owner.into(),
        upstream: "upstream".into(),
        name: format!("files/f{i:011}"),
        uri: uri.into(),
        mime_type: "application/pdf".into(),
        size_bytes: 1000,
        display_name: format!("file-{i}.pdf"),
        sha256: "00".repeat(32),
        create_time: Some("2026-11-23T10:00:00Z".into()),
        expiration_time: Some("2026-11-25T10:00:00Z".into()),
        state: "ACTIVE".into(),
        recorded_at_ms: i as i64,
    }
}
