//! `models.list` / `models.get`, unknown models, and what a model's answers carry (its name,
//! Gemini 3's `thoughtSignature`), against the emulator over HTTP.

mod common;

use common::{client, emulator, quick_retries};
use futures::StreamExt;
use gemini::{ApiKey, Client, ClientConfig, Content, Error, GenerateContentRequest, Part};
use gemini_emulator::{testing::instant, EmulatorConfig, GatewayConfig, MODELS};

fn ask(text: &str) -> GenerateContentRequest {
    GenerateContentRequest {
        contents: vec![Content { role: Some("user".into()), parts: vec![Part::text(text)] }],
        ..Default::default()
    }
}

#[tokio::test]
async fn every_model_is_listed_with_its_limits() {
    let emu = emulator(instant()).await;
    let page = client(&emu, "k").list_models(None).await.unwrap();
    assert!(page.next_page_token.is_none(), "one page of 1000 holds them all");
    let ids: Vec<&str> = page.models.iter().map(|m| m.id()).collect();
    for id in ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert_eq!(ids.len(), MODELS.len());
    let flash = page.models.iter().find(|m| m.id() == "gemini-2.5-flash").unwrap();
    assert_eq!(flash.name, "models/gemini-2.5-flash");
    assert_eq!((flash.input_token_limit, flash.output_token_limit), (1_048_576, 65_536));
    assert!(flash.thinking);
    assert_eq!(flash.display_name, "Gemini 2.5 Flash");
    assert!(flash.supported_generation_methods.iter().any(|m| m == "createCachedContent"));
    assert_eq!((flash.temperature, flash.top_p, flash.top_k), (Some(1.0), Some(0.95), Some(64)));
    let old = page.models.iter().find(|m| m.id() == "gemini-2.0-flash").unwrap();
    assert!(!old.thinking);
    assert_eq!(old.output_token_limit, 8192);
}

#[tokio::test]
async fn get_takes_both_spellings_and_an_unknown_model_is_404() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let pro = gemini.get_model("gemini-2.5-pro").await.unwrap();
    assert_eq!(pro, gemini.get_model("models/gemini-2.5-pro").await.unwrap());
    assert_eq!(pro.version, "2.5");
    let preview = gemini.get_model("gemini-3-pro-preview").await.unwrap();
    assert_eq!(preview.version, "3-pro-preview-11-2025");
    let err = gemini.get_model("gemini-1.0-ultra").await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 404, status, message, .. }
            if status == "NOT_FOUND" && message == "Model is not found: models/gemini-1.0-ultra for api version v1beta"),
        "{err}"
    );
    // A name that tries to reach another resource stays one path segment.
    let err = gemini.get_model("../files").await.unwrap_err();
    assert!(matches!(err, Error::Api { code: 404, .. }), "{err}");
}

#[tokio::test]
async fn generate_refuses_a_model_that_is_not_listed() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let err = gemini.generate_content("gemini-1.0-ultra", &ask("hi")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 404, status, message, .. }
            if status == "NOT_FOUND" && message.starts_with("models/gemini-1.0-ultra is not found for API version v1beta, or is not supported for generateContent.")),
        "{err}"
    );
    let err = gemini.stream_generate_content("gemini-9-turbo", &ask("hi")).await.err().unwrap();
    assert!(matches!(err, Error::Api { code: 404, .. }), "{err}");
}

#[tokio::test]
async fn the_answer_names_its_model_and_gemini_3_signs_its_last_chunk() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let whole = gemini.generate_content("gemini-2.5-pro", &ask("Who are you?")).await.unwrap();
    let text = whole.text();
    assert!(text.contains("You asked: “Who are you?”"), "{text}");
    assert!(
        text.ends_with(
            "(This answer comes from Parley's built-in Gemini emulator, model gemini-2.5-pro.)"
        ),
        "{text}"
    );
    let parts = &whole.candidates[0].content.as_ref().unwrap().parts;
    assert!(parts.iter().all(|p| p.thought_signature.is_none()), "2.5 does not sign");

    let signed = gemini.generate_content("gemini-3-pro-preview", &ask("Sign?")).await.unwrap();
    let parts = &signed.candidates[0].content.as_ref().unwrap().parts;
    let last = parts.last().unwrap();
    assert_eq!(last.text.as_deref(), Some(""));
    let first_signature = last.thought_signature.clone().unwrap();
    assert!(signed.text().ends_with("model gemini-3-pro-preview.)"), "{}", signed.text());

    let mut stream =
        gemini.stream_generate_content("gemini-3-pro-preview", &ask("Sign?")).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap());
    }
    let signatures: Vec<&str> = chunks
        .iter()
        .flat_map(|c| c.candidates[0].content.as_ref().unwrap().parts.iter())
        .filter_map(|p| p.thought_signature.as_deref())
        .collect();
    assert_eq!(signatures.len(), 1, "only the last chunk is signed");
    let last = chunks.last().unwrap().candidates[0].content.as_ref().unwrap().parts.last().unwrap();
    assert_eq!(
        (last.text.as_deref(), last.thought_signature.as_deref()),
        (Some(""), Some(signatures[0]))
    );
    assert_ne!(signatures[0], first_signature, "every answer has its own signature");

    // The signed part goes back in the model turn; it is neither a file nor quoted.
    let mut next = ask("And now?");
    next.contents.insert(0, Content { role: Some("model".into()), parts: parts.clone() });
    let text = gemini.generate_content("gemini-3-pro-preview", &next).await.unwrap().text();
    assert!(text.starts_with("I received no files."), "{text}");
    assert!(text.contains("You asked: “And now?”"), "{text}");
}

#[tokio::test]
async fn models_are_listed_through_the_gateway() {
    let emu = emulator(EmulatorConfig {
        gateway: Some(GatewayConfig { key: "sub".into(), prefix: "/gemini".into() }),
        ..instant()
    })
    .await;
    let mut config = ClientConfig::gateway(
        format!("{}/gemini", emu.base_url()).parse().unwrap(),
        ApiKey::new("sub").unwrap(),
    );
    config.retry = quick_retries();
    let gemini = Client::new(config).unwrap();
    assert_eq!(gemini.list_models(None).await.unwrap().models.len(), MODELS.len());
    assert_eq!(gemini.get_model("gemini-2.5-flash").await.unwrap().id(), "gemini-2.5-flash");
    let log = emu.emulator.request_log();
    assert!(log.iter().all(|r| r.path.starts_with("/gemini/v1beta/models")), "{log:?}");
    assert!(log.iter().all(|r| r.had_subscription_key && !r.had_api_key));
}
