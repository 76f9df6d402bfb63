//! The client against answers shaped as recordings of the real API show them
//! (`docs/gemini-protocol.md`): pretty-printed JSON, CRLF-framed SSE with `": "` spacing, a
//! `responseId` on every event, token details by modality, and integer enums.

use futures::StreamExt;
use gemini::{sse_chunks, Error, GenerateContentResponse, Modality, ModalityTokenCount};

/// A streamed answer as Gemini frames it, split at awkward places by the network.
const STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},\"index\": 0}],",
    "\"usageMetadata\": {\"promptTokenCount\": 267,\"totalTokenCount\": 267,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 9},{\"modality\": \"DOCUMENT\",\"tokenCount\": 258}]},",
    "\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Mz1haMLzGd6mz7IPrqmcqAU\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" world\"}],\"role\": \"model\"},\"finishReason\": 1,\"index\": 0}],",
    "\"usageMetadata\": {\"promptTokenCount\": 267,\"candidatesTokenCount\": 2,\"totalTokenCount\": 269,\"promptTokensDetails\": [{\"modality\": 1,\"tokenCount\": 9},{\"modality\": 5,\"tokenCount\": 258}]},",
    "\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Mz1haMLzGd6mz7IPrqmcqAU\"}\r\n\r\n",
);

#[tokio::test]
async fn a_recorded_stream_parses_whatever_its_framing() {
    for cut in [1, 7, 64, STREAM.len()] {
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            STREAM.as_bytes().chunks(cut).map(|c| Ok(c.to_vec())).collect();
        let chunks: Vec<GenerateContentResponse> =
            sse_chunks(futures::stream::iter(pieces), |e| Error::Source(e.to_string()))
                .map(Result::unwrap)
                .collect()
                .await;
        assert_eq!(chunks.len(), 2, "cut every {cut} bytes");
        let text: String = chunks.iter().map(GenerateContentResponse::text).collect();
        assert_eq!(text, "Hello world");
        assert!(chunks.iter().all(|c| c.response_id.as_deref() == Some("Mz1haMLzGd6mz7IPrqmcqAU")));
        assert_eq!(chunks[1].finish_reason(), Some("STOP"), "an integer enum read as its name");
        for chunk in &chunks {
            let details = &chunk.usage_metadata.as_ref().unwrap().prompt_tokens_details;
            assert_eq!(
                details,
                &[
                    ModalityTokenCount { modality: Modality::Text, token_count: 9 },
                    ModalityTokenCount { modality: Modality::Document, token_count: 258 },
                ]
            );
        }
    }
}

#[test]
fn a_pretty_printed_answer_and_count_parse() {
    let answer = "{\n  \"candidates\": [\n    {\n      \"content\": {\n        \"parts\": [\n          {\n            \"text\": \"Hi\"\n          }\n        ],\n        \"role\": \"model\"\n      },\n      \"finishReason\": \"STOP\",\n      \"index\": 0\n    }\n  ],\n  \"usageMetadata\": {\n    \"promptTokenCount\": 4,\n    \"candidatesTokenCount\": 1,\n    \"totalTokenCount\": 5,\n    \"promptTokensDetails\": [\n      {\n        \"modality\": \"IMAGE\"\n      }\n    ]\n  },\n  \"modelVersion\": \"gemini-2.0-flash\",\n  \"responseId\": \"abc\"\n}\n";
    let parsed: GenerateContentResponse = serde_json::from_str(answer).unwrap();
    assert_eq!(parsed.text(), "Hi");
    let usage = parsed.usage_metadata.unwrap();
    assert_eq!(
        usage.prompt_tokens_details[0],
        ModalityTokenCount { modality: Modality::Image, token_count: 0 }
    );
    let count: gemini::CountTokensResponse = serde_json::from_str(
        "{\n  \"totalTokens\": 267,\n  \"promptTokensDetails\": [\n    {\n      \"modality\": \"DOCUMENT\",\n      \"tokenCount\": 258\n    }\n  ]\n}\n",
    )
    .unwrap();
    assert_eq!(count.total_tokens, 267);
    assert_eq!(count.prompt_tokens_details[0].modality, Modality::Document);
}
