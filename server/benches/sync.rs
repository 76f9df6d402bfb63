//! Conversations between devices: how soon a change on one device is visible on another, how
//! long a new device takes to get an account's history, and what open event streams cost.
//! The `parley` binary (the bench profile's build), people signed in by a trusted proxy's
//! header, requests over loopback. Prints:
//!
//! * a change visible on the other device, p50/p95 over 200 changes: device A appends a
//!   message (`sync_push`), device B — holding `sync_events` open — hears of it and pulls it
//!   (`sync_pull`); on one replica (SQLite), and with `PARLEY_BENCH_DATABASE_URL` also across
//!   two replicas on PostgreSQL (A on one, B on the other: `LISTEN/NOTIFY` between them; they
//!   share an emulator of the bench's own);
//! * the first sync of an account with 500 conversations and 20,000 messages (about 300 bytes
//!   each) on a new device: every page of `sync_pull` from cursor 0, wall time and bytes;
//! * memory: the server's resident set before and after 1,000 devices (1,000 accounts) hold an
//!   event stream open, and per stream.
//!
//! ```text
//! cargo bench -p parley --bench sync
//! PARLEY_BENCH_DATABASE_URL=postgres://… cargo bench -p parley --bench sync
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{free_port, quantile, Killed};

use futures::StreamExt;
use serde_json::{json, Value};

const CHANGES: usize = 200;
const CONVERSATIONS: usize = 500;
const MESSAGES_EACH: usize = 40;
const DEVICES: usize = 1_000;

/// A `parley` on a free port with `args`; its URL and process.
async fn parley(data: &std::path::Path, args: &[&str]) -> (String, Killed) {
    let port = free_port();
    let common = [
        "--rate-sync",
        "off",
        "--max-connections-per-address",
        "0",
        "--auth-proxy-header",
        "X-Forwarded-Email",
        "--auth-proxy-from",
        "127.0.0.0/8",
        "--session-secret",
        "0123456789abcdef0123456789abcdef",
        "--storage-per-account",
        "10GiB",
    ];
    let process = support::parley(port, data, &[&common[..], args].concat(), &[]).await;
    (format!("http://127.0.0.1:{port}"), process)
}

/// A call of `function` as `email`.
async fn call(
    http: &reqwest::Client,
    site: &str,
    email: &str,
    function: &str,
    body: Value,
) -> Value {
    let res = http
        .post(format!("{site}/api/{function}"))
        .header("x-forwarded-email", email)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status == 200 || status == 409, "{function}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn message(id: &str, text: &str) -> Value {
    json!({"id": id, "message": {"role": "user", "parts": [{"text": text}]}})
}

/// The time from A's append to B having pulled it, `CHANGES` times.
async fn visible(a_site: &str, b_site: &str, what: &str) {
    let http = reqwest::Client::new();
    let email = format!("{}@bench.example", what.replace(' ', "-"));
    let mut conversation = json!({
        "id": "c1", "title": "Bench", "meta": {}, "created_ms": 1, "updated_ms": 1,
        "messages": [message("m0", "first")],
    });
    let first = call(
        &http,
        a_site,
        &email,
        "sync_push",
        json!({"push": {"conversation": conversation, "base": 0}}),
    )
    .await;
    let mut revision = first["conversation"]["revision"].as_i64().unwrap();
    let events = http
        .post(format!("{b_site}/api/sync_events"))
        .header("x-forwarded-email", &email)
        .send()
        .await
        .unwrap();
    let mut lines = events.bytes_stream();
    lines.next().await.unwrap().unwrap(); // the cursor now
    let mut cursor = call(&http, b_site, &email, "sync_pull", json!({"cursor": 0})).await["cursor"]
        .as_i64()
        .unwrap();
    let mut times = Vec::with_capacity(CHANGES);
    for n in 1..=CHANGES {
        conversation["messages"].as_array_mut().unwrap().push(message(&format!("m{n}"), "more"));
        let started = Instant::now();
        let push = json!({"push": {"conversation": conversation, "base": revision}});
        let stored = call(&http, a_site, &email, "sync_push", push).await;
        revision = stored["conversation"]["revision"].as_i64().unwrap();
        conversation = stored["conversation"].clone();
        tokio::time::timeout(Duration::from_secs(5), lines.next()).await.unwrap().unwrap().unwrap();
        let pulled = call(&http, b_site, &email, "sync_pull", json!({"cursor": cursor})).await;
        cursor = pulled["cursor"].as_i64().unwrap();
        assert_eq!(pulled["conversations"][0]["messages"].as_array().unwrap().len(), n + 1);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "a change visible on the other device, {what}: p50 {:.2} ms, p95 {:.2} ms (×{CHANGES})",
        quantile(&times, 0.5),
        quantile(&times, 0.95)
    );
}

