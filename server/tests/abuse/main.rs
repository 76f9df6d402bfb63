//! What one hostile visitor of a public site tries against everyone else — each attack
//! reproduced, bounded in time and size, with the limit that now holds it asserted, and (where
//! it could slow others) another visitor's `site_info` measured meanwhile: every call answered,
//! p99 ≤ 100 ms. The tests run one at a time (they measure time) on two worker threads.

#[path = "../common/mod.rs"]
mod common;
mod surfaces;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use app::error::AppError;
use common::*;
use futures::{future::join_all, StreamExt};
use reqwest::{
    header,
    multipart::{Form, Part},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One test at a time: they measure latency on a two-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Another loopback address: a visitor other than the attacker, for per-address limits.
fn elsewhere() -> Option<IpAddr> {
    Some("127.0.0.2".parse().unwrap())
}

/// A chat body of 40,000 `file_data` parts naming `distinct` made-up Files in turn.
fn many_files(distinct: usize) -> Vec<u8> {
    let parts: Vec<_> = (0..40_000)
        .map(|i| {
            let uri = format!(
                "https://generativelanguage.googleapis.com/v1beta/files/made-up-{:06}",
                i % distinct
            );
            serde_json::json!({"file_data": {"mime_type": "application/pdf", "file_uri": uri}})
        })
        .chain([serde_json::json!({"text": "what are they?"})])
        .collect();
    serde_json::to_vec(&serde_json::json!({"contents": [{"role": "user", "parts": parts}]}))
        .unwrap()
}

async fn post_json(client: &reqwest::Client, url: String, body: Vec<u8>) -> reqwest::Response {
    client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_naming_40000_files_is_refused_at_once_and_others_stay_fast() {
    let _serial = SERIAL.lock().await;
    let site = site(&["--rate-chat", "off"]).await;
    let (refused, bounded) =
        (many_files(40_000), many_files(app::server::chat::MAX_FILES_PER_REQUEST));
    assert!(refused.len() > 2_500_000, "{} bytes", refused.len());
    let url = format!("{}/api/chat", site.url);
    let (took, visits) = while_visited(&site.url, None, async {
        let started = Instant::now();
        let answers =
            join_all((0..4).map(|_| post_json(&site.client, url.clone(), refused.clone()))).await;
        let took = started.elapsed();
        for res in answers {
            assert_eq!(res.status(), 400);
            let AppError::BadRequest(why) = res.json::<AppError>().await.unwrap() else {
                panic!("not a BadRequest")
            };
            assert!(why.contains("40000 files") && why.contains("at most 500"), "{why}");
        }
        // 500 distinct Files (the most allowed), each named 80 times: answered, all expired.
        let res = post_json(&site.client, url.clone(), bounded.clone()).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert_eq!(text.matches(r#""type":"expired""#).count(), 500);
        assert!(text.contains(r#""type":"done""#));
        took
    })
    .await;
    println!("4 chats of 40,000 distinct made-up Files (2.7 MB each) refused in {took:?}; visitor: {visits:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    visits.assert_fast();
}

/// How long until the server closes `stream` (reads EOF or an error), up to `within`; the
/// bytes it sent before.
async fn closed_after(stream: &mut TcpStream, within: Duration) -> Option<(Duration, String)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), stream.read(&mut buf))
            .await
        {
            Ok(Ok(0) | Err(_)) => {
                return Some((started.elapsed(), String::from_utf8_lossy(&seen).into_owned()))
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_half_sent_trickled_and_excess_connections_are_closed() {
    let _serial = SERIAL.lock().await;
    // This test holds more than a thousand sockets itself.
    parley::listen::raise_descriptor_limit();
    let args = [
        "--header-read-timeout",
        "1s",
        "--max-connections-per-address",
        "16",
        "--min-body-rate",
        "1KiB",
    ];
    let site = Process::start(&args, Some(1024)).await;
    let addr = site.url.strip_prefix("http://").unwrap().to_string();
    let patience = Duration::from_secs(8);

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let (after, _) = closed_after(&mut idle, patience).await.expect("an idle connection is closed");
    assert!(after < Duration::from_secs(3), "idle: {after:?}");

    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: parley\r\n").await.unwrap();
    let (after, _) = closed_after(&mut half, patience).await.expect("half-sent headers are closed");
    assert!(after < Duration::from_secs(3), "half-sent headers: {after:?}");

    let mut trickle = TcpStream::connect(&addr).await.unwrap();
    let head = "POST /api/chat HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    trickle.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = trickle.into_split();
    let dripping = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = String::new();
    let _ = tokio::time::timeout(patience, reader.read_to_string(&mut answer)).await;
    dripping.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "a trickled body is cut: {answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "trickle cut after {:?}",
        started.elapsed()
    );

    // 1,100 idle connections from one address under `ulimit -n 1024`: 16 are held, the rest
    // closed at once, and a visitor from elsewhere is served throughout.
    let (held, visits) = while_visited(&site.url, elsewhere(), async {
        let mut streams = Vec::new();
        for _ in 0..1100 {
            if let Ok(stream) = TcpStream::connect(&addr).await {
                streams.push(stream);
            }
        }
        let open = join_all(streams.iter_mut().map(|s| async move {
            let mut buf = [0u8; 1];
            // Still open: nothing to read (the read times out); closed: EOF or an error.
            tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await.is_err()
        }))
        .await;
        open.into_iter().filter(|o| *o).count()
    })
    .await;
    println!("1,100 idle connections from one address: {held} held; visitor: {visits:?}");
    assert!(held <= 16, "{held} held");
    visits.assert_fast();
}

#[tokio::test]
async fn the_descriptor_limit_is_raised_to_the_hard_limit() {
    let _serial = SERIAL.lock().await;
    let site = Process::start(&[], None).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", site.child.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_string();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
}

/// A multipart upload whose `name` field (or a part header) is `huge` bytes long, streamed.
fn huge_field(huge: usize, in_header: bool) -> reqwest::Body {
    let boundary = "XyZzY";
    let (open, close) = if in_header {
        (
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"size\"\r\nX-Padding: "),
            String::new(),
        )
    } else {
        (
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"),
            format!("\r\n--{boundary}--\r\n"),
        )
    };
    let chunk = bytes::Bytes::from(vec![b'a'; 1 << 20]);
    let rest = bytes::Bytes::from(vec![b'a'; huge % (1 << 20)]);
    let body = futures::stream::iter([bytes::Bytes::from(open)])
        .chain(futures::stream::iter(std::iter::repeat_n(chunk, huge >> 20)))
        .chain(futures::stream::iter([rest]))
        .chain(futures::stream::iter([bytes::Bytes::from(close)]))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_text_fields_and_part_headers_are_refused_before_they_are_read() {
    let _serial = SERIAL.lock().await;
    let site = Process::start(&[], None).await;
    let url = format!("{}/api/upload_file", site.url);
    let before = site.status_kib("VmRSS");
    let client = browser();
    let send = |huge, in_header| {
        client
            .post(&url)
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZzY")
            .body(huge_field(huge, in_header))
            .send()
    };
    // A 5 KiB name: a clear 400 naming the field.
    let res = send(5 << 10, false).await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res
        .json::<AppError>()
        .await
        .unwrap()
        .to_string()
        .contains("the `name` field is longer than 4096 bytes"));
    let (took, visits) = while_visited(&site.url, None, async {
        let started = Instant::now();
        // Four 200 MB names and a 200 MB part header at once: each refused once a few KiB
        // are read (the rest of the body is never taken: the client may see its send fail).
        let answers =
            join_all((0..4).map(|_| send(200 << 20, false)).chain([send(200 << 20, true)])).await;
        for res in answers.into_iter().flatten() {
            assert_eq!(res.status(), 400);
        }
        started.elapsed()
    })
    .await;
    let peak = site.status_kib("VmHWM");
    println!("four 200 MB name fields and a 200 MB part header: refused in {took:?}; RSS {before} KiB → peak {peak} KiB; visitor: {visits:?}");
    assert!(peak < before + 64 * 1024, "RSS {before} KiB → {peak} KiB");
    assert!(took < Duration::from_secs(10), "{took:?}");
    visits.assert_fast();
}

/// A multipart upload of `bytes` whose length is not announced (chunked).
fn chunked_upload(bytes: Vec<u8>, name: &str) -> Form {
    let size = bytes.len().to_string();
    let stream = futures::stream::iter(
        bytes.chunks(64 << 10).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    Form::new()
        .text("size", size)
        .text("mime_type", "text/plain")
        .text("name", name.to_string())
        .part("file", Part::stream(reqwest::Body::wrap_stream(stream)).file_name(name.to_string()))
}

/// `n` bytes of text, different for each `seed`.
fn text_bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| b'a' + ((i + seed as usize) % 26) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_byte_quota_counts_bytes_taken_per_session_and_per_address() {
    let _serial = SERIAL.lock().await;
    // 2 MB an hour: two 1 MiB cells a session, eight an address.
    let site = site(&["--upload-bytes-per-hour", "2MB", "--rate-upload", "off"]).await;
    // 3 MB with a length: refused before it is read; the same 3 MB chunked: refused as it comes.
    let res =
        upload(&site, upload_form("3000000", "text/plain", "a.txt", text_bytes(3_000_000, 0)))
            .await;
    assert_eq!(res.status(), 429);
    let res = upload_as(&site, &browser(), chunked_upload(text_bytes(3_000_000, 1), "b.txt")).await;
    assert_eq!(res.status(), 429, "chunked bytes count");
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    assert!(matches!(res.json::<AppError>().await.unwrap(), AppError::TooManyRequests { .. }));
    assert_eq!(files_under(&site, "originals"), 0, "nothing stored");

    // Fresh cookies from the same address: the address's quota (8 MiB) runs out too. The
    // chunked refusal above took 2 MiB of it; each 1.5 MB upload takes 2 more.
    let mut passed = 0;
    for seed in 2..8 {
        let res =
            upload_as(&site, &browser(), chunked_upload(text_bytes(1_500_000, seed), "c.txt"))
                .await;
        match res.status().as_u16() {
            200 => passed += 1,
            429 => break,
            other => panic!("{other}"),
        }
    }
    assert_eq!(passed, 3, "a new cookie does not reset the address's quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_files_asks_gemini_once_per_file_and_is_rate_limited() {
    let _serial = SERIAL.lock().await;
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let res = upload(&site, upload_form("5", "text/plain", "mine.txt", b"hello".to_vec())).await;
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let gets = || gemini_emulator::testing::requests(&emulator, "GET", "/files/").len();
    let url = format!("{}/api/check_files", site.url);
    let checks = serde_json::json!({"uris": vec![file.uri.clone(); 500]});
    let res = site.client.post(&url).json(&checks).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let answers: Vec<app::model::FileCheck> = res.json().await.unwrap();
    assert_eq!(answers.len(), 500);
    assert!(answers.iter().all(|c| c.live && c.uri == file.uri));
    assert_eq!(gets(), 1, "500 copies of one URI: one files.get");

    let ((ok, refused), visits) = while_visited(&site.url, None, async {
        let (mut ok, mut refused) = (0, 0);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            match site
                .client
                .post(&url)
                .json(&checks)
                .send()
                .await
                .expect("an answer, not a cut connection")
                .status()
                .as_u16()
            {
                200 => ok += 1,
                429 => refused += 1,
                other => panic!("{other}"),
            }
        }
        (ok, refused)
    })
    .await;
    println!("check_files loop, 3 s: {ok} answered, {refused} refused, {} upstream files.get in all; visitor: {visits:?}", gets());
    // 60 a minute: the burst of 60 (one was used above), then one a second.
    assert!(refused > 0 && ok <= 62, "{ok} answered, {refused} refused");
    assert_eq!(gets(), 1, "within the cache's 30 s, Gemini is not asked again");
    visits.assert_fast();
}

/// A chat from `address` (behind a trusted proxy) with `client`'s cookie.
async fn chat_from(site: &Site, client: &reqwest::Client, address: &str) -> reqwest::Response {
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "tell me a long story"}]}]});
    client
        .post(format!("{}/api/chat", site.url))
        .header("x-forwarded-for", address)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_upstream_slot() {
    let _serial = SERIAL.lock().await;
    // Answers take about six seconds (six chunks a second apart).
    let config = gemini_emulator::EmulatorConfig {
        chunk_delay: Duration::from_secs(1),
        ..gemini_emulator::testing::instant()
    };
    let emulator = gemini_emulator::testing::spawn_local(config).await;
    let args = [
        "--trust-proxy",
        "--rate-chat",
        "off",
        "--upstream-concurrency",
        "4",
        "--upstream-per-address",
        "2",
        "--upstream-per-session",
        "2",
        "--upstream-wait",
        "2s",
    ];
    let site = parley(&emulator, &args).await;
    // The flood: nine long answers from one address over three cookies.
    let flood: Vec<_> = (0..3)
        .flat_map(|_| {
            let client = browser();
            (0..3).map(move |_| client.clone())
        })
        .map(|client| {
            let site_url = site.url.clone();
            tokio::spawn(async move {
                let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "a long story"}]}]});
                let res = client.post(format!("{site_url}/api/chat")).header("x-forwarded-for", "203.0.113.1").json(&body).send().await.unwrap();
                let status = res.status().as_u16();
                let _ = res.text().await;
                status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another visitor, from another address, is answered at once.
    let started = Instant::now();
    let res = chat_from(&site, &browser(), "198.51.100.7").await;
    let waited = started.elapsed();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(r#""type":"done""#));
    let statuses: Vec<u16> = join_all(flood).await.into_iter().map(Result::unwrap).collect();
    println!("9 long answers from one address: {statuses:?}; another address waited {waited:?} for its answer to start");
    assert!(waited < Duration::from_secs(1), "the visitor waited {waited:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "the flood's address held two slots: {statuses:?}"
    );
    assert!(statuses.iter().all(|s| matches!(s, 200 | 503)), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_uploads_evicts_its_own_originals_first() {
    let _serial = SERIAL.lock().await;
    let site = site(&["--trust-proxy", "--retain-max-bytes", "5MB", "--rate-upload", "off"]).await;
    let upload_from = |client: reqwest::Client, address: &'static str, seed: u8| {
        let url = format!("{}/api/upload_file", site.url);
        async move {
            let form = upload_form("1000000", "text/plain", "one.txt", text_bytes(1_000_000, seed));
            client
                .post(url)
                .header("x-forwarded-for", address)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(upload_from(site.client.clone(), "198.51.100.7", 0).await, 200);
    for seed in 1..7 {
        assert_eq!(upload_from(browser(), "203.0.113.1", seed).await, 200);
    }
    let mine = list_uploads(&site.client, &site.url).await;
    assert!(mine[0].retained, "the visitor's original survives a flood from another address");
    assert_eq!(files_under(&site, "originals"), 5, "the budget holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_have_their_documented_limit_and_a_413_past_it() {
    let _serial = SERIAL.lock().await;
    let site = site(&[]).await;
    let url = format!("{}/api/chat", site.url);
    let body = |bytes: usize| {
        serde_json::to_vec(&serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "x".repeat(bytes)}]}]})).unwrap()
    };
    // Over axum's 2 MiB default, under Parley's 8 MiB.
    assert_eq!(post_json(&site.client, url.clone(), body(3 << 20)).await.status(), 200);
    let over = body(9 << 20);
    assert_eq!(post_json(&site.client, url.clone(), over.clone()).await.status(), 413);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        over.chunks(1 << 20).map(|c| Ok(c.to_vec())).collect();
    let res = site
        .client
        .post(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413, "chunked too");
    assert!(
        matches!(res.json::<AppError>().await.unwrap(), AppError::TooLarge { limit_bytes, .. } if limit_bytes == 8 << 20)
    );
}
