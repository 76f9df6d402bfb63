//! Several replicas: real `parley` processes sharing one PostgreSQL database, one S3 bucket
//! (both started by `scripts/test.sh`) and one Gemini emulator (in this test process), with no
//! sticky sessions — one browser's requests go to whichever replica. What must hold: a cookie
//! and a File of one replica are good on the other, an expired File is uploaded again once
//! for both, the upload-bytes quota is shared, start-up migrates once and refuses without the
//! shared session secret, a restart leaves another replica's upload alone, a replica killed
//! mid-upload or mid-answer loses nothing the other cannot redo, one started before its
//! database waits for it, and a link revoked through one is gone through the other.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use app::model::{ChatEvent, UploadedFile};
use common::*;
use gemini_emulator::RunningEmulator;
use reqwest::multipart::{Form, Part};

/// The session secret every replica shares.
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// What the replicas of one test share: a fresh database and an S3 prefix of its own.
struct Shared {
    database_url: String,
    originals_url: String,
    /// The S3 bucket and the prefix in it.
    bucket: String,
    prefix: String,
}

/// A fresh database and S3 prefix; `None` (the test is skipped, with a note) when the test
/// services are not there, unless `PARLEY_TEST_REQUIRE_SERVICES` is set.
async fn shared(name: &str) -> Option<Shared> {
    let (_admin, _database, database_url) = fresh_postgres(name).await?;
    let bucket = test_service("PARLEY_TEST_S3_BUCKET")?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let prefix = format!("replicas/{name}-{nanos:08x}");
    let originals_url = format!("s3://{bucket}/{prefix}");
    Some(Shared { database_url, originals_url, bucket, prefix })
}

/// A `parley` process on `emulator` with the shared stores and `extra` flags.
async fn replica(emulator: &RunningEmulator, shared: &Shared, extra: &[&str]) -> Process {
    let base = emulator.base_url();
    let mut args = on_emulator(&base, "k");
    args.extend([
        "--database-url",
        &shared.database_url,
        "--originals-url",
        &shared.originals_url,
        "--session-secret",
        SECRET,
    ]);
    args.extend_from_slice(extra);
    Process::launch(&args, None).await
}

/// Every key under the test's S3 prefix.
async fn s3_keys(shared: &Shared) -> Vec<String> {
    let endpoint = std::env::var("AWS_ENDPOINT").unwrap();
    let listing =
        reqwest::get(format!("{endpoint}/{}?list-type=2&prefix={}/", shared.bucket, shared.prefix))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    listing
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(String::from)
        .collect()
}

/// An upload form without `Content-Length` (chunked) declaring `size` bytes, whose file part
/// starts with `first`; what is sent on the returned channel follows, and dropping it ends
/// the body.
fn trickled_form(
    size: usize,
    first: Vec<u8>,
) -> (Form, futures::channel::mpsc::Sender<Result<Vec<u8>, std::io::Error>>) {
    let (tx, rx) = futures::channel::mpsc::channel(4);
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(first) });
    let body = reqwest::Body::wrap_stream(futures::StreamExt::chain(head, rx));
    // Audio, not text: 12 MiB of text would be 3.1 million tokens, past every model's input
    // limit, and Gemini refuses such a prompt.
    let part = Part::stream(body).file_name("big.mp3");
    let form = Form::new()
        .text("size", size.to_string())
        .text("mime_type", "audio/mpeg")
        .text("name", "big.mp3")
        .part("file", part);
    (form, tx)
}

