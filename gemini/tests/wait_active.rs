//! Behavioural cases `wait-active`…`lenient-states` and `over-2-gib-refused` (`docs/behaviour.md`,
//! from pollux's and llmring's suites) against the emulator over loopback HTTP.

mod common;

use std::time::Duration;

use common::{client, emulator, fast_polls, TempFile};
use gemini::{Error, FileState, PollPolicy, UploadOptions};
use gemini_emulator::testing::requests;
use gemini_emulator::{EmulatorConfig, Fault, FaultKind, Route};

fn options(poll: PollPolicy) -> UploadOptions {
    UploadOptions { poll, ..UploadOptions::default() }
}

/// `wait-active`: upload, then `get` says ACTIVE → the result has id, uri and state ACTIVE.
#[tokio::test]
async fn upload_and_wait_active_returns_an_active_file() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_millis(150),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let file = TempFile::new("notes.txt", b"some notes");
    let result = gemini.upload_and_wait_active(&file.0, &options(fast_polls())).await.unwrap();
    assert_eq!(result.state, FileState::Active);
    assert_eq!(result.id.len(), 12);
    assert!(
        result.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{}",
        result.id
    );
    assert_eq!(result.uri, format!("{}/v1beta/files/{}", emu.base_url(), result.id));
    assert_eq!(result.file.mime_type, "text/plain", "guessed from the extension");
    assert_eq!(result.file.display_name.as_deref(), Some("notes.txt"));
    assert!(!requests(&emu, "GET", "/files/").is_empty(), "it polled files.get");
}

/// `processing-timeout`: a File that never leaves PROCESSING → a timeout error after `timeout`.
#[tokio::test]
async fn never_active_is_a_timeout() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(600),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let file = TempFile::new("clip.txt", b"slow");
    let policy = PollPolicy { timeout: Duration::from_millis(400), ..fast_polls() };
    let started = std::time::Instant::now();
    let err =
        client(&emu, "k1").upload_and_wait_active(&file.0, &options(policy)).await.unwrap_err();
    assert!(
        matches!(err, Error::NotActiveInTime { waited, .. } if waited >= Duration::from_millis(400)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(requests(&emu, "DELETE", "").is_empty(), "cleanup_on_timeout is off by default");
}

/// `failed-is-not-a-timeout`: FAILED with `error.message` → a failed error with state and details,
/// never a timeout.
#[tokio::test]
async fn failed_carries_state_and_details() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(600),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let uploaded = gemini
        .upload_bytes(None, "video/mp4", bytes::Bytes::from_static(b"not a video"))
        .await
        .unwrap();
    assert!(emu.emulator.fail_file(&uploaded.name, "Virus scan failed"));
    let err = gemini.wait_active(uploaded, &fast_polls()).await.unwrap_err();
    match err {
        Error::UploadFailed { state, details, .. } => {
            assert_eq!(state, FileState::Failed);
            assert_eq!(details.as_deref(), Some("Virus scan failed"));
        }
        other => panic!("expected UploadFailed, got {other}"),
    }
}

/// `cleanup-once`: `cleanup_on_timeout` → exactly one DELETE of that File, on timeout and on
/// FAILED.
#[tokio::test]
async fn cleanup_deletes_exactly_once() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(600),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let policy = PollPolicy {
        timeout: Duration::from_millis(200),
        cleanup_on_timeout: true,
        ..fast_polls()
    };

    let slow =
        gemini.upload_bytes(None, "text/plain", bytes::Bytes::from_static(b"a")).await.unwrap();
    assert!(matches!(
        gemini.wait_active(slow.clone(), &policy).await,
        Err(Error::NotActiveInTime { .. })
    ));
    let failing =
        gemini.upload_bytes(None, "text/plain", bytes::Bytes::from_static(b"b")).await.unwrap();
    emu.emulator.fail_file(failing.id(), "bad");
    assert!(matches!(
        gemini.wait_active(failing.clone(), &policy).await,
        Err(Error::UploadFailed { .. })
    ));

    for file in [&slow, &failing] {
        let deletes = requests(&emu, "DELETE", &format!("/files/{}", file.id()));
        assert_eq!(deletes.len(), 1, "one DELETE of {}", file.name);
        assert!(
            gemini.get_file(&file.name).await.unwrap_err().inaccessible_file_id().is_some(),
            "it is gone"
        );
    }
}

/// `poll-interval-clamped`: a zero poll interval is clamped: sleeps are ≥ 10 ms, so a 300 ms wait
/// costs at most ~30 GETs, not thousands; no jitter when it is disabled.
#[tokio::test]
async fn zero_poll_interval_is_clamped() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_millis(300),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let policy = PollPolicy {
        poll: Duration::ZERO,
        max_poll: Duration::ZERO,
        backoff_factor: 0.0,
        jitter: Duration::ZERO,
        ..PollPolicy::default()
    };
    assert!(policy.delays().take(50).all(|d| d == gemini::MIN_DELAY));
    assert_eq!(policy.jittered(Duration::from_millis(10)), Duration::from_millis(10));
    let file =
        gemini.upload_bytes(None, "text/plain", bytes::Bytes::from_static(b"x")).await.unwrap();
    gemini.wait_active(file, &policy).await.unwrap();
    let gets = requests(&emu, "GET", "/files/").len();
    assert!((1..=32).contains(&gets), "{gets} GETs in ~300 ms");
}

