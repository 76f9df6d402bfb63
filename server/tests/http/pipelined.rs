//! Uploads relayed while they arrive: the browser's `find_upload` before sending, a declared
//! SHA-256 (dedup with nothing read; a mismatch refused and its upstream upload cancelled),
//! and dedup of undeclared content found only at the end (cancelled before finalize).

use app::model::UploadedFile;
use gemini_emulator::RunningEmulator;
use reqwest::multipart::{Form, Part};
use sha2::{Digest, Sha256};

use crate::common::{browser, emulator, list_uploads, parley, starts, upload, Site};

const MIB: usize = 1024 * 1024;

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 9 MiB of video-looking bytes (two chunks), different per `seed`.
fn nine_mib(seed: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..9 * MIB).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
    bytes[..12].copy_from_slice(b"\0\0\0\x18ftypmp42");
    bytes
}

fn form(bytes: Vec<u8>, sha256: Option<&str>) -> Form {
    let mut form = Form::new()
        .text("size", bytes.len().to_string())
        .text("mime_type", "video/mp4")
        .text("name", "clip.mp4");
    if let Some(sha) = sha256 {
        form = form.text("sha256", sha.to_string());
    }
    form.part("file", Part::bytes(bytes).file_name("clip.mp4"))
}

fn commands(emulator: &RunningEmulator, command: &str) -> usize {
    emulator
        .emulator
        .request_log()
        .iter()
        .filter(|r| r.upload_command.as_deref() == Some(command))
        .count()
}

async fn find_upload(site: &Site, sha256: &str) -> reqwest::Response {
    find_upload_as(&site.client, site, sha256).await
}

async fn find_upload_as(client: &reqwest::Client, site: &Site, sha256: &str) -> reqwest::Response {
    client
        .post(format!("{}/api/find_upload", site.url))
        .json(&serde_json::json!({ "sha256": sha256 }))
        .send()
        .await
        .unwrap()
}

/// Bytes the emulator received in upload chunks.
fn bytes_uploaded(emulator: &RunningEmulator) -> usize {
    emulator
        .emulator
        .request_log()
        .iter()
        .filter(|r| r.upload_offset.is_some())
        .map(|r| r.body_bytes)
        .sum()
}

/// `find_upload` finds this session's `ACTIVE` content and only that; an upload declaring that
/// SHA-256 is answered with the File at once, nothing sent upstream.
#[tokio::test]
async fn content_already_active_is_found_before_sending() {
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let bytes = nine_mib(1);
    let sha = sha_hex(&bytes);
    assert_eq!(find_upload(&site, &sha).await.json::<Option<UploadedFile>>().await.unwrap(), None);
    let first: UploadedFile =
        upload(&site, form(bytes.clone(), Some(&sha))).await.json().await.unwrap();
    assert_eq!(first.sha256, sha);
    let sent = bytes_uploaded(&emulator);
    assert_eq!(sent, bytes.len());

    let found: Option<UploadedFile> =
        find_upload(&site, &sha.to_uppercase()).await.json().await.unwrap();
    assert_eq!(found.map(|f| f.uri), Some(first.uri.clone()));
    let again: UploadedFile =
        upload(&site, form(bytes.clone(), Some(&sha))).await.json().await.unwrap();
    assert_eq!(again.uri, first.uri);
    assert_eq!((starts(&emulator), bytes_uploaded(&emulator)), (1, sent), "nothing sent upstream");

    let theirs: Option<UploadedFile> =
        find_upload_as(&browser(), &site, &sha).await.json().await.unwrap();
    assert_eq!(theirs, None, "another session's Files are not found");
    for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
        assert_eq!(find_upload(&site, bad).await.status(), 400, "{bad:?}");
    }
}

/// Bytes that are not the SHA-256 declared: refused (400, saying so), the upstream upload
/// cancelled before finalize, no File (never finalized), no record, nothing retained.
#[tokio::test]
async fn a_sha256_mismatch_is_refused_and_cancelled_upstream() {
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let bytes = nine_mib(2);
    let res = upload(&site, form(bytes, Some(&sha_hex(b"something else")))).await;
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("SHA-256"), "{body}");
    assert_eq!(starts(&emulator), 1, "the upload was under way");
    assert_eq!(commands(&emulator, "cancel"), 1);
    assert_eq!(commands(&emulator, "upload, finalize"), 0);
    assert!(list_uploads(&site.client, &site.url).await.is_empty());
    assert_eq!(crate::common::files_under(&site, "originals"), 0, "nothing retained or staged");
}

/// Undeclared content this session already has: found at the end of the body, the second
/// upload cancelled before finalize and answered with the first File.
#[tokio::test]
async fn undeclared_duplicate_content_is_cancelled_before_finalize() {
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let bytes = nine_mib(3);
    let first: UploadedFile = upload(&site, form(bytes.clone(), None)).await.json().await.unwrap();
    let second: UploadedFile = upload(&site, form(bytes, None)).await.json().await.unwrap();
    assert_eq!(second.uri, first.uri);
    assert_eq!(commands(&emulator, "cancel"), 1);
    assert_eq!(commands(&emulator, "upload, finalize"), 1);
}

/// With no relay memory (`--relay-memory 0`) uploads are stored whole, then sent: the same
/// answers, and what is refused or already there never reaches Gemini at all.
#[tokio::test]
async fn without_relay_memory_uploads_are_stored_then_sent() {
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &["--relay-memory", "0"]).await;
    let bytes = nine_mib(4);
    let sha = sha_hex(&bytes);
    let res = upload(&site, form(bytes.clone(), Some(&sha_hex(b"not these bytes")))).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("SHA-256"));
    assert_eq!(starts(&emulator), 0, "refused before any upstream call");
    let first: UploadedFile = upload(&site, form(bytes.clone(), None)).await.json().await.unwrap();
    assert_eq!(first.sha256, sha);
    assert_eq!(bytes_uploaded(&emulator), bytes.len());
    let again: UploadedFile = upload(&site, form(bytes, None)).await.json().await.unwrap();
    assert_eq!(again.uri, first.uri);
    assert_eq!(starts(&emulator), 1, "the duplicate is found before any upstream call");
    assert_eq!(commands(&emulator, "cancel"), 0);
}
