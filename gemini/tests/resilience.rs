//! What the client survives: dropped connections mid-upload (resumed with `query`),
//! 429/500/503 (retried, honouring `RetryInfo`), hangs (timed out and retried), and what it
//! must not retry.

mod common;

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::{bytes_of, client, config, emulator, sha_hex, TempFile};
use futures::StreamExt;
use gemini::{
    Client, Content, Error, FileSource, GenerateContentRequest, Part, RetryPolicy, UploadRequest,
};
use gemini_emulator::testing::requests;
use gemini_emulator::{EmulatorConfig, Fault, FaultKind, Route};

fn instant() -> EmulatorConfig {
    EmulatorConfig { processing: Duration::ZERO, chunk_delay: Duration::ZERO, ..Default::default() }
}

fn ask(text: &str) -> GenerateContentRequest {
    GenerateContentRequest {
        contents: vec![Content { role: Some("user".into()), parts: vec![Part::text(text)] }],
        ..Default::default()
    }
}

fn generate_calls(emu: &gemini_emulator::RunningEmulator) -> usize {
    requests(emu, "POST", ":generateContent").len()
        + requests(emu, "POST", ":streamGenerateContent").len()
}

/// Lets the first chunk through, then has the next two chunk requests dropped mid-transfer.
async fn drop_two_chunks_after_the_first(emu: &gemini_emulator::RunningEmulator) {
    while requests(emu, "POST", "upload").iter().filter(|r| r.upload_offset.is_some()).count() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    emu.emulator.inject(Fault { route: Route::Chunk, kind: FaultKind::Drop, count: 2 });
}

/// A 40 MiB upload whose connection drops twice mid-chunk arrives byte-exact: the client
/// asks `query` and resumes from `X-Goog-Upload-Size-Received`.
#[tokio::test]
async fn a_40_mib_upload_survives_two_dropped_connections() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(40 * 1024 * 1024, 5);
    let req = UploadRequest {
        display_name: Some("big.bin".into()),
        mime_type: "video/mp4".into(),
        size_bytes: data.len() as u64,
    };
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(3_000_017).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let uploading = gemini.upload_stream(&req, futures::stream::iter(pieces));
    let (file, ()) = tokio::join!(uploading, drop_two_chunks_after_the_first(&emu));
    let file = file.unwrap();
    let hash = base64::engine::general_purpose::STANDARD.decode(file.sha256_hash.unwrap()).unwrap();
    assert_eq!(String::from_utf8(hash).unwrap(), sha_hex(&data), "byte-exact after two drops");
    assert_eq!(file.size_bytes, data.len() as u64);

    let log = requests(&emu, "POST", "upload");
    let dropped: Vec<_> = log.iter().filter(|r| r.fault.as_deref() == Some("drop")).collect();
    assert_eq!(dropped.len(), 2, "two chunks were cut");
    assert!(
        dropped.iter().all(|r| r.body_bytes > 0 && r.body_bytes < 8 * 1024 * 1024),
        "each took part of its chunk"
    );
    let queries = log.iter().filter(|r| r.upload_command.as_deref() == Some("query")).count();
    assert_eq!(queries, 2, "one query per drop");
    // After each drop, the next chunk starts where the emulator said it stopped.
    for (i, r) in log.iter().enumerate().filter(|(_, r)| r.fault.as_deref() == Some("drop")) {
        let resumed = log[i + 2].upload_offset.unwrap();
        assert_eq!(resumed, r.upload_offset.unwrap() + r.body_bytes as u64);
    }
}

