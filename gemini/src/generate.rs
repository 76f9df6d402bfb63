//! `generateContent` and `streamGenerateContent?alt=sse`.
//!
//! The stream is Server-Sent Events: one `data: <GenerateContentResponse JSON>` per chunk,
//! each holding the *delta* text, `finishReason` on the last; no `[DONE]`, the stream ends
//! when the connection closes. A chunk `{"error": …}` is an error
//! (python-genai `_api_client.py` `request_streamed`; `docs/gemini-protocol.md`).

use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};

use crate::{
    client::{check, json, Client},
    error::{Error, Result},
    types::{GenerateContentRequest, GenerateContentResponse},
};

/// The chunks of a streamed answer, in order.
pub type SseStream = Pin<Box<dyn Stream<Item = Result<GenerateContentResponse>> + Send>>;

impl Client {
    /// `POST {ver}/models/{model}:generateContent`: one whole answer. Transient refusals
    /// (429, 500, 503, …) and failed connections are retried with the client's
    /// [`crate::RetryPolicy`], honouring `RetryInfo` / `Retry-After`; other 4xx never are.
    ///
    /// # Errors
    /// [`Error::Api`] — e.g. 403 for an inaccessible File, 400 `FAILED_PRECONDITION` for one
    /// still `PROCESSING`, 404 for an unknown model.
    pub async fn generate_content(
        &self,
        model: &str,
        req: &GenerateContentRequest,
    ) -> Result<GenerateContentResponse> {
        let url = self.api_url(&format!("models/{}:generateContent", bare_model(model)))?;
        self.with_retries("generateContent", || async {
            let res = self.request(reqwest::Method::POST, url.clone())?.json(req).send().await?;
            json(check(res).await?).await
        })
        .await
    }

    /// `POST {ver}/models/{model}:streamGenerateContent?alt=sse`: the answer as it is made.
    ///
    /// The request is retried as [`Client::generate_content`]'s is, until the answer starts;
    /// once chunks flow, a failure arrives as an `Err` item and is not retried (the caller
    /// has shown part of the answer).
    ///
    /// # Errors
    /// The call fails as [`Client::generate_content`] does when the request is refused.
    pub async fn stream_generate_content(
        &self,
        model: &str,
        req: &GenerateContentRequest,
    ) -> Result<SseStream> {
        let mut url =
            self.api_url(&format!("models/{}:streamGenerateContent", bare_model(model)))?;
        url.query_pairs_mut().append_pair("alt", "sse");
        let res = self
            .with_retries("streamGenerateContent", || async {
                let res =
                    self.request(reqwest::Method::POST, url.clone())?.json(req).send().await?;
                check(res).await
            })
            .await?;
        Ok(sse_chunks(res.bytes_stream(), Error::from))
    }
}

/// Gemini's SSE body (`data: {json}\r\n\r\n` frames, split anywhere by the network) as a
/// stream of parsed chunks, by `eventsource-stream`: what [`Client::stream_generate_content`]
/// returns, for a body had some other way. A frame whose data is not a
/// `GenerateContentResponse` gives [`Error::Decode`]; an `error` object in it gives
/// [`Error::Api`]; a failure of the body gives `transport(e)`.
pub fn sse_chunks<S, B, E>(body: S, transport: fn(E) -> Error) -> SseStream
where
    S: Stream<Item = std::result::Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    Box::pin(body.eventsource().map(move |event| {
        let event = event.map_err(|e| match e {
            eventsource_stream::EventStreamError::Transport(t) => transport(t),
            other => Error::Decode(other.to_string()),
        })?;
        parse_chunk(&event.data)
    }))
}

fn parse_chunk(data: &str) -> Result<GenerateContentResponse> {
    let value: serde_json::Value =
        serde_json::from_str(data).map_err(|e| Error::Decode(e.to_string()))?;
    if let Some(err) = value.get("error") {
        let code = err.get("code").and_then(|c| c.as_u64()).unwrap_or(500) as u16;
        return Err(crate::client::api_error(
            code,
            &serde_json::json!({ "error": err }).to_string(),
            None,
        ));
    }
    serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))
}

/// `gemini-2.5-flash` from `models/gemini-2.5-flash` or `gemini-2.5-flash`.
pub(crate) fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chunks_become_api_errors() {
        let err =
            parse_chunk(r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#)
                .unwrap_err();
        assert!(matches!(err, Error::Api { code: 503, .. }));
        let ok =
            parse_chunk(r#"{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"}}]}"#)
                .unwrap();
        assert_eq!(ok.text(), "hi");
    }
}

#[cfg(test)]
mod properties {
    use futures::StreamExt;
    use proptest::prelude::*;

    use super::*;

    fn chunks_of(
        body: Vec<u8>,
        cuts: &[usize],
    ) -> Vec<std::result::Result<Vec<u8>, std::convert::Infallible>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for at in points.into_iter().chain([body.len()]) {
            pieces.push(Ok(body[from..at].to_vec()));
            from = at;
        }
        pieces
    }

    fn parse(
        pieces: Vec<std::result::Result<Vec<u8>, std::convert::Infallible>>,
    ) -> Vec<Result<GenerateContentResponse>> {
        let stream = sse_chunks(futures::stream::iter(pieces), |never| match never {});
        futures::executor::block_on(stream.collect::<Vec<_>>())
    }

    proptest! {
        /// However the network splits Gemini's frames — inside a multi-byte character, inside
        /// `\r\n` — the same texts come out, in order.
        #[test]
        fn frames_split_anywhere_give_the_same_chunks(texts in proptest::collection::vec("\\PC{0,40}", 1..6), cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
            let mut body = Vec::new();
            for text in &texts {
                let chunk = serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]});
                body.extend_from_slice(format!("data: {chunk}\r\n\r\n").as_bytes());
            }
            let parsed: Vec<String> = parse(chunks_of(body, &cuts)).into_iter().map(|c| c.unwrap().text()).collect();
            prop_assert_eq!(parsed, texts);
        }

        /// Arbitrary bytes never panic: every event is a chunk or a typed error.
        #[test]
        fn any_body_is_chunks_or_typed_errors(body in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            for event in parse(chunks_of(body, &cuts)) {
                if let Err(e) = event {
                    prop_assert!(matches!(e, Error::Decode(_) | Error::Api { .. }), "{e:?}");
                }
            }
        }
    }
}