/// Upload via A, chat via B (one browser, one cookie); then, 49 hours later by the emulator's
/// clock, chats on A and B at once about the expired File: one re-upload between them, read
/// from S3, and both answers describe the same bytes. No original lands on either local disk.
#[tokio::test]
async fn a_file_uploaded_through_one_replica_lives_on_through_both() {
    let Some(shared) = shared("lives").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let (a, b) = tokio::join!(replica(&emulator, &shared, &[]), replica(&emulator, &shared, &[]));
    let browser = browser();
    let file = upload_text(&browser, &a.url, "notes.txt", "bytes kept in S3").await;
    let sha = format!("SHA-256 {}", &file.sha256[..12]);
    let events = chat_events(&browser, &b.url, &about(&file.uri)).await;
    assert!(answer(&events).contains(&sha), "B uses A's File: {events:?}");
    let keys = s3_keys(&shared).await;
    assert!(
        keys.iter().any(|k| k.ends_with(&format!("sha256/{}/{}", &file.sha256[..2], file.sha256))),
        "{keys:?}"
    );
    assert_eq!(starts(&emulator), 1);

    emulator.emulator.advance_clock(Duration::from_secs(49 * 3600));
    let body = about(&file.uri);
    let (on_a, on_b) =
        tokio::join!(chat_events(&browser, &a.url, &body), chat_events(&browser, &b.url, &body));
    for events in [&on_a, &on_b] {
        assert!(answer(events).contains(&sha), "the same bytes again: {events:?}");
        assert!(
            matches!(&events[0], ChatEvent::Replaced { old_uri, .. } if old_uri == &file.uri),
            "{events:?}"
        );
    }
    assert_eq!(starts(&emulator), 2, "one re-upload for both replicas");
    let listed = list_uploads(&browser, &b.url).await;
    assert_eq!(listed.len(), 1, "one ACTIVE record, not two: {listed:?}");
    assert_eq!((listed[0].state, listed[0].retained), (app::model::FileState::Active, true));
}

/// The upload-bytes quota counts what reaches either replica (3 MiB an hour: 2 MiB through A,
/// then 2 MiB through B is over it), with and without `Content-Length`.
#[tokio::test]
async fn the_upload_bytes_quota_is_shared() {
    let Some(shared) = shared("quota").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let quota = ["--upload-bytes-per-hour", "3MiB"];
    let (a, b) =
        tokio::join!(replica(&emulator, &shared, &quota), replica(&emulator, &shared, &quota));
    let browser = browser();
    let two_mib = |fill: u8| upload_form("2097152", "text/plain", "a.txt", vec![fill; 2 << 20]);
    let first = browser.post(format!("{}/api/upload_file", a.url)).multipart(two_mib(b'a'));
    assert_eq!(first.send().await.unwrap().status(), 200);
    let second = browser.post(format!("{}/api/upload_file", b.url)).multipart(two_mib(b'b'));
    let refused = second.send().await.unwrap();
    assert_eq!(refused.status(), 429, "B counts what A took");
    assert!(refused.headers().contains_key(reqwest::header::RETRY_AFTER));
    // Chunked (no Content-Length), from new browsers at the same address, through either: the
    // address's quota (four times the session's) counts every byte that reached either.
    // (A took 3 MiB of the address's 12: the multipart body is a little over 2 MiB.)
    for (fill, site, expected) in
        [(b'c', &b, 200), (b'd', &a, 200), (b'e', &b, 200), (b'f', &a, 200), (b'g', &b, 429)]
    {
        let (form, tx) = trickled_form(2 << 20, vec![fill; 2 << 20]);
        drop(tx);
        let res =
            common::browser().post(format!("{}/api/upload_file", site.url)).multipart(form).send();
        assert_eq!(res.await.unwrap().status(), expected, "upload {}", fill as char);
    }
}

/// Replicas starting together on an empty database apply each migration once and both serve;
/// one started without the shared session secret refuses to start and names the variable.
#[tokio::test]
async fn start_up_migrates_once_and_needs_the_session_secret() {
    let Some(shared) = shared("startup").await else { return };
    let url = shared.database_url.clone();
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let (a, b) = tokio::join!(replica(&emulator, &shared, &[]), replica(&emulator, &shared, &[]));
    for site in [&a, &b] {
        assert_eq!(reqwest::get(format!("{}/readyz", site.url)).await.unwrap().status(), 200);
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client.query("SELECT version FROM parley_migrations ORDER BY version", &[]).await;
    let versions: Vec<i32> = rows.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    let base = emulator.base_url();
    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_parley"));
    refused
        .args(["--listen", "127.0.0.1:0", "--gemini-api-key", "k", "--gemini-base-url", &base])
        .args(["--database-url", &url])
        .env_remove("PARLEY_SESSION_SECRET");
    let out = tokio::task::spawn_blocking(move || refused.output()).await.unwrap().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("PARLEY_SESSION_SECRET"), "{said}");
}