/// `no-name-no-polling`: a finalize answer whose File has neither name nor uri → a hard error, and
/// no polling starts.
#[tokio::test]
async fn a_file_without_name_or_uri_stops_everything() {
    let emu = emulator(EmulatorConfig::default()).await;
    emu.emulator.inject(Fault { route: Route::Chunk, kind: FaultKind::Malformed, count: 1 });
    let file = TempFile::new("a.txt", b"abc");
    let err = client(&emu, "k1")
        .upload_and_wait_active(&file.0, &options(fast_polls()))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Protocol(m) if m.contains("neither name nor uri")), "{err}");
    assert!(requests(&emu, "GET", "").is_empty(), "no polling");
}

/// `credentials-before-network` (network half): a key the emulator does not accept is a typed API
/// error; a missing key never reaches the network (see `credentials.rs` for the precedence).
#[tokio::test]
async fn a_wrong_key_is_a_typed_error() {
    let emu =
        emulator(EmulatorConfig { api_key: Some("right".into()), ..Default::default() }).await;
    let err = client(&emu, "wrong").get_file("files/abc").await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, message, .. } if message.starts_with("API key not valid")),
        "{err}"
    );
}

/// `missing-file-before-network`: a missing local file → a not-found error before any network call.
#[tokio::test]
async fn a_missing_file_fails_before_the_network() {
    let emu = emulator(EmulatorConfig::default()).await;
    let err = client(&emu, "k1")
        .upload_and_wait_active("/no/such/file.pdf", &UploadOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::FileNotFound { path } if path.ends_with("file.pdf")), "{err}");
    assert!(emu.emulator.request_log().is_empty());
}

/// `lenient-states`: state strings spelled as SDK enums (`FileState.ACTIVE`) are accepted as
/// ACTIVE.
#[tokio::test]
async fn enum_like_states_count_as_active() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_millis(100),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    emu.emulator.inject(Fault { route: Route::Get, kind: FaultKind::StateAlias, count: 100 });
    let file = TempFile::new("a.md", b"# title");
    let result =
        client(&emu, "k1").upload_and_wait_active(&file.0, &options(fast_polls())).await.unwrap();
    assert_eq!(result.state, FileState::Active);
}

/// `over-2-gib-refused`: over 2 GB → a size error before any upload. The file is sparse: 2 GiB + 1
/// byte of length costs no disk.
#[tokio::test]
async fn over_two_gigabytes_is_refused_before_the_network() {
    let emu = emulator(EmulatorConfig::default()).await;
    let file = TempFile::new("huge.mp4", b"");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_len(gemini::MAX_FILE_BYTES + 1)
        .unwrap();
    let err = client(&emu, "k1")
        .upload_and_wait_active(&file.0, &UploadOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, limit } if size == limit + 1 && limit == 2_147_483_648),
        "{err}"
    );
    assert!(emu.emulator.request_log().is_empty());
}

/// Zero-byte files upload with one `upload, finalize` of no bytes.
#[tokio::test]
async fn zero_byte_files_upload() {
    let emu = emulator(EmulatorConfig { processing: Duration::ZERO, ..Default::default() }).await;
    let file = TempFile::new("empty.txt", b"");
    let result =
        client(&emu, "k1").upload_and_wait_active(&file.0, &options(fast_polls())).await.unwrap();
    assert_eq!(result.file.size_bytes, 0);
    let chunks = requests(&emu, "POST", "upload");
    assert_eq!(chunks.last().unwrap().upload_command.as_deref(), Some("upload, finalize"));
    assert_eq!(chunks.last().unwrap().body_bytes, 0);
}

/// list follows every page; get and delete work by name, id or uri.
#[tokio::test]
async fn list_get_delete() {
    let emu = emulator(EmulatorConfig { processing: Duration::ZERO, ..Default::default() }).await;
    let gemini = client(&emu, "k1");
    let mut names = Vec::new();
    for i in 0..23 {
        let f = gemini
            .upload_bytes(
                Some(format!("f{i}")),
                "text/plain",
                bytes::Bytes::from(vec![b'a'; i + 1]),
            )
            .await
            .unwrap();
        names.push(f.name);
    }
    client(&emu, "someone-else")
        .upload_bytes(None, "text/plain", bytes::Bytes::from_static(b"not mine"))
        .await
        .unwrap();
    let first = gemini.list_files(Some(10), None).await.unwrap();
    assert_eq!(first.files.len(), 10);
    assert!(first.next_page_token.is_some());
    let default_page = gemini.list_files(None, None).await.unwrap();
    assert_eq!(default_page.files.len(), 10, "pageSize defaults to 10");
    let all = gemini.list_all_files().await.unwrap();
    assert_eq!(
        all.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        names,
        "all 23, oldest first, only mine"
    );

    let victim = &all[3];
    assert_eq!(gemini.get_file(&victim.uri).await.unwrap().name, victim.name);
    gemini.delete_file(victim.id()).await.unwrap();
    assert_eq!(gemini.list_all_files().await.unwrap().len(), 22);
    assert!(gemini.delete_file(&victim.name).await.unwrap_err().inaccessible_file_id().is_some());
}
