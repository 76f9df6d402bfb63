//! Load: the `parley` binary (release build, limits off) under N concurrent streaming chats
//! and M concurrent 20 MiB uploads, each from its own browser session. Gemini is an emulator
//! in this harness's process, so that the RSS measured is Parley's alone. Prints the error
//! rate, p50/p99 latency and the server's peak RSS per round; the RSS must stay flat as N
//! grows (no per-request buffering of files). A benchmark that prints figures, not a test:
//!
//! ```text
//! cargo bench -p parley --bench load
//! PARLEY_BENCH_DATABASE_URL=postgres://… cargo bench -p parley --bench load
//! ```
//!
//! A round of chats one after another times the first token through Parley against the same
//! request straight to the emulator (alone with `PARLEY_BENCH_ONLY=first-token`). A last round
//! (alone with `PARLEY_BENCH_ONLY=held-open`) holds 10,000 streaming chats open at the same
//! moment on one process (counted by the server's own in-flight gauge) and prints its RSS
//! then.
//!
//! With `PARLEY_BENCH_DATABASE_URL` (a PostgreSQL database, e.g. from `scripts/postgres.sh
//! start`), it also compares chat throughput and p99 for one and two replicas on that shared
//! registry, the shared rate limit on (one GCRA row update per chat), the clients alternating
//! between the replicas.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

const CHAT_ROUNDS: [usize; 3] = [10, 50, 200];
const UPLOAD_ROUNDS: [usize; 3] = [2, 8, 16];
const UPLOAD_BYTES: usize = 20 << 20;

/// The server process, killed on drop.
struct Server {
    child: Child,
    url: String,
    _data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `VmRSS`/`VmHWM`-style figure of `/proc/{pid}/status`, KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const KEY: &str = "load-test-key";

fn start(gemini: &str, extra: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data_dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .env("LEPTOS_OUTPUT_NAME", "parley")
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--gemini-api-key",
            KEY,
            "--gemini-base-url",
            gemini,
        ])
        .args(["--rate-upload", "off", "--upload-bytes-per-hour", "0"])
        // Every client of the benchmark is on one address: no per-address caps.
        .args(["--max-connections-per-address", "0"])
        .args(
            [("--upstream-concurrency", "1024"), ("--upstream-per-address", "1024")]
                .into_iter()
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(flag, value)| [flag, value]),
        )
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(extra)
        .env("PARLEY_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("parley starts");
    Server { child, url: format!("http://127.0.0.1:{port}"), _data_dir: data_dir }
}

/// Samples the server's RSS every 10 ms until `stop`; the peak, KiB.
fn sample_peak(
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

struct Round {
    latencies: Vec<Duration>,
    errors: usize,
    peak_rss_kib: u64,
    wall: Duration,
}

/// The `q` quantile (0–1) of `sorted`, nearest rank; zero when it is empty.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len().max(1) - 1) as f64 * q).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

fn report(what: &str, n: usize, mut round: Round) {
    round.latencies.sort();
    let at = |q: f64| quantile(&round.latencies, q);
    println!(
        "{what:>22} ×{n:<4} errors {:>5.1}%  p50 {:>7.0} ms  p99 {:>7.0} ms  wall {:>6.2} s  server peak RSS {:>6.1} MiB",
        100.0 * round.errors as f64 / round.latencies.len().max(1) as f64,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        round.wall.as_secs_f64(),
        round.peak_rss_kib as f64 / 1024.0
    );
}

async fn run_round<F, Fut>(servers: &[&Server], n: usize, one: F) -> Round
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let samplers: Vec<_> = servers
        .iter()
        .map(|server| sample_peak(server.child.id(), stop.clone(), peak.clone()))
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let fut = one(i);
            tokio::spawn(async move {
                let t = Instant::now();
                let ok = fut.await;
                (t.elapsed(), ok)
            })
        })
        .collect();
    let mut round =
        Round { latencies: Vec::new(), errors: 0, peak_rss_kib: 0, wall: Duration::ZERO };
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        round.latencies.push(latency);
        round.errors += usize::from(!ok);
    }
    round.wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for sampler in samplers {
        sampler.join().unwrap();
    }
    round.peak_rss_kib = peak.load(Ordering::Relaxed);
    round
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().unwrap()
}