/// A replica started before its database can be reached waits for it instead of exiting —
/// `/healthz` 200, `/readyz` 503 `{"database": "waiting"}`, a page 503 with `Retry-After` —
/// and serves once it answers, without a restart. Stopped (SIGTERM) while it waits, it exits
/// at once with status 0.
#[tokio::test]
async fn a_replica_started_before_its_database_waits_for_it() {
    let Some(shared) = shared("waiting").await else { return };
    let real = url::Url::parse(&shared.database_url).unwrap();
    let target = format!("{}:{}", real.host_str().unwrap(), real.port().unwrap());
    let port = free_port();
    let later = Shared { database_url: with_port(&real, port), ..shared };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = replica(&emulator, &later, &[]).await;

    let ready = reqwest::get(format!("{}/readyz", site.url)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["database"], "waiting");
    let page = reqwest::get(format!("{}/", site.url)).await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "5");

    // The database comes up at that port (a forwarder to the real one).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let mut status = 0;
    for _ in 0..300 {
        status = reqwest::get(format!("{}/readyz", site.url)).await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the replica never saw its database");
    let page = reqwest::get(format!("{}/", site.url)).await.unwrap();
    assert_eq!(page.status(), 200);

    // Another one, stopped while it waits: SIGTERM ends it at once, cleanly.
    let never = Shared { database_url: with_port(&real, free_port()), ..later };
    let mut stopped = replica(&emulator, &never, &[]).await;
    let pid = stopped.child.id().to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = stopped.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "SIGTERM did not stop it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
}

/// `url` with its port replaced.
fn with_port(url: &url::Url, port: u16) -> String {
    let mut url = url.clone();
    url.set_port(Some(port)).unwrap();
    url.to_string()
}

