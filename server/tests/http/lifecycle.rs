//! The file lifecycle through the whole server and the emulator: ownership, expiry from the
//! File's `expirationTime` (`expiry-from-the-file`), re-upload from the retained original
//! (`live-file-used-as-is`, `expired-reupload-once`) or `expired content` without one
//! (`expired-without-original`), dedup (`dedup-by-content`), delete (`delete-untracks`), import
//! (`import-keeps-live-files`), and 403 recovery with one retry at most
//! (`403-names-the-file-both-ways`, `403-retried-once`).

use std::time::Duration;

use app::model::{ChatEvent, FileState, UploadedFile};
use gemini_emulator::{Fault, FaultKind, Route, RunningEmulator};

use crate::common::{
    about, answer, browser, chat_events, emulator, files_under, list_uploads, parley, site, starts,
    upload, upload_as, upload_form, upload_text, Site,
};

fn generates(emulator: &RunningEmulator) -> usize {
    emulator.emulator.request_log().iter().filter(|r| r.path.contains("GenerateContent")).count()
}

/// The request body of the last `generateContent`, as text.
fn last_generate(emulator: &RunningEmulator) -> String {
    emulator
        .emulator
        .request_log()
        .into_iter()
        .rfind(|r| r.path.contains("GenerateContent"))
        .unwrap()
        .json
        .unwrap()
        .to_string()
}

/// The retained originals on disk.
fn originals_on_disk(site: &Site) -> usize {
    files_under(site, "originals/sha256")
}

/// `check_files` for one URI: live?
async fn check(site: &Site, uri: &str) -> bool {
    let res = site
        .client
        .post(format!("{}/api/check_files", site.url))
        .json(&serde_json::json!({"uris": [uri]}))
        .send()
        .await
        .unwrap();
    res.json::<Vec<app::model::FileCheck>>().await.unwrap()[0].live
}

/// `live-file-used-as-is`: a File that is not expired is used as it is: no upload, no `files.get`.
#[tokio::test]
async fn a_live_file_is_used_as_it_is() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let file = upload_text(&site.client, &site.url, "a.txt", "hello").await;
    let events = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    assert!(matches!(events[0], ChatEvent::Delta { .. }), "no notice first: {events:?}");
    assert!(answer(&events).contains(&format!("SHA-256 {}", &file.sha256[..12])));
    assert_eq!(starts(&emulator), 1);
    assert!(
        !emulator
            .emulator
            .request_log()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/files")),
        "the registry answered, not files.get"
    );
}

/// `expired-reupload-once`: an expired File with a retained original is uploaded again — exactly
/// once — and the old URI resolves to the new File from then on; the browser is told old → new.
#[tokio::test]
async fn an_expired_file_is_uploaded_again_from_its_retained_original() {
    let emulator = emulator(Duration::from_secs(2)).await;
    let site = parley(&emulator, &[]).await;
    let file = upload_text(&site.client, &site.url, "notes.txt", "retained bytes").await;
    assert_eq!(originals_on_disk(&site), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        check(&site, &file.uri).await,
        "an import keeps it: the next request replaces it (`import-keeps-live-files`)"
    );

    let events = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    let ChatEvent::Replaced { old_uri, file: new } = &events[0] else { panic!("{events:?}") };
    assert_eq!(old_uri, &file.uri);
    assert_ne!(new.uri, file.uri);
    assert_eq!(
        (new.sha256.as_str(), new.display_name.as_str(), new.size_bytes),
        (file.sha256.as_str(), "notes.txt", 14)
    );
    assert_eq!(starts(&emulator), 2, "one re-upload");
    assert!(last_generate(&emulator).contains(&new.uri));
    assert!(
        answer(&events).contains(&format!("SHA-256 {}", &file.sha256[..12])),
        "the emulator got the same bytes again"
    );

    // The old URI now resolves to the new File, without another upload.
    let again = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    assert!(
        matches!(&again[0], ChatEvent::Replaced { file, .. } if file.uri == new.uri),
        "{again:?}"
    );
    assert_eq!(starts(&emulator), 2);
    let rows = list_uploads(&site.client, &site.url).await;
    assert_eq!(rows.len(), 1, "the replaced record is not listed: {rows:?}");
    assert_eq!(
        (rows[0].uri.as_str(), rows[0].state, rows[0].retained),
        (new.uri.as_str(), FileState::Active, true)
    );
}

