//! Test support shared by the integration tests: a `parley` in this process on the built-in
//! emulator or on an external one, browsers with their own cookies, upload forms.

#![allow(dead_code)] // each test binary uses its own part of it

use clap::Parser;
use leptos::prelude::LeptosOptions;
use reqwest::multipart::{Form, Part};

use parley::{config::Config, server, upstream::Upstream};

/// A running server, its base URL, and a client that keeps its session cookie (one browser).
pub struct Site {
    pub url: String,
    pub client: reqwest::Client,
    pub data_dir: std::path::PathBuf,
    _upstream: Upstream,
    _task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client with its own cookie jar: another browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().unwrap()
}

/// An offline site: the built-in emulator, Files ACTIVE at once.
pub async fn site(args: &[&str]) -> Site {
    let mut argv = vec!["parley", "--gemini-api-key=", "--emulator-processing", "0s"];
    argv.extend_from_slice(args);
    site_from(&argv).await
}

pub async fn site_from(argv: &[&str]) -> Site {
    site_with(argv, LeptosOptions::builder().output_name("parley").build()).await
}

/// An offline site serving its static files from `root`.
pub async fn site_serving(root: &std::path::Path) -> Site {
    let options = LeptosOptions::builder()
        .output_name("parley")
        .site_root(root.display().to_string())
        .build();
    site_with(&["parley", "--gemini-api-key=", "--emulator-processing", "0s"], options).await
}

async fn site_with(argv: &[&str], options: LeptosOptions) -> Site {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_path_buf();
    let mut argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    argv.extend(["--data-dir".to_string(), data_dir.display().to_string()]);
    let config = Config::try_parse_from(&argv).unwrap();
    let upstream = Upstream::connect(&config).await.unwrap();
    let key =
        parley::session::SessionKey::load(config.session_secret.as_deref(), &data_dir).unwrap();
    let state = server::state(&config, &upstream, &key).await.unwrap();
    let guards = server::Guards::new(&config, key, state.files().store()).unwrap();
    let router = server::router(options, state, guards);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limits = config.connection_limits(parley::listen::raise_descriptor_limit());
    let task = tokio::spawn(async move {
        parley::listen::serve(
            listener,
            router,
            limits,
            std::future::pending(),
            config.shutdown_grace,
        )
        .await
        .unwrap();
    });
    Site { url, client: browser(), data_dir, _upstream: upstream, _task: task, _data: data }
}

/// An emulator answering at once whose Files live `file_ttl` (Gemini: 48 h).
pub async fn emulator(file_ttl: std::time::Duration) -> gemini_emulator::RunningEmulator {
    gemini_emulator::testing::spawn_local(gemini_emulator::EmulatorConfig {
        file_ttl,
        ..gemini_emulator::testing::instant()
    })
    .await
}

/// Parley on `emulator` with a key, no expiry margin, and `args`.
pub async fn parley(emulator: &gemini_emulator::RunningEmulator, args: &[&str]) -> Site {
    let base = emulator.base_url();
    let mut argv = vec!["parley"];
    argv.extend(on_emulator(&base, "k"));
    argv.extend_from_slice(args);
    site_from(&argv).await
}

pub fn upload_form(size: &str, mime_type: &str, name: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .text("size", size.to_string())
        .text("mime_type", mime_type.to_string())
        .text("name", name.to_string())
        .part("file", Part::bytes(bytes).file_name(name.to_string()))
}

pub async fn upload(site: &Site, form: Form) -> reqwest::Response {
    upload_as(site, &site.client, form).await
}

/// An upload from `client` (another browser of `site`).
pub async fn upload_as(site: &Site, client: &reqwest::Client, form: Form) -> reqwest::Response {
    client.post(format!("{}/api/upload_file", site.url)).multipart(form).send().await.unwrap()
}

/// Files under `site`'s data directory at `path` (e.g. `originals`), counted recursively.
pub fn files_under(site: &Site, path: &str) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
            .sum()
    }
    walk(&site.data_dir.join(path))
}

