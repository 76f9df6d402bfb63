//! The `gemini` client against the real emulator over loopback HTTP.

use std::time::Duration;

mod common;

use base64::Engine;
use bytes::Bytes;
use common::{bytes_of, client, emulator, fast_polls, sha_hex};
use gemini::{Content, Error, FileState, GenerateContentRequest, Part, PollPolicy, UploadRequest};
use gemini_emulator::EmulatorConfig;

#[tokio::test]
async fn exact_bytes_arrive_and_processing_is_waited_for() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_millis(300),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(100_000, 7);
    let file = gemini
        .upload_bytes(Some("notes.txt".into()), "text/plain", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert_eq!(file.state, FileState::Processing, "a fresh File is PROCESSING");
    assert_eq!(file.size_bytes, 100_000);
    let hash = base64::engine::general_purpose::STANDARD
        .decode(file.sha256_hash.as_deref().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(hash).unwrap(),
        sha_hex(&data),
        "sha256Hash is base64 of the hex digest"
    );

    let active = gemini.wait_active(file.clone(), &fast_polls()).await.unwrap();
    assert_eq!(active.state, FileState::Active);
    assert_eq!(active.name, file.name);
    let gets = emu.emulator.request_log().iter().filter(|r| r.method == "GET").count();
    assert!(gets >= 2, "polled files.get until ACTIVE ({gets} GETs)");
}

#[tokio::test]
async fn an_active_file_costs_no_get() {
    let emu = emulator(EmulatorConfig { processing: Duration::ZERO, ..Default::default() }).await;
    let gemini = client(&emu, "k1");
    let file = gemini.upload_bytes(None, "text/plain", Bytes::from_static(b"hi")).await.unwrap();
    assert_eq!(file.state, FileState::Active);
    gemini.wait_active(file, &fast_polls()).await.unwrap();
    assert!(emu.emulator.request_log().iter().all(|r| r.method != "GET"));
}

#[tokio::test]
async fn a_large_stream_goes_in_three_chunks() {
    let emu = emulator(EmulatorConfig { processing: Duration::ZERO, ..Default::default() }).await;
    let gemini = client(&emu, "k1");
    let total = 16 * 1024 * 1024 + 123_457;
    let data = bytes_of(total, 3);
    // Fed in odd-sized pieces, as a multipart body would arrive.
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(1_000_003).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let req = UploadRequest {
        display_name: Some("big.bin".into()),
        mime_type: "video/mp4".into(),
        size_bytes: total as u64,
    };
    let file = gemini.upload_stream(&req, futures::stream::iter(pieces)).await.unwrap();
    let hash = base64::engine::general_purpose::STANDARD.decode(file.sha256_hash.unwrap()).unwrap();
    assert_eq!(String::from_utf8(hash).unwrap(), sha_hex(&data));

    let chunks: Vec<(String, u64, usize)> = emu
        .emulator
        .request_log()
        .into_iter()
        .filter(|r| r.upload_offset.is_some())
        .map(|r| (r.upload_command.unwrap(), r.upload_offset.unwrap(), r.body_bytes))
        .collect();
    let mib8 = 8 * 1024 * 1024;
    assert_eq!(
        chunks,
        vec![
            ("upload".into(), 0, mib8),
            ("upload".into(), mib8 as u64, mib8),
            ("upload, finalize".into(), 2 * mib8 as u64, 123_457),
        ]
    );
    let start = &emu.emulator.request_log()[0];
    assert!(start.had_api_key, "the start carries the key");
    assert!(emu.emulator.request_log()[1..].iter().all(|r| !r.had_api_key), "chunks carry no key");
}

#[tokio::test]
async fn a_stream_of_the_wrong_size_is_refused() {
    let emu = emulator(EmulatorConfig::default()).await;
    let gemini = client(&emu, "k1");
    let req = UploadRequest { display_name: None, mime_type: "text/plain".into(), size_bytes: 10 };
    let short = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"12345"))]);
    let err = gemini.upload_stream(&req, short).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { declared: 10, actual: 5 }), "{err}");
    let long =
        futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"123456789012"))]);
    let err = gemini.upload_stream(&req, long).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { declared: 10, actual: 12 }), "{err}");
}