/// Concurrent requests needing the same re-upload wait for one (single flight).
#[tokio::test]
async fn concurrent_requests_share_one_reupload() {
    let emulator = emulator(Duration::from_secs(2)).await;
    let site = parley(&emulator, &[]).await;
    let file = upload_text(&site.client, &site.url, "a.txt", "shared").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let body = about(&file.uri);
    let (a, b, c) = tokio::join!(
        chat_events(&site.client, &site.url, &body),
        chat_events(&site.client, &site.url, &body),
        chat_events(&site.client, &site.url, &body)
    );
    let uri = |events: &[ChatEvent]| match &events[0] {
        ChatEvent::Replaced { file, .. } => file.uri.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(uri(&a), uri(&b));
    assert_eq!(uri(&b), uri(&c));
    assert_eq!(starts(&emulator), 2, "one re-upload for three requests");
}

/// `expired-without-original`: without a retained original (`--retain-for 0`) an expired File
/// becomes the text `expired content`, the browser is told, and the request goes on; no bytes stay
/// on disk.
#[tokio::test]
async fn without_a_retained_original_the_part_is_expired_content() {
    let emulator = emulator(Duration::from_secs(2)).await;
    let site = parley(&emulator, &["--retain-for", "0"]).await;
    let file = upload_text(&site.client, &site.url, "a.txt", "not kept").await;
    assert_eq!(originals_on_disk(&site), 0);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(!check(&site, &file.uri).await);
    let events = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    assert_eq!(events[0], ChatEvent::Expired { file_uri: file.uri.clone() });
    assert!(matches!(events.last(), Some(ChatEvent::Done { .. })));
    assert_eq!(starts(&emulator), 1);
    let sent = last_generate(&emulator);
    assert!(sent.contains("expired content") && !sent.contains("fileData"), "{sent}");
    let rows = list_uploads(&site.client, &site.url).await;
    assert_eq!((rows[0].state, rows[0].retained), (FileState::Expired, false));
}

/// `dedup-by-content`: content this session already has `ACTIVE` is not uploaded again; changed
/// content is; another session's identical content is its own upload.
#[tokio::test]
async fn the_same_content_is_uploaded_once_per_session() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let first = upload_text(&site.client, &site.url, "a.txt", "same bytes").await;
    let second = upload_text(&site.client, &site.url, "copy of a.txt", "same bytes").await;
    assert_eq!(second.uri, first.uri);
    assert_eq!(starts(&emulator), 1, "dedup");
    let changed = upload_text(&site.client, &site.url, "a.txt", "same bytes, edited").await;
    assert_ne!(changed.uri, first.uri);
    assert_eq!(starts(&emulator), 2);

    let bobs: UploadedFile = upload_as(
        &site,
        &browser(),
        upload_form("10", "text/plain", "b.txt", b"same bytes".to_vec()),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(bobs.uri, first.uri, "files belong to their session");
    assert_eq!(starts(&emulator), 3);
    assert_eq!(originals_on_disk(&site), 2, "content-addressed: one original per content");
}

/// `delete-untracks`: Delete removes the File upstream, the record, and the retained original
/// unless another record holds that content; the conversation then sends `expired content`.
#[tokio::test]
async fn delete_removes_the_file_upstream_its_record_and_its_original() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let bob = browser();
    let file = upload_text(&site.client, &site.url, "a.txt", "to delete").await;
    let res =
        upload_as(&site, &bob, upload_form("9", "text/plain", "b.txt", b"to delete".to_vec()))
            .await;
    assert_eq!(res.status(), 200);
    let other = upload_text(&site.client, &site.url, "c.txt", "unshared").await;
    assert_eq!(originals_on_disk(&site), 2);

    let delete = |uri: &str| {
        site.client
            .post(format!("{}/api/delete_upload", site.url))
            .json(&serde_json::json!({"uri": uri}))
            .send()
    };
    assert_eq!(delete(&file.uri).await.unwrap().status(), 200);
    assert!(emulator
        .emulator
        .request_log()
        .iter()
        .any(|r| r.method == "DELETE" && file.uri.ends_with(r.path.rsplit('/').next().unwrap())));
    assert_eq!(originals_on_disk(&site), 2, "bob's record still holds that content");
    assert!(list_uploads(&bob, &site.url).await[0].retained);
    assert_eq!(delete(&other.uri).await.unwrap().status(), 200);
    assert_eq!(originals_on_disk(&site), 1, "nobody else held it");
    assert_eq!(list_uploads(&site.client, &site.url).await.len(), 0);
    let events = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    assert_eq!(events[0], ChatEvent::Expired { file_uri: file.uri.clone() });
}