/// The same through [`Client::upload_from`] with a file on disk: each chunk's body streams
/// from the file, and after a drop the rest of the chunk is read again from the offset the
/// emulator reports.
#[tokio::test]
async fn a_file_source_upload_survives_dropped_connections() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(20 * 1024 * 1024 + 123, 9);
    let file = TempFile::new("big.mp4", &data);
    let req = UploadRequest {
        display_name: Some("big.mp4".into()),
        mime_type: "video/mp4".into(),
        size_bytes: data.len() as u64,
    };
    let source = FileSource::new(&file.0);
    let uploading = gemini.upload_from(&req, &source);
    let (uploaded, ()) = tokio::join!(uploading, drop_two_chunks_after_the_first(&emu));
    let uploaded = uploaded.unwrap();
    let hash =
        base64::engine::general_purpose::STANDARD.decode(uploaded.sha256_hash.unwrap()).unwrap();
    assert_eq!(String::from_utf8(hash).unwrap(), sha_hex(&data), "byte-exact after two drops");
    let log = requests(&emu, "POST", "upload");
    assert_eq!(log.iter().filter(|r| r.fault.as_deref() == Some("drop")).count(), 2);
    for (i, r) in log.iter().enumerate().filter(|(_, r)| r.fault.as_deref() == Some("drop")) {
        assert_eq!(
            log[i + 2].upload_offset.unwrap(),
            r.upload_offset.unwrap() + r.body_bytes as u64,
            "resumed where it stopped"
        );
    }
    let sent: u64 =
        log.iter().filter(|r| r.upload_offset.is_some()).map(|r| r.body_bytes as u64).sum();
    assert_eq!(
        sent,
        data.len() as u64,
        "every byte sent once: what a drop let through is not sent again"
    );
}

/// A source that cannot be read is [`Error::Source`], not retried, and nothing is finalized.
#[tokio::test]
async fn an_unreadable_source_is_a_source_error() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let req = UploadRequest { display_name: None, mime_type: "text/plain".into(), size_bytes: 10 };
    let dir = tempfile::tempdir().unwrap();
    let missing = FileSource::new(dir.path().join("no-such-file"));
    let err = gemini.upload_from(&req, &missing).await.unwrap_err();
    assert!(matches!(err, Error::Source(_)), "{err:?}");
    assert!(
        requests(&emu, "POST", "upload").iter().all(|r| r.upload_offset.is_none()),
        "no chunk was sent"
    );
}

/// A network error names the URL it failed on without its query: an upload session's
/// `upload_id` is a capability, and errors are logged.
#[tokio::test]
async fn network_errors_do_not_carry_the_upload_session_url() {
    let failed = reqwest::Client::new()
        .post("http://127.0.0.1:1/upload/v1beta/files?upload_id=SECRET-SESSION")
        .send()
        .await
        .unwrap_err();
    let err = Error::from(failed);
    assert!(matches!(err, Error::Transport(_)));
    let text = format!("{err} {err:?}");
    assert!(text.contains("127.0.0.1:1/upload/v1beta/files"), "{text}");
    assert!(!text.contains("SECRET-SESSION") && !text.contains("upload_id"), "{text}");
}

/// A chunk refused with 503 (no `x-goog-upload-status`, so the session lives) is resent.
#[tokio::test]
async fn a_chunk_refused_with_503_is_resent() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault { route: Route::Chunk, kind: FaultKind::Unavailable, count: 1 });
    let data = bytes_of(1000, 1);
    let file = client(&emu, "k1")
        .upload_bytes(None, "text/plain", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(file.size_bytes, 1000);
    let finals = requests(&emu, "POST", "upload")
        .into_iter()
        .filter(|r| r.upload_command.as_deref() == Some("upload, finalize"))
        .count();
    assert_eq!(finals, 2);
}

/// 429 with `RetryInfo`, then 500 and 503: the answer still comes, after four calls, and
/// the wait honoured the 0.3 s `retryDelay`.
#[tokio::test]
async fn generate_retries_429_500_503() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::RateLimited { retry_delay: Duration::from_millis(300) },
        count: 1,
    });
    emu.emulator.inject(Fault { route: Route::Generate, kind: FaultKind::Internal, count: 1 });
    emu.emulator.inject(Fault { route: Route::Generate, kind: FaultKind::Unavailable, count: 1 });
    let started = std::time::Instant::now();
    let answer =
        client(&emu, "k1").generate_content("gemini-2.5-flash", &ask("hello")).await.unwrap();
    assert!(answer.text().contains("hello"));
    assert_eq!(generate_calls(&emu), 4);
    assert!(started.elapsed() >= Duration::from_millis(300), "RetryInfo honoured");
}

