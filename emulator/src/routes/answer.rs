//! An answer on the wire: its text in pieces (one per SSE chunk), its `usageMetadata`, and —
//! for Gemini 3 models — the `thoughtSignature` on an empty last text part
//! (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
//!
//! The text is deterministic: it lists every file of the prompt with
//! [`crate::inspect::Description::summary`], quotes the last user text, and names the model.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use base64::Engine;
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{models::ModelInfo, prompt::Reading, serve::Connection, tokens};

/// One answer, ready to be sent whole or streamed.
pub struct Answer {
    /// The model's id, as `modelVersion`.
    model: &'static str,
    /// The text, in the pieces it streams in.
    pieces: Vec<String>,
    /// `usageMetadata`, the same on every chunk.
    usage: Value,
    /// The `thoughtSignature` of the last chunk.
    signature: Option<String>,
    /// `responseId`: the same on every chunk of one answer.
    response_id: String,
    /// `finishReason`: `STOP`, or `MAX_TOKENS` when `maxOutputTokens` cut it.
    finish: &'static str,
}

impl Answer {
    /// The answer of `model` to `reading`: `scripted` (a text queued through the control
    /// surface) if given, else the description of what arrived. `number` makes its signature
    /// unique. With `max_output_tokens` (`generationConfig.maxOutputTokens`), thinking and
    /// text together stop there, as Gemini's do: the text is cut after the words that fit
    /// and the answer ends with `finishReason: MAX_TOKENS`.
    pub fn new(
        model: &'static ModelInfo,
        reading: &Reading,
        scripted: Option<String>,
        number: u64,
        max_output_tokens: Option<u64>,
    ) -> Self {
        let mut text = scripted.unwrap_or_else(|| describe(model, reading));
        let mut thoughts = model.thinking.then_some(tokens::THOUGHTS);
        let mut finish = "STOP";
        if let Some(most) = max_output_tokens {
            thoughts = thoughts.map(|t| t.min(most));
            let room = usize::try_from(most - thoughts.unwrap_or(0)).unwrap_or(usize::MAX);
            let ends = word_ends(&text);
            if ends.len() > room {
                text.truncate(room.checked_sub(1).map_or(0, |last| ends[last]));
                finish = "MAX_TOKENS";
            }
        }
        let candidates = text.split_whitespace().count() as u64;
        let prompt = reading.prompt.tokens;
        let mut usage = json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts.unwrap_or(0),
        });
        if let Some(cached) = reading.cached_tokens {
            usage["cachedContentTokenCount"] = json!(cached);
        }
        if let Some(details) = reading.prompt.by_modality.details() {
            usage["promptTokensDetails"] = details;
        }
        if let Some(details) = reading.cached_by_modality.details() {
            usage["cacheTokensDetails"] = details;
        }
        if let Some(thoughts) = thoughts {
            usage["thoughtsTokenCount"] = json!(thoughts);
        }
        let signature = model.signs_thoughts().then(|| signature(model.id, number, &text));
        let response_id =
            rand::rng().sample_iter(&rand::distr::Alphanumeric).map(char::from).take(23).collect();
        Answer {
            model: model.id,
            pieces: split_into_chunks(&text),
            usage,
            signature,
            response_id,
            finish,
        }
    }

    /// The whole answer as one `GenerateContentResponse`.
    pub fn whole(&self) -> Value {
        self.chunk(&self.pieces.concat(), true)
    }

    /// The chunks of a stream, in order; the last has `finishReason` (and the signature).
    pub fn chunks(&self) -> Vec<Value> {
        let last = self.pieces.len().saturating_sub(1);
        self.pieces.iter().enumerate().map(|(i, t)| self.chunk(t, i == last)).collect()
    }

    fn chunk(&self, text: &str, last: bool) -> Value {
        let mut parts = vec![json!({"text": text})];
        if let Some(signature) = self.signature.as_ref().filter(|_| last) {
            parts.push(json!({"text": "", "thoughtSignature": signature}));
        }
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if last {
            candidate["finishReason"] = json!(self.finish);
        }
        json!({"candidates": [candidate], "usageMetadata": self.usage, "modelVersion": self.model,
            "responseId": self.response_id})
    }

    /// `data: {json}\r\n\r\n` per chunk (Gemini's spacing, [`crate::wire::sse_json`]), with
    /// `Content-Disposition: attachment`, and `chunk_delay` between chunks. With `cut`, the
    /// connection is closed after two chunks (an injected drop).
    pub fn sse(&self, chunk_delay: Duration, cut: Option<Connection>) -> Response {
        let chunks = self.chunks();
        let cut_at = chunks.len().saturating_sub(1).min(2);
        let frames: Vec<Bytes> =
            chunks.iter().map(|c| Bytes::from(crate::wire::sse_event(c))).collect();
        let stream =
            futures::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| {
                let cut = cut.clone();
                async move {
                    if i > 0 {
                        tokio::time::sleep(chunk_delay).await;
                    }
                    if let Some(conn) = cut.filter(|_| i == cut_at) {
                        conn.drop_now().await;
                    }
                    Ok::<_, std::convert::Infallible>(frame)
                }
            });
        let mut res = Body::from_stream(stream).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        res.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
        res
    }
}

/// Where each word of `text` ends (the byte offset just past it), in order.
fn word_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            ends.push(i);
        }
        in_word = !c.is_whitespace();
    }
    if in_word {
        ends.push(text.len());
    }
    ends
}