/// B restarting (its start-up tidies staging) while A receives an upload leaves A's upload
/// alone: it completes, and its answer names the right bytes.
#[tokio::test]
async fn a_restart_leaves_another_replicas_upload_alone() {
    let Some(shared) = shared("restart").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let (a, mut b) =
        tokio::join!(replica(&emulator, &shared, &[]), replica(&emulator, &shared, &[]));
    let browser = browser();
    // 12 MiB: two 5 MiB parts reach S3 while the rest is still on its way.
    let size = 12 << 20;
    let bytes: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let (form, mut tx) = trickled_form(size, bytes[..size / 2].to_vec());
    let upload = tokio::spawn({
        let (browser, url) = (browser.clone(), a.url.clone());
        async move { browser.post(format!("{url}/api/upload_file")).multipart(form).send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.kill();
    let b = replica(&emulator, &shared, &[]).await;
    futures::SinkExt::send(&mut tx, Ok(bytes[size / 2..].to_vec())).await.unwrap();
    drop(tx);
    let res = upload.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    let file: UploadedFile = res.json().await.unwrap();
    use sha2::Digest;
    assert_eq!(file.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    let events = chat_events(&browser, &b.url, &about(&file.uri)).await;
    assert!(answer(&events).contains(&file.sha256[..12]), "{events:?}");
}

/// A replica killed (SIGKILL) in the middle of an upload, and in the middle of an answer:
/// the browser's Retry through the other replica succeeds, and no duplicate record is left.
#[tokio::test]
async fn a_replica_killed_mid_upload_or_mid_answer_loses_nothing() {
    let Some(shared) = shared("killed").await else { return };
    let emulator = gemini_emulator::testing::spawn_local(gemini_emulator::EmulatorConfig {
        chunk_delay: Duration::from_millis(200),
        ..gemini_emulator::testing::instant()
    })
    .await;
    let (mut a, b) =
        tokio::join!(replica(&emulator, &shared, &[]), replica(&emulator, &shared, &[]));
    let browser = browser();
    let bytes = vec![b'k'; 1 << 20];
    let (form, tx) = trickled_form(bytes.len(), bytes[..1000].to_vec());
    let cut = tokio::spawn({
        let (browser, url) = (browser.clone(), a.url.clone());
        async move { browser.post(format!("{url}/api/upload_file")).multipart(form).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    drop(tx);
    assert!(cut.await.unwrap().is_err(), "the upload through A was cut off");
    let retry = upload_form("1048576", "text/plain", "big.txt", bytes.clone());
    let res = browser.post(format!("{}/api/upload_file", b.url)).multipart(retry).send().await;
    let file: UploadedFile = res.unwrap().json().await.unwrap();
    assert_eq!(list_uploads(&browser, &b.url).await.len(), 1, "one record");

    // An answer cut off by A's death: Retry through B answers whole.
    let mut a = replica(&emulator, &shared, &[]).await;
    let res = browser.post(format!("{}/api/chat", a.url)).json(&about(&file.uri)).send();
    let mut stream = res.await.unwrap().bytes_stream();
    let first = futures::StreamExt::next(&mut stream).await.unwrap().unwrap();
    assert!(!first.is_empty());
    a.kill();
    while let Some(Ok(_)) = futures::StreamExt::next(&mut stream).await {}
    let events = chat_events(&browser, &b.url, &about(&file.uri)).await;
    assert!(matches!(events.last(), Some(ChatEvent::Done { .. })), "{events:?}");
    assert!(answer(&events).contains(&file.sha256[..12]));
    assert_eq!(list_uploads(&browser, &b.url).await.len(), 1, "still one record");
}

#[tokio::test]
async fn a_budget_holds_across_replicas() {
    let Some(shared) = shared("budget").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let budget = ["--budget-anonymous", "1000 tokens/day"];
    let (a, b) =
        (replica(&emulator, &shared, &budget).await, replica(&emulator, &shared, &budget).await);
    let browser = browser();
    let res = browser.post(format!("{}/api/site_info", a.url)).send().await.unwrap();
    assert_eq!(res.status(), 200, "a session first");
    let body =
        serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]});
    // Eight chats at once of one session, half on each replica, against a budget that pays
    // for a few: whatever each replica decides, the session never spends past it.
    let chats = (0..8).map(|i| {
        let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
        let (browser, body) = (browser.clone(), body.clone());
        async move {
            let res = browser.post(format!("{url}/api/chat")).json(&body).send().await.unwrap();
            let status = res.status().as_u16();
            let _ = res.text().await;
            status
        }
    });
    let statuses = futures::future::join_all(chats).await;
    assert!(statuses.contains(&200) && statuses.contains(&429), "{statuses:?}");
    let (client, connection) =
        tokio_postgres::connect(&shared.database_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let spent: i64 = client
        .query_one(
            "SELECT CAST(COALESCE(SUM(prompt_tokens + output_tokens + thinking_tokens \
             + cache_write_tokens), 0) AS BIGINT) FROM usage_days WHERE scope LIKE 'session:%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!((1..=1000).contains(&spent), "{spent} of 1000 tokens");
    let calls: i64 = client
        .query_one("SELECT CAST(SUM(calls) AS BIGINT) FROM usage_days WHERE scope = 'site'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(calls as usize, statuses.iter().filter(|s| **s == 200).count(), "one row each");
}

/// A link made through one replica opens through the other, and revoked through the first it
/// is 410 through the second at once (read from the database on every request, never cached).
#[tokio::test]
async fn a_link_revoked_on_one_replica_is_gone_on_the_other() {
    let Some(shared) = shared("shares").await else { return };
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let (a, b) = tokio::join!(replica(&emulator, &shared, &[]), replica(&emulator, &shared, &[]));
    let sharer = browser();
    let export = serde_json::json!({"version": "1.2", "conversation": [
        {"role": "user", "parts": [{"text": "Across replicas"}]},
        {"role": "model", "parts": [{"text": "Both see it."}]}]});
    let create = serde_json::json!({"request": {"conversation": "c1", "title": "Across replicas",
        "export": export.to_string(), "include_images": false, "link_preview": false}});
    let res = sharer.post(format!("{}/api/share_create", a.url)).json(&create).send().await;
    let link: app::share::SharedLink = res.unwrap().json().await.unwrap();
    let on_b = format!("{}{}", b.url, link.path());
    let page = reqwest::get(&on_b).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Both see it."));

    let revoke = serde_json::json!({"token": link.token});
    let res = sharer.post(format!("{}/api/share_revoke", a.url)).json(&revoke).send().await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(reqwest::get(&on_b).await.unwrap().status(), 410);
}