/// The streamed call is retried too, before its first chunk.
#[tokio::test]
async fn stream_retries_before_the_first_chunk() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault { route: Route::Generate, kind: FaultKind::Unavailable, count: 2 });
    let mut stream =
        client(&emu, "k1").stream_generate_content("gemini-2.5-flash", &ask("hi")).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk.unwrap().text());
    }
    assert!(text.contains("hi"));
    assert_eq!(generate_calls(&emu), 3);
}

/// Retries are bounded: a 429 that persists surfaces after `max_retries` + 1 calls, typed.
#[tokio::test]
async fn retries_are_bounded() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::RateLimited { retry_delay: Duration::from_millis(10) },
        count: 100,
    });
    let mut cfg = config(&emu, "k1");
    cfg.retry.max_retries = 2;
    let err = Client::new(cfg)
        .unwrap()
        .generate_content("gemini-2.5-flash", &ask("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 429, status, .. } if status == "RESOURCE_EXHAUSTED"),
        "{err}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_millis(10)));
    assert_eq!(generate_calls(&emu), 3);
}

/// A server that asks for a longer wait than the policy allows is not waited for.
#[tokio::test]
async fn a_retry_delay_beyond_the_cap_is_not_waited_for() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::RateLimited { retry_delay: Duration::from_secs(60) },
        count: 1,
    });
    let err = client(&emu, "k1").generate_content("gemini-2.5-flash", &ask("x")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(generate_calls(&emu), 1);
}

/// 4xx other than 429 are never retried: a 403 naming a File, an unknown model.
#[tokio::test]
async fn other_4xx_are_never_retried() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Forbidden { file: Some("abc123".into()), prefixed: true },
        count: 1,
    });
    let gemini = client(&emu, "k1");
    let err = gemini.generate_content("gemini-2.5-flash", &ask("x")).await.unwrap_err();
    assert_eq!(err.inaccessible_file_id(), Some("abc123"), "the files/abc123 form parses");
    let err = gemini.generate_content("not-a-model", &ask("x")).await.unwrap_err();
    assert!(matches!(err, Error::Api { code: 404, .. }));
    assert_eq!(generate_calls(&emu), 2);
}

/// A hung `files.get` times out and is retried; a hung first call does not hang the caller.
#[tokio::test]
async fn a_hang_times_out_and_is_retried() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let file = gemini.upload_bytes(None, "text/plain", Bytes::from_static(b"x")).await.unwrap();
    emu.emulator.inject(Fault {
        route: Route::Get,
        kind: FaultKind::Hang { hang_for: Duration::from_secs(30) },
        count: 1,
    });
    let mut cfg = config(&emu, "k1");
    cfg.timeouts.request = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let got = Client::new(cfg).unwrap().get_file(&file.name).await.unwrap();
    assert_eq!(got.name, file.name);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(requests(&emu, "GET", "/files/").len(), 2);
}

/// A stream whose connection drops after two chunks ends with an `Err` item, not silently.
#[tokio::test]
async fn a_stream_cut_mid_answer_ends_with_an_error() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault { route: Route::Generate, kind: FaultKind::Drop, count: 1 });
    let mut stream = client(&emu, "k1")
        .stream_generate_content("gemini-2.5-flash", &ask("one two three four five six seven"))
        .await
        .unwrap();
    let mut ok = 0;
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                assert!(chunk.finish_reason().is_none(), "no STOP before the cut");
                ok += 1;
            }
            Err(e) => {
                assert!(matches!(e, Error::Transport(_)), "{e}");
                failed = true;
            }
        }
    }
    assert_eq!(ok, 2);
    assert!(failed, "the cut is reported");
}

/// With retries off, the first 503 is the answer.
#[tokio::test]
async fn retries_can_be_turned_off() {
    let emu = emulator(instant()).await;
    emu.emulator.inject(Fault { route: Route::Any, kind: FaultKind::Unavailable, count: 1 });
    let mut cfg = config(&emu, "k1");
    cfg.retry = RetryPolicy::none();
    let err = Client::new(cfg).unwrap().get_file("files/abc").await.unwrap_err();
    assert!(matches!(err, Error::Api { code: 503, .. }));
}