/// The real `parley` binary on the built-in emulator, with its own data directory, killed on
/// drop: for what only a separate process shows (its memory, its descriptor limit).
pub struct Process {
    pub child: std::process::Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl Process {
    /// Its data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `parley` on the built-in emulator with `args` (and, with `open_files`, that soft
    /// and hard descriptor limit, as `ulimit -n` sets it) and waits until it answers.
    pub async fn start(args: &[&str], open_files: Option<u32>) -> Process {
        let mut argv = vec!["--gemini-api-key=", "--emulator-processing", "0s"];
        argv.extend_from_slice(args);
        Process::launch(&argv, open_files).await
    }

    /// Starts `parley` with exactly `args` (besides its port and data directory) and waits
    /// until it answers.
    pub async fn launch(args: &[&str], open_files: Option<u32>) -> Process {
        Process::launch_with(args, open_files, &[], None).await
    }

    /// [`Process::launch`] with `env` added and, with `log`, stderr written to that file.
    pub async fn launch_with(
        args: &[&str],
        open_files: Option<u32>,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Process {
        Process::launch_at(free_port(), args, open_files, env, log).await
    }

    /// [`Process::launch_with`] on `port`.
    pub async fn launch_at(
        port: u16,
        args: &[&str],
        open_files: Option<u32>,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Process {
        let data = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_parley");
        let limit = open_files.map_or_else(String::new, |n| format!("ulimit -n {n} && "));
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" \"$@\""))
            .arg(binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env("PARLEY_LOG", "warn")
            // What cargo-leptos sets at build time (else Leptos prints a warning on stderr).
            .env("LEPTOS_OUTPUT_NAME", "parley")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log.map_or_else(std::process::Stdio::inherit, |path| {
                std::fs::File::create(path).expect("the log file can be made").into()
            }))
            .spawn()
            .expect("parley starts");
        let mut process = Process { child, url: format!("http://127.0.0.1:{port}"), _data: data };
        for _ in 0..600 {
            if reqwest::get(format!("{}/healthz", process.url)).await.is_ok() {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("parley exited at start-up: {status}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("parley did not start");
    }

    /// Kills the process at once (SIGKILL), as a crashed host would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A `/proc/{pid}/status` figure (`VmRSS`, `VmHWM`), KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// How another visitor fared: `site_info` calls made one after another.
#[derive(Debug, Clone, Copy)]
pub struct Visits {
    pub count: usize,
    pub failures: usize,
    pub p50: std::time::Duration,
    pub p99: std::time::Duration,
    pub max: std::time::Duration,
}

impl Visits {
    /// Asserts the visitor was served throughout: every call answered, p99 ≤ 100 ms.
    pub fn assert_fast(&self) {
        assert!(self.count >= 10, "{self:?}");
        assert_eq!(self.failures, 0, "{self:?}");
        assert!(
            self.p99 <= std::time::Duration::from_millis(100),
            "another visitor was slowed: {self:?}"
        );
    }
}

/// Runs `attack` while another visitor (its own client; connecting from `from` when given,
/// another loopback address for per-address limits) calls `site_info` every 10 ms.
pub async fn while_visited<T>(
    url: &str,
    from: Option<std::net::IpAddr>,
    attack: impl std::future::Future<Output = T>,
) -> (T, Visits) {
    while_calling(url, "/api/site_info", from, attack).await
}

/// Runs `attack` while another visitor (its own client and session; connecting from `from`
/// when given) calls the server function at `path` every 10 ms.
pub async fn while_calling<T>(
    url: &str,
    path: &str,
    from: Option<std::net::IpAddr>,
    attack: impl std::future::Future<Output = T>,
) -> (T, Visits) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let visitor = {
        let stop = stop.clone();
        let url = format!("{url}{path}");
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .local_address(from)
                .cookie_store(true)
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap();
            let (mut times, mut failures) = (Vec::new(), 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                match client.post(&url).send().await {
                    Ok(res) if res.status().is_success() => times.push(started.elapsed()),
                    _ => failures += 1,
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            (times, failures)
        })
    };
    let out = attack.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut times, failures) = visitor.await.unwrap();
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let max = times.last().copied().unwrap_or_default();
    let visits = Visits { count: times.len(), failures, p50: at(0.5), p99: at(0.99), max };
    (out, visits)
}

/// A new, empty database on the PostgreSQL server of `PARLEY_TEST_DATABASE_URL`: the admin
/// client, the database's name and its URL. `None` (a note on stderr) without that variable,
/// unless `PARLEY_TEST_REQUIRE_SERVICES` is set (`scripts/test.sh`): then it fails.
pub async fn fresh_postgres(name: &str) -> Option<(tokio_postgres::Client, String, String)> {
    let admin = test_service("PARLEY_TEST_DATABASE_URL")?;
    let (client, connection) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let suffix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let database = format!("parley_{name}_{suffix:08x}");
    client.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{base}/{database}");
    Some((client, database, url))
}

/// The value of `variable`, which names a test service (`scripts/test.sh` starts PostgreSQL and
/// S3 and sets them); `None`, with a note that the case is skipped, when it is not set — unless
/// `PARLEY_TEST_REQUIRE_SERVICES` is set: then a missing service fails the test.
pub fn test_service(variable: &str) -> Option<String> {
    let Ok(value) = std::env::var(variable) else {
        assert!(
            std::env::var_os("PARLEY_TEST_REQUIRE_SERVICES").is_none(),
            "{variable} is not set"
        );
        eprintln!("{variable} is not set: the case that needs it is skipped");
        return None;
    };
    Some(value)
}

/// A user turn about the text File at `uri`.
pub fn about(uri: &str) -> serde_json::Value {
    serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": uri}}, {"text": "what is it?"}
    ]}]})
}

/// The answer's text: every `delta` of `events`, joined.
pub fn answer(events: &[app::model::ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            app::model::ChatEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The events of one `chat` of `body` from `client` (one browser) to the site at `url`; the
/// answer must be 200.
pub async fn chat_events(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Vec<app::model::ChatEvent> {
    let res = client.post(format!("{url}/api/chat")).json(body).send().await.unwrap();
    let status = res.status();
    if status != 200 {
        panic!("{url}: {status} {}", res.text().await.unwrap_or_default());
    }
    res.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Uploads `text` as the text file `name` from `client` to the site at `url`; it must pass.
pub async fn upload_text(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    text: &str,
) -> app::model::UploadedFile {
    let form = upload_form(&text.len().to_string(), "text/plain", name, text.as_bytes().to_vec());
    let res = client.post(format!("{url}/api/upload_file")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.unwrap()
}

/// What `list_uploads` at `url` answers `client` (one browser).
pub async fn list_uploads(client: &reqwest::Client, url: &str) -> Vec<app::model::UploadRecord> {
    client.post(format!("{url}/api/list_uploads")).send().await.unwrap().json().await.unwrap()
}

/// The flags that point `parley` at an emulator's `base` URL with `key`, no expiry margin.
pub fn on_emulator<'a>(base: &'a str, key: &'a str) -> Vec<&'a str> {
    vec!["--gemini-api-key", key, "--gemini-base-url", base, "--expiry-margin", "0s"]
}

/// Resumable uploads the emulator has seen started.
pub fn starts(emulator: &gemini_emulator::RunningEmulator) -> usize {
    emulator
        .emulator
        .request_log()
        .iter()
        .filter(|r| r.upload_command.as_deref() == Some("start"))
        .count()
}