/// A 403 for a File whose original is retained: the File is uploaded again and the request
/// retried once with the new URI — the conversation just works.
#[tokio::test]
async fn a_403_with_a_retained_original_is_answered_by_a_reupload() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &[]).await;
    let file = upload_text(&site.client, &site.url, "a.txt", "hello").await;
    let id = file.name.strip_prefix("files/").unwrap().to_string();
    emulator.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Forbidden { file: Some(id), prefixed: false },
        count: 1,
    });
    let events = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    let ChatEvent::Replaced { file: new, .. } = &events[0] else { panic!("{events:?}") };
    assert!(matches!(events.last(), Some(ChatEvent::Done { .. })));
    assert_eq!((generates(&emulator), starts(&emulator)), (2, 2), "one re-upload, one retry");
    assert!(last_generate(&emulator).contains(&new.uri));
}

/// A 403 naming a File of the conversation: the File becomes `expired content`, the browser
/// is told, and the request goes again exactly once (`403-names-the-file-both-ways`). A 403 that
/// persists is reported with Gemini's words after two calls, never looped (`403-retried-once`).
#[tokio::test]
async fn a_403_for_a_file_of_the_conversation_is_cleaned_up_and_retried_once() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site = parley(&emulator, &["--retain-for", "0"]).await;
    let res = upload(&site, upload_form("5", "text/plain", "a.txt", b"hello".to_vec())).await;
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let id = file.name.strip_prefix("files/").unwrap().to_string();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "and?"}
    ]}]});
    let generates = || {
        emulator
            .emulator
            .request_log()
            .iter()
            .filter(|r| r.path.contains("GenerateContent"))
            .count()
    };
    let chat = || site.client.post(format!("{}/api/chat", site.url)).json(&body).send();

    emulator.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Forbidden { file: Some(id.clone()), prefixed: true },
        count: 1,
    });
    let text = chat().await.unwrap().text().await.unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first, format!(r#"{{"type":"expired","file_uri":"{}"}}"#, file.uri));
    assert!(text.contains(r#""type":"done""#), "{text}");
    assert_eq!(generates(), 2, "exactly one retry");
    let retried = emulator
        .emulator
        .request_log()
        .into_iter()
        .rfind(|r| r.path.contains("GenerateContent"))
        .unwrap();
    let sent = retried.json.unwrap().to_string();
    assert!(sent.contains("expired content") && !sent.contains("fileData"), "{sent}");

    // A second File, refused for good: two calls, then Gemini's words.
    let res = upload(&site, upload_form("5", "text/plain", "b.txt", b"world".to_vec())).await;
    let second: app::model::UploadedFile = res.json().await.unwrap();
    let second_id = second.name.strip_prefix("files/").unwrap().to_string();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": second.uri}}, {"text": "and?"}
    ]}]});
    let chat = || site.client.post(format!("{}/api/chat", site.url)).json(&body).send();
    emulator.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Forbidden { file: Some(second_id), prefixed: false },
        count: 2,
    });
    let res = chat().await.unwrap();
    assert_eq!(res.status(), 502);
    let error = res.text().await.unwrap();
    assert!(error.contains("You do not have permission to access the File"), "{error}");
    assert_eq!(generates(), 4, "two calls, no loop");

    emulator.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::Forbidden { file: Some("notinthechat".into()), prefixed: false },
        count: 1,
    });
    let res = chat().await.unwrap();
    assert_eq!(res.status(), 502);
    assert!(res.text().await.unwrap().contains("access the File notinthechat"));
    assert_eq!(generates(), 5, "a File the conversation does not hold is not retried");
}