#[tokio::test]
async fn unsupported_mime_types_are_taken_and_refused_when_used() {
    let emu = emulator(EmulatorConfig::default()).await;
    let gemini = client(&emu, "k1");
    let file = gemini.upload_bytes(None, "bad/mime_type", Bytes::from_static(b"x")).await.unwrap();
    let request = gemini::GenerateContentRequest {
        contents: vec![gemini::Content {
            role: Some("user".into()),
            parts: vec![gemini::Part::file("bad/mime_type", &file.uri)],
        }],
        ..Default::default()
    };
    let err = gemini.generate_content("gemini-2.5-flash", &request).await.unwrap_err();
    assert_eq!(err.unsupported_mime_type(), Some("bad/mime_type"), "{err}");
}

#[tokio::test]
async fn a_file_that_never_activates_times_out_and_is_deleted() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(60),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let file = gemini
        .upload_bytes(None, "video/mp4", Bytes::from_static(b"not really a video"))
        .await
        .unwrap();
    let policy = PollPolicy {
        timeout: Duration::from_millis(300),
        cleanup_on_timeout: true,
        ..fast_polls()
    };
    let err = gemini.wait_active(file.clone(), &policy).await.unwrap_err();
    assert!(matches!(&err, Error::NotActiveInTime { name, .. } if *name == file.name), "{err}");
    let deletes = emu.emulator.request_log().iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(deletes, 1, "cleanup deletes the File exactly once");
    let gone = gemini.get_file(&file.name).await.unwrap_err();
    assert_eq!(gone.inaccessible_file_id(), Some(file.id()));
}

#[tokio::test]
async fn files_belong_to_the_key_that_uploaded_them() {
    let emu = emulator(EmulatorConfig { processing: Duration::ZERO, ..Default::default() }).await;
    let file = client(&emu, "owner")
        .upload_bytes(None, "text/plain", Bytes::from_static(b"mine"))
        .await
        .unwrap();
    let err = client(&emu, "stranger").get_file(&file.uri).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 403, status, .. } if status == "PERMISSION_DENIED"),
        "{err}"
    );
    assert_eq!(err.inaccessible_file_id(), Some(file.id()));
}

#[tokio::test]
async fn the_answer_streams_and_names_every_file() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(4096, 9);
    let file = gemini.upload_bytes(None, "text/csv", Bytes::from(data.clone())).await.unwrap();
    let req = GenerateContentRequest {
        contents: vec![Content {
            role: Some("user".into()),
            parts: vec![Part::file(&file.mime_type, &file.uri), Part::text("What is in it?")],
        }],
        ..Default::default()
    };
    let mut stream = gemini.stream_generate_content("gemini-2.5-flash", &req).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        chunks.push(chunk.unwrap());
    }
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    assert_eq!(chunks.last().unwrap().finish_reason(), Some("STOP"));
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.finish_reason().is_none()));
    let text: String = chunks.iter().map(|c| c.text()).collect();
    assert!(
        text.contains(&format!("text/csv, 4096 bytes, SHA-256 {}", &sha_hex(&data)[..12])),
        "{text}"
    );
    assert!(text.contains("What is in it?"));

    let logged = emu.emulator.request_log().into_iter().last().unwrap();
    let part = &logged.json.unwrap()["contents"][0]["parts"][0];
    assert_eq!(part["fileData"]["fileUri"], file.uri.as_str());
}

#[tokio::test]
async fn generate_errors_are_typed() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(60),
        process_every_file: true,
        ..Default::default()
    })
    .await;
    let gemini = client(&emu, "k1");
    let file = gemini.upload_bytes(None, "text/plain", Bytes::from_static(b"slow")).await.unwrap();
    let ask = |uri: &str| GenerateContentRequest {
        contents: vec![Content {
            role: Some("user".into()),
            parts: vec![Part::file("text/plain", uri)],
        }],
        ..Default::default()
    };
    let err =
        gemini.stream_generate_content("gemini-2.5-flash", &ask(&file.uri)).await.err().unwrap();
    assert!(
        matches!(&err, Error::Api { code: 400, status, .. } if status == "FAILED_PRECONDITION"),
        "{err}"
    );
    let missing = format!("{}/v1beta/files/doesnotexist", emu.base_url());
    let err =
        gemini.stream_generate_content("gemini-2.5-flash", &ask(&missing)).await.err().unwrap();
    assert_eq!(err.inaccessible_file_id(), Some("doesnotexist"));
    let err = gemini.generate_content("no-such-model", &ask(&missing)).await.unwrap_err();
    assert!(matches!(err, Error::Api { code: 404, .. }), "{err}");
}