#[tokio::main]
async fn main() {
    // `PARLEY_BENCH_ONLY=held-open` or `first-token`: only that round.
    let only = std::env::var("PARLEY_BENCH_ONLY").unwrap_or_default();
    if only == "held-open" {
        return ten_thousand_open_at_once().await;
    }
    let config = gemini_emulator::EmulatorConfig {
        api_key: Some(KEY.into()),
        processing: Duration::ZERO,
        ..Default::default()
    };
    let emulator = gemini_emulator::testing::spawn_local(config).await;
    let server = start(&emulator.base_url(), &["--rate-chat", "off", "--metrics-on-site"]);
    wait_up(&server).await;
    println!(
        "parley (release) against an emulator in another process; idle RSS {:.1} MiB",
        status_kib(server.child.id(), "VmRSS:") as f64 / 1024.0
    );
    first_token(&server, &emulator.base_url()).await;
    if only == "first-token" {
        return;
    }

    for n in CHAT_ROUNDS {
        report("streaming chats", n, chats(&[&server], n).await);
    }
    // What the metrics cost: 10 s of rounds of 200 chats, without and with /metrics scraped
    // every second.
    let n = 200;
    report("chats, no scraping", n, sustained(&server, n, Duration::from_secs(10)).await);
    let scraper = tokio::spawn({
        let url = format!("{}/metrics", server.url);
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let scraped = reqwest::get(&url).await.and_then(|r| r.error_for_status());
                assert!(scraped.is_ok(), "/metrics answers");
            }
        }
    });
    report("chats, /metrics each 1 s", n, sustained(&server, n, Duration::from_secs(10)).await);
    scraper.abort();

    for m in UPLOAD_ROUNDS {
        let url = format!("{}/api/upload_file", server.url);
        let round = run_round(&[&server], m, |i| {
            let url = url.clone();
            async move {
                // Distinct bytes per upload: no dedup.
                let mut bytes = vec![b'a' + (i % 26) as u8; UPLOAD_BYTES];
                bytes[..8].copy_from_slice(format!("{i:08}").as_bytes());
                let form = reqwest::multipart::Form::new()
                    .text("size", UPLOAD_BYTES.to_string())
                    .text("mime_type", "text/plain")
                    .text("name", format!("load-{i}.txt"))
                    .part("file", reqwest::multipart::Part::bytes(bytes).file_name(format!("load-{i}.txt")));
                matches!(browser().post(&url).multipart(form).send().await, Ok(res) if res.status().is_success())
            }
        })
        .await;
        report("20 MiB uploads", m, round);
    }
    println!(
        "server peak RSS over the whole run (VmHWM) {:.1} MiB",
        status_kib(server.child.id(), "VmHWM:") as f64 / 1024.0
    );
    drop(server);
    ten_thousand_open_at_once().await;
    if let Ok(database) = std::env::var("PARLEY_BENCH_DATABASE_URL") {
        replicas(&emulator.base_url(), &database).await;
    }
}

/// Streams held open together in the concurrency round.
const HELD_OPEN: usize = 10_000;

