//! `countTokens` against the emulator: its deterministic counts (`gemini_emulator::tokens`)
//! for text and Files, the same number as `promptTokenCount`, and the same refusals as
//! `generateContent`.

mod common;

use bytes::Bytes;
use common::{client, emulator};
use gemini::{Content, Error, GenerateContentRequest, Part};
use gemini_emulator::{
    testing::{instant, tiny_mp4, tiny_pdf, tiny_wav},
    tokens::THOUGHTS,
    EmulatorConfig,
};

fn user(parts: Vec<Part>) -> GenerateContentRequest {
    GenerateContentRequest {
        contents: vec![Content { role: Some("user".into()), parts }],
        ..Default::default()
    }
}

#[tokio::test]
async fn text_is_a_quarter_of_its_characters_per_part() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    // 14 characters → 4; 5 characters (two of them two bytes long) → 2.
    let req = user(vec![Part::text("What is in it?"), Part::text("ça va")]);
    let count = gemini.count_tokens("gemini-2.5-flash", &req).await.unwrap();
    assert_eq!((count.total_tokens, count.cached_content_token_count), (6, 0));
    let logged = emu.emulator.request_log().pop().unwrap();
    assert!(
        logged.path.ends_with("/v1beta/models/gemini-2.5-flash:countTokens"),
        "{}",
        logged.path
    );
    assert!(logged.json.unwrap().get("contents").is_some(), "bare contents");

    // A system instruction counts too; it goes in the documented generateContentRequest.
    let with_system = GenerateContentRequest {
        system_instruction: Some(Content { role: None, parts: vec![Part::text("Be brief.")] }),
        ..req
    };
    let count = gemini.count_tokens("models/gemini-2.5-flash", &with_system).await.unwrap();
    assert_eq!(count.total_tokens, 6 + 3);
    let logged = emu.emulator.request_log().pop().unwrap().json.unwrap();
    assert_eq!(logged["generateContentRequest"]["model"], "models/gemini-2.5-flash");
}

#[tokio::test]
async fn files_count_by_kind_and_equal_the_prompt_tokens_of_the_answer() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let upload = |mime: &'static str, bytes: Vec<u8>| {
        let gemini = gemini.clone();
        async move { gemini.upload_bytes(None, mime, Bytes::from(bytes)).await.unwrap() }
    };
    let png = upload("image/png", b"\x89PNG\r\n\x1a\n".to_vec()).await;
    let pdf = upload("application/pdf", tiny_pdf(3)).await;
    let wav = upload("audio/wav", tiny_wav(8000, 20_000)).await;
    let mp4 = upload("video/mp4", tiny_mp4(1000, 2500)).await;
    let txt = upload("text/plain", vec![b'x'; 4001]).await;
    let cases = [(&png, 258), (&pdf, 3 * 258), (&wav, 80), (&mp4, 658), (&txt, 1001)];
    for (file, expected) in cases {
        let req = user(vec![Part::file(&file.mime_type, &file.uri)]);
        let count = gemini.count_tokens("gemini-2.5-flash", &req).await.unwrap();
        assert_eq!(count.total_tokens, expected, "{}", file.mime_type);
    }

    let everything = user(
        cases
            .iter()
            .map(|(f, _)| Part::file(&f.mime_type, &f.uri))
            .chain([Part::text("Compare them.")])
            .collect(),
    );
    let counted = gemini.count_tokens("gemini-2.5-pro", &everything).await.unwrap().total_tokens;
    assert_eq!(counted, 258 + 774 + 80 + 658 + 1001 + 4);
    let answer = gemini.generate_content("gemini-2.5-pro", &everything).await.unwrap();
    let usage = answer.usage_metadata.unwrap();
    assert_eq!(usage.prompt_token_count, counted);
    assert_eq!(usage.cached_content_token_count, 0);
    assert_eq!(usage.thoughts_token_count, THOUGHTS, "2.5 Pro thinks");
    assert_eq!(
        usage.total_token_count,
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    );
    let old = gemini.generate_content("gemini-2.0-flash", &everything).await.unwrap();
    assert_eq!(old.usage_metadata.unwrap().thoughts_token_count, 0, "2.0 Flash does not");
}

#[tokio::test]
async fn counting_refuses_what_generate_refuses() {
    let emu = emulator(EmulatorConfig {
        processing: std::time::Duration::from_secs(60),
        process_every_file: true,
        ..instant()
    })
    .await;
    let gemini = client(&emu, "owner");
    let slow = gemini.upload_bytes(None, "text/plain", Bytes::from_static(b"slow")).await.unwrap();
    let err = gemini
        .count_tokens("gemini-2.5-flash", &user(vec![Part::file("text/plain", &slow.uri)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, status, .. } if status == "FAILED_PRECONDITION"),
        "{err}"
    );
    let stranger = client(&emu, "stranger");
    let err = stranger
        .count_tokens("gemini-2.5-flash", &user(vec![Part::file("text/plain", &slow.uri)]))
        .await
        .unwrap_err();
    assert_eq!(err.inaccessible_file_id(), Some(slow.id()));
    let err =
        gemini.count_tokens("gemini-0-nano", &user(vec![Part::text("hi")])).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 404, message, .. } if message.contains("not supported for countTokens")),
        "{err}"
    );
}