/// An account of `CONVERSATIONS` conversations, then a new device's first sync.
async fn first_sync(site: &str) {
    let http = reqwest::Client::new();
    let email = "history@bench.example";
    let text = "x".repeat(240);
    let writes = futures::stream::iter(0..CONVERSATIONS)
        .map(|c| {
            let messages: Vec<Value> =
                (0..MESSAGES_EACH).map(|m| message(&format!("m{m}"), &text)).collect();
            let conversation = json!({
                "id": format!("c{c}"), "title": format!("Conversation {c}"), "meta": {},
                "created_ms": 1, "updated_ms": 1, "messages": messages,
            });
            let http = http.clone();
            async move {
                call(
                    &http,
                    site,
                    email,
                    "sync_push",
                    json!({"push": {"conversation": conversation, "base": 0}}),
                )
                .await
            }
        })
        .buffer_unordered(4);
    writes.collect::<Vec<_>>().await;
    let started = Instant::now();
    let (mut cursor, mut pages, mut bytes, mut conversations) = (0, 0, 0usize, 0usize);
    loop {
        let res = http
            .post(format!("{site}/api/sync_pull"))
            .header("x-forwarded-email", email)
            .json(&json!({"cursor": cursor}))
            .send()
            .await
            .unwrap();
        let body = res.bytes().await.unwrap();
        bytes += body.len();
        let page: Value = serde_json::from_slice(&body).unwrap();
        pages += 1;
        conversations += page["conversations"].as_array().unwrap().len();
        cursor = page["cursor"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(conversations, CONVERSATIONS);
    println!(
        "first sync of {CONVERSATIONS} conversations / {} messages on a new device: {:.2} s, {pages} pages, {:.1} MB",
        CONVERSATIONS * MESSAGES_EACH,
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
}

/// The resident set of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `DEVICES` event streams held open at once, one account each.
async fn devices(site: &str, pid: u32) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    // Warm: one stream opened and closed, so that what grows is the streams'.
    let warm = call(&http, site, "warm@bench.example", "sync_pull", json!({"cursor": 0})).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let mut open = Vec::with_capacity(DEVICES);
    for n in 0..DEVICES {
        let res = http
            .post(format!("{site}/api/sync_events"))
            .header("x-forwarded-email", format!("device{n}@bench.example"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "stream {n}");
        let mut stream = res.bytes_stream();
        stream.next().await.unwrap().unwrap();
        open.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    println!(
        "{DEVICES} devices with an event stream open: server RSS {:.1} MiB → {:.1} MiB, {:.1} KiB a stream",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / DEVICES as f64
    );
    drop(open);
}

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().unwrap();
    let (site, process) = parley(data.path(), &["--gemini-api-key="]).await;
    visible(&site, &site, "one replica").await;
    first_sync(&site).await;
    devices(&site, process.0.id()).await;
    if let Ok(url) = std::env::var("PARLEY_BENCH_DATABASE_URL") {
        // Replicas share one Gemini: an emulator of this process.
        let emulator =
            gemini_emulator::testing::spawn_local(gemini_emulator::testing::instant()).await;
        let base = emulator.base_url();
        let shared = ["--database-url", &url, "--gemini-api-key", "k", "--gemini-base-url", &base];
        let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, _one) = parley(one_dir.path(), &shared).await;
        let (two, _two) = parley(two_dir.path(), &shared).await;
        visible(&one, &two, "across two replicas").await;
        first_sync(&two).await;
    }
}
