//! `chat`: the conversation to `streamGenerateContent`, the answer back as NDJSON lines.

use bytes::Bytes;
use futures::{stream, StreamExt};
use leptos::server_fn::codec::ByteStream;

use super::{errors::from_gemini, state};
use crate::{
    error::AppError,
    model::{ChatEvent, Content},
};

/// See [`crate::api::chat`].
pub async fn chat(contents: Vec<Content>) -> Result<ByteStream<AppError>, AppError> {
    let state = state()?;
    let request = to_gemini(&contents);
    if request.contents.is_empty() {
        return Err(AppError::BadUpload("the conversation is empty".into()));
    }
    let upstream = state
        .gemini
        .stream_generate_content(&state.model, &request)
        .await
        .map_err(|e| from_gemini(e, None))?;
    // State: (upstream, finished). Each upstream chunk gives zero or more lines.
    let lines = stream::unfold((upstream, false), |(mut upstream, finished)| async move {
        if finished {
            return None;
        }
        let (events, finished) = match upstream.next().await {
            Some(Ok(chunk)) => {
                let mut events = Vec::new();
                let text = chunk.text();
                if !text.is_empty() {
                    events.push(ChatEvent::Delta { text });
                }
                let finish = chunk.finish_reason().map(str::to_string);
                let done = finish.is_some();
                if done {
                    events.push(ChatEvent::Done { finish_reason: finish });
                }
                (events, done)
            }
            Some(Err(e)) => (vec![ChatEvent::Error { error: from_gemini(e, None) }], true),
            None => {
                let error = AppError::Upstream { code: 502, message: "the answer stopped before it was complete".into() };
                (vec![ChatEvent::Error { error }], true)
            }
        };
        Some((stream::iter(events), (upstream, finished)))
    })
    .flatten()
    .map(|event| {
        let mut line = serde_json::to_vec(&event).expect("ChatEvent serializes");
        line.push(b'\n');
        Ok::<_, AppError>(Bytes::from(line))
    });
    Ok(ByteStream::new(lines))
}

/// Gemini's request from the stored conversation: text and `file_data` only — the
/// `inline_data` previews are for display and never leave the server.
pub fn to_gemini(contents: &[Content]) -> gemini::GenerateContentRequest {
    let contents = contents
        .iter()
        .map(|c| gemini::Content {
            role: Some(c.role.as_str().to_string()),
            parts: c
                .parts
                .iter()
                .filter_map(|p| {
                    if let Some(fd) = &p.file_data {
                        Some(gemini::Part::file(&fd.mime_type, &fd.file_uri))
                    } else {
                        p.text.as_ref().filter(|t| !t.is_empty()).map(gemini::Part::text)
                    }
                })
                .collect(),
        })
        .filter(|c: &gemini::Content| !c.parts.is_empty())
        .collect();
    gemini::GenerateContentRequest { contents, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileData, InlineData, Part, Role};

    #[test]
    fn previews_never_reach_gemini() {
        let image = Part {
            inline_data: Some(InlineData { mime_type: "image/jpeg".into(), data: "AAAA".into() }),
            file_data: Some(FileData { mime_type: "image/jpeg".into(), file_uri: "https://x/v1beta/files/a".into() }),
            ..Part::default()
        };
        let preview_only = Part {
            inline_data: Some(InlineData { mime_type: "image/jpeg".into(), data: "BBBB".into() }),
            ..Part::default()
        };
        let contents = vec![Content { role: Role::User, parts: vec![image, preview_only, Part::text("hi")] }];
        let json = serde_json::to_string(&to_gemini(&contents)).unwrap();
        assert_eq!(
            json,
            r#"{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/jpeg","fileUri":"https://x/v1beta/files/a"}},{"text":"hi"}]}]}"#
        );
    }
}