/// Files belong to the browser session that uploaded them: another session can neither use,
/// check, list nor delete them (its request carries `expired content` instead).
#[tokio::test]
async fn a_session_can_only_use_its_own_files() {
    let site = site(&[]).await;
    let res = upload(&site, upload_form("5", "text/plain", "mine.txt", b"alice".to_vec())).await;
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "what is it?"}
    ]}]});
    let post = |client: &reqwest::Client, path: &str, body: serde_json::Value| {
        client.post(format!("{}/api/{path}", site.url)).json(&body).send()
    };
    let alice = &site.client;
    let bob = browser();

    let mine = post(alice, "chat", body.clone()).await.unwrap().text().await.unwrap();
    assert!(
        mine.contains("text/plain, 5 bytes") && !mine.contains(r#""type":"expired""#),
        "{mine}"
    );
    let theirs = post(&bob, "chat", body.clone()).await.unwrap().text().await.unwrap();
    assert!(
        theirs.starts_with(r#"{"type":"expired""#) && theirs.contains("I received no "),
        "{theirs}"
    );

    let check = serde_json::json!({"uris": [file.uri]});
    let live =
        |text: String| serde_json::from_str::<Vec<app::model::FileCheck>>(&text).unwrap()[0].live;
    assert!(live(post(alice, "check_files", check.clone()).await.unwrap().text().await.unwrap()));
    assert!(!live(post(&bob, "check_files", check.clone()).await.unwrap().text().await.unwrap()));

    let list = |text: String| serde_json::from_str::<Vec<app::model::UploadRecord>>(&text).unwrap();
    assert_eq!(
        list(
            post(&bob, "list_uploads", serde_json::json!({})).await.unwrap().text().await.unwrap()
        )
        .len(),
        0
    );
    let alices = list(
        post(alice, "list_uploads", serde_json::json!({})).await.unwrap().text().await.unwrap(),
    );
    assert_eq!(
        (alices.len(), alices[0].display_name.as_str(), alices[0].state),
        (1, "mine.txt", FileState::Active)
    );

    let delete = serde_json::json!({"uri": file.uri});
    assert_eq!(post(&bob, "delete_upload", delete.clone()).await.unwrap().status(), 404);
    assert_eq!(post(alice, "delete_upload", delete).await.unwrap().status(), 200);
    assert!(list(
        post(alice, "list_uploads", serde_json::json!({})).await.unwrap().text().await.unwrap()
    )
    .is_empty());
    let after = post(alice, "chat", body).await.unwrap().text().await.unwrap();
    assert!(
        after.starts_with(r#"{"type":"expired""#),
        "a deleted upload is expired content: {after}"
    );
}

/// Expiry is read from the File's `expirationTime` minus the margin, not from a local guess
/// (`expiry-from-the-file`): with a margin longer than Gemini's 48 h, a fresh File already counts
/// as expired.
#[tokio::test]
async fn expiry_counts_from_the_files_expiration_time_minus_the_margin() {
    let site = site(&["--expiry-margin", "49h", "--retain-for", "0"]).await;
    let res = upload(&site, upload_form("3", "text/plain", "a.txt", b"abc".to_vec())).await;
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "still there?"}
    ]}]});
    let text = site
        .client
        .post(format!("{}/api/chat", site.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with(r#"{"type":"expired""#), "{text}");
    let rows: Vec<app::model::UploadRecord> = site
        .client
        .post(format!("{}/api/list_uploads", site.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows[0].state, FileState::Expired);
}