/// The emulator's own answer: Markdown blocks, separated by blank lines (a line right after a
/// list item would continue the item, and run into it when rendered, so the list ends before
/// what follows).
fn describe(model: &ModelInfo, reading: &Reading) -> String {
    let files = &reading.prompt.files;
    let mut blocks = vec![match files.len() {
        0 => "I received no files.".to_string(),
        1 => "I received 1 file:".to_string(),
        n => format!("I received {n} files:"),
    }];
    if !files.is_empty() {
        let items: Vec<String> =
            files.iter().enumerate().map(|(i, d)| format!("{}. {}", i + 1, d.summary())).collect();
        blocks.push(items.join("\n"));
    }
    if let Some(asked) = reading.prompt.last_user_text.as_deref() {
        blocks.push(format!("You asked: “{asked}”"));
    }
    blocks.push(format!(
        "(This answer comes from Parley's built-in Gemini emulator, model {}.)",
        model.id
    ));
    blocks.join("\n\n")
}

/// Base64 of SHA-256 over the model, the answer's number and its text: the same answer to
/// the same emulator state, a different one for every answer.
fn signature(model: &str, number: u64, text: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gemini-emulator thought signature\n")
        .chain_update(format!("{model}\n{number}\n").as_bytes())
        .chain_update(text.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Splits an answer into about six pieces at word boundaries (at least one).
fn split_into_chunks(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let per_chunk = words.len().div_ceil(6).max(1);
    let pieces: Vec<String> = words.chunks(per_chunk).map(|w| w.concat()).collect();
    if pieces.is_empty() {
        return vec![String::new()];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{models::find, prompt::Prompt};

    fn reading(text: &str, cached: Option<u64>) -> Reading {
        let prompt = Prompt { last_user_text: Some(text.into()), tokens: 7, ..Prompt::default() };
        Reading { prompt, cached_tokens: cached, cached_by_modality: Default::default() }
    }

    #[test]
    fn answers_stream_in_several_chunks() {
        let pieces =
            split_into_chunks("one two three four five six seven eight nine ten eleven twelve");
        assert!(pieces.len() >= 3);
        assert_eq!(
            pieces.concat(),
            "one two three four five six seven eight nine ten eleven twelve"
        );
        assert_eq!(split_into_chunks(""), vec![String::new()]);
    }

    #[test]
    fn gemini_3_signs_the_last_chunk_only_and_every_answer_differently() {
        let model = find("gemini-3-pro-preview").unwrap();
        let answer = Answer::new(model, &reading("hi", None), None, 1, None);
        let chunks = answer.chunks();
        let last = &chunks.last().unwrap()["candidates"][0]["content"]["parts"];
        assert_eq!(last[1]["text"], "");
        let signature = last[1]["thoughtSignature"].as_str().unwrap();
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len()
            == 1));
        assert_eq!(
            answer.whole()["candidates"][0]["content"]["parts"][1]["thoughtSignature"],
            signature
        );
        let again = Answer::new(model, &reading("hi", None), None, 2, None);
        assert_ne!(again.signature.as_deref(), Some(signature));
        let flash =
            Answer::new(find("gemini-2.5-flash").unwrap(), &reading("hi", None), None, 3, None);
        assert!(flash.signature.is_none());
    }

    #[test]
    fn usage_counts_the_cache_and_thoughts_only_when_there_are_some() {
        let text = describe(find("gemini-2.5-pro").unwrap(), &reading("hi", None));
        assert!(
            text.ends_with(
                "(This answer comes from Parley's built-in Gemini emulator, model gemini-2.5-pro.)"
            ),
            "{text}"
        );
        let cached =
            Answer::new(find("gemini-2.5-flash").unwrap(), &reading("hi", Some(5)), None, 1, None);
        assert_eq!(cached.usage["cachedContentTokenCount"], 5);
        assert_eq!(cached.usage["thoughtsTokenCount"], tokens::THOUGHTS);
        let old = Answer::new(
            find("gemini-2.0-flash").unwrap(),
            &reading("hi", None),
            Some("a b".into()),
            1,
            None,
        );
        assert_eq!(
            old.usage,
            json!({"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9})
        );
    }

    #[test]
    fn max_output_tokens_stops_the_answer_there() {
        let scripted = || Some("one two  three\nfour five".to_string());
        let old = find("gemini-2.0-flash").unwrap();
        let cut = Answer::new(old, &reading("hi", None), scripted(), 1, Some(3));
        assert_eq!(cut.pieces.concat(), "one two  three");
        assert_eq!(cut.usage["candidatesTokenCount"], 3);
        let last = cut.chunks().pop().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "MAX_TOKENS");
        let whole = Answer::new(old, &reading("hi", None), scripted(), 1, Some(5));
        assert_eq!(whole.chunks().pop().unwrap()["candidates"][0]["finishReason"], "STOP");
        // Thinking counts first: a thinking model's 64 thoughts leave 2 words of 66.
        let flash = find("gemini-2.5-flash").unwrap();
        let thought = Answer::new(flash, &reading("hi", None), scripted(), 1, Some(66));
        assert_eq!(thought.pieces.concat(), "one two");
        let none = Answer::new(flash, &reading("hi", None), scripted(), 1, Some(10));
        assert_eq!(
            (none.usage["thoughtsTokenCount"].clone(), none.pieces.concat()),
            (json!(10), String::new())
        );
    }
}