/// `HELD_OPEN` streaming chats (or as many as the descriptors allow) open at the same moment
/// on one fresh process: each answer
/// takes seconds (an emulator of its own with a slow chunk pace), so they overlap; the
/// server's `parley_chat_streams_in_flight` is read every 100 ms to prove how many were open
/// at once, and its RSS at that moment is printed (then per stream, over the idle RSS).
async fn ten_thousand_open_at_once() {
    // Each stream takes two descriptors on each side (the server: the browser's connection
    // and its own to Gemini; this process: the client's and the emulator's end). Raised to
    // the hard limit (and it, where allowed); the server inherits it. Under a lower hard limit
    // the round holds as many as fit, and says so.
    let want = 2 * HELD_OPEN as u64 + 1024;
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want);
    let _ = rlimit::increase_nofile_limit(want);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    let held = HELD_OPEN.min(usize::try_from(soft.saturating_sub(1024) / 2).unwrap_or(0));
    if held < HELD_OPEN {
        println!("descriptors: {soft} here, so {held} streams instead of {HELD_OPEN}");
    }
    let config = gemini_emulator::EmulatorConfig {
        api_key: Some(KEY.into()),
        processing: Duration::ZERO,
        chunk_delay: Duration::from_millis(1500),
        ..Default::default()
    };
    let emulator = gemini_emulator::testing::spawn_local(config).await;
    let metrics_port =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let caps = (held * 2).to_string();
    let server = start(
        &emulator.base_url(),
        &["--rate-chat", "off", "--upstream-concurrency", &caps, "--upstream-per-address", &caps]
            .into_iter()
            .chain(["--metrics-listen", metrics_listen.as_str()])
            .collect::<Vec<_>>(),
    );
    wait_up(&server).await;
    let idle_kib = status_kib(server.child.id(), "VmRSS:");
    let (done, most, rss_at_most) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let watcher = tokio::spawn({
        let (done, most, rss_at_most) = (done.clone(), most.clone(), rss_at_most.clone());
        let (url, pid) = (format!("http://{metrics_listen}/metrics"), server.child.id());
        async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(open) = in_flight(&url).await {
                    if open > most.load(Ordering::Relaxed) {
                        most.store(open, Ordering::Relaxed);
                        rss_at_most.store(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let round = chats(&[&server], held).await;
    done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let (open, at_most) = (most.load(Ordering::Relaxed), rss_at_most.load(Ordering::Relaxed));
    println!(
        "{held} chats: {open} streams open at the same moment; RSS then {:.1} MiB (idle {:.1} MiB: {:.1} KiB a stream)",
        at_most as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        at_most.saturating_sub(idle_kib) as f64 / open.max(1) as f64
    );
    report("chats held open", held, round);
}

/// `parley_chat_streams_in_flight` as `/metrics` at `url` gives it.
async fn in_flight(url: &str) -> Option<u64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("parley_chat_streams_in_flight "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Chat throughput and latency for one and two replicas sharing the registry at `database`.
async fn replicas(gemini: &str, database: &str) {
    let shared = [
        "--database-url",
        database,
        "--session-secret",
        "load-benchmark-session-secret-0123456789",
        "--rate-chat",
        "1000000/min",
    ];
    println!("on a shared PostgreSQL registry, the shared chat rate limit on:");
    for count in [1, 2] {
        let servers: Vec<Server> = (0..count).map(|_| start(gemini, &shared)).collect();
        for server in &servers {
            wait_up(server).await;
        }
        let refs: Vec<&Server> = servers.iter().collect();
        for n in [200, 1000] {
            let round = chats(&refs, n).await;
            let throughput = n as f64 / round.wall.as_secs_f64();
            println!("{count} replica(s), {throughput:>6.0} chats/s:");
            report("streaming chats", n, round);
        }
    }
}

/// `n` concurrent streaming chats, each from its own browser, alternating between `servers`.
async fn chats(servers: &[&Server], n: usize) -> Round {
    let urls: Vec<String> = servers.iter().map(|s| format!("{}/api/chat", s.url)).collect();
    run_round(servers, n, |i| {
        let url = urls[i % urls.len()].clone();
        async move {
            let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": format!("load {i}: tell me something")}]}]});
            match browser().post(&url).json(&body).send().await {
                Ok(res) if res.status().is_success() => res.text().await.is_ok_and(|t| t.contains(r#""type":"done""#)),
                _ => false,
            }
        }
    })
    .await
}

/// Chats timed from the request to their first text, each way.
const FIRST_TOKEN_CHATS: usize = 100;

/// The model of [`first_token`]'s direct requests: `parley`'s default `--model`.
const MODEL: &str = "gemini-2.5-flash";

/// What Parley adds to the first token: [`FIRST_TOKEN_CHATS`] chats one after another from one
/// browser session (after 10 to warm up), each timed from the request to its first text
/// (`"type":"delta"`), in turn with the same request straight to the emulator
/// (`streamGenerateContent?alt=sse`, its first `"text"`) and through a bare TCP relay to it (a
/// thread of its own, as `parley` is a process of its own: the floor of anything in between,
/// the wake-ups of one more hop each way).
async fn first_token(server: &Server, gemini: &str) {
    let relay = tcp_relay(gemini.trim_start_matches("http://").to_string());
    let (page, direct) = (browser(), reqwest::Client::new());
    let through_url = format!("{}/api/chat", server.url);
    let direct_url = format!("{gemini}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse");
    let relayed_url = format!("http://{relay}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse");
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..FIRST_TOKEN_CHATS + 10 {
        let text = format!("first token {i}: tell me something");
        let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
        let straight = direct.post(&direct_url).header("x-goog-api-key", KEY).json(&body);
        let relayed = direct.post(&relayed_url).header("x-goog-api-key", KEY).json(&body);
        let took = [
            until_first(straight, r#""text""#).await,
            until_first(relayed, r#""text""#).await,
            until_first(page.post(&through_url).json(&body), r#""type":"delta""#).await,
        ];
        if i >= 10 {
            for (all, took) in times.iter_mut().zip(took) {
                all.push(took);
            }
        }
    }
    for all in &mut times {
        all.sort();
    }
    let [p50, p90] =
        [0.5, 0.9].map(|q| times.each_ref().map(|all| quantile(all, q).as_secs_f64() * 1e3));
    println!("first token, {FIRST_TOKEN_CHATS} chats one after another (p50 / p90):");
    for (i, what) in
        ["client → emulator", "client → TCP relay → emulator", "client → parley → emulator"]
            .iter()
            .enumerate()
    {
        println!("  {what:<30}: {:6.2} / {:6.2} ms", p50[i], p90[i]);
    }
    println!(
        "  added by parley (p50)         : {:+6.2} ms over direct, {:+6.2} ms over the relay",
        p50[2] - p50[0],
        p50[2] - p50[1]
    );
}

/// A bare TCP relay to `target` (`host:port`) on a thread and runtime of its own: its address.
fn tcp_relay(target: String) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
    });
    addr
}

/// The time from sending `req` until `marker` first appears in its streamed answer (the rest
/// is read too, so that the connection is reused).
async fn until_first(req: reqwest::RequestBuilder, marker: &str) -> Duration {
    use futures::StreamExt;
    let started = Instant::now();
    let res = req.send().await.expect("an answer").error_for_status().expect("a 2xx answer");
    let mut body = res.bytes_stream();
    let (mut seen, mut first) = (Vec::new(), None);
    while let Some(piece) = body.next().await {
        let piece = piece.expect("the answer streams");
        if first.is_none() {
            seen.extend_from_slice(&piece);
            if String::from_utf8_lossy(&seen).contains(marker) {
                first = Some(started.elapsed());
            }
        }
    }
    first.unwrap_or_else(|| panic!("no {marker} in the answer: {}", String::from_utf8_lossy(&seen)))
}

/// Rounds of `n` concurrent chats, one after another, for `how_long`: their latencies and
/// errors together (the count printed is per round; the peak RSS is the highest).
async fn sustained(server: &Server, n: usize, how_long: Duration) -> Round {
    let started = Instant::now();
    let mut all = Round { latencies: Vec::new(), errors: 0, peak_rss_kib: 0, wall: Duration::ZERO };
    while started.elapsed() < how_long {
        let round = chats(&[server], n).await;
        all.latencies.extend(round.latencies);
        all.errors += round.errors;
        all.peak_rss_kib = all.peak_rss_kib.max(round.peak_rss_kib);
    }
    all.wall = started.elapsed();
    all
}

/// Waits (up to 30 s) until `server` answers.
async fn wait_up(server: &Server) {
    let ready = Instant::now();
    while reqwest::get(&server.url).await.is_err() {
        assert!(ready.elapsed() < Duration::from_secs(30), "parley did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
