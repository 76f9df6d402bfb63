//! `chat`: the conversation to `streamGenerateContent`, the answer back as NDJSON lines.

use bytes::Bytes;
use futures::{stream, StreamExt};
use leptos::server_fn::codec::ByteStream;

use super::{errors::from_gemini, state};
use crate::{
    error::AppError,
    model::{ChatEvent, Content},
};

use crate::model::EXPIRED_CONTENT;

/// See [`crate::api::chat`].
///
/// When Gemini answers 403 "You do not have permission to access the File X…" and X is a
/// File of this conversation (either form of X, BC-18), its parts become the text
/// `expired content`, an `expired` event tells the browser, and the request goes again —
/// once. A second 403, or one naming a File the conversation does not hold, is the real
/// cause (billing and key problems give the same text, BC-19) and is reported as it is.
pub async fn chat(contents: Vec<Content>) -> Result<ByteStream<AppError>, AppError> {
    let state = state()?;
    let session = super::session()?;
    let mut request = to_gemini(&contents);
    if request.contents.is_empty() {
        return Err(AppError::BadUpload("the conversation is empty".into()));
    }
    let mut expired = gate(&state, &session, &mut request).await?;
    let upstream = match state.gemini.stream_generate_content(&state.model, &request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let gone = e.inaccessible_file_id().map(|id| expire(&mut request, id)).unwrap_or_default();
            if gone.is_empty() {
                // Not a File of this conversation: re-sending cannot help; say what Gemini said.
                return Err(super::errors::refused_after_retry(e));
            }
            tracing::info!(files = ?gone, "Gemini says files are gone: asking again without them");
            for uri in &gone {
                if let Err(e) = state.registry.set_state(&session.0, uri, "EXPIRED").await {
                    tracing::warn!(error = %e, "could not mark a File expired");
                }
            }
            expired.extend(gone);
            state
                .gemini
                .stream_generate_content(&state.model, &request)
                .await
                .map_err(super::errors::refused_after_retry)?
        }
    };
    let notices = expired.into_iter().map(|file_uri| ChatEvent::Expired { file_uri });
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
    .flatten();
    let lines = stream::iter(notices.collect::<Vec<_>>()).chain(lines).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("ChatEvent serializes");
        line.push(b'\n');
        Ok::<_, AppError>(Bytes::from(line))
    });
    Ok(ByteStream::new(lines))
}

/// The check before every request: each `fileData` URI must be a File this session uploaded
/// under this upstream identity, not past its `expirationTime` minus the margin (BC-20).
/// Others — foreign, unknown, expired — become `expired content`; their URIs are returned
/// for the browser. A browser can never make the server use someone else's File.
async fn gate(state: &super::ServerState, session: &super::Session, request: &mut gemini::GenerateContentRequest) -> Result<Vec<String>, AppError> {
    let mut uris: Vec<String> = request
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.file_data.as_ref().map(|f| f.file_uri.clone()))
        .collect();
    uris.sort();
    uris.dedup();
    let now = std::time::SystemTime::now();
    let mut gone = Vec::new();
    for uri in uris {
        let row = state.registry.find(&session.0, &state.upstream_id, &uri).await.map_err(|e| {
            tracing::error!(error = %e, "the file registry failed");
            AppError::Transport("the server could not check the conversation's files".into())
        })?;
        let usable = row.as_ref().is_some_and(|r| r.state != "EXPIRED" && !super::is_expired(r.expiration_time.as_deref(), state.expiry_margin, now));
        if !usable {
            if row.is_some_and(|r| r.state != "EXPIRED") {
                let _ = state.registry.set_state(&session.0, &uri, "EXPIRED").await;
            }
            if let Some(id) = crate::transcript::file_id_of(&uri) {
                expire(request, id);
            }
            gone.push(uri);
        }
    }
    Ok(gone)
}

/// Replaces every `fileData` part naming File `id` with the text [`EXPIRED_CONTENT`];
/// returns the URIs replaced (none when the conversation does not hold that File).
fn expire(request: &mut gemini::GenerateContentRequest, id: &str) -> Vec<String> {
    let mut gone = Vec::new();
    for part in request.contents.iter_mut().flat_map(|c| c.parts.iter_mut()) {
        let Some(uri) = part.file_data.as_ref().map(|f| f.file_uri.clone()) else { continue };
        if crate::transcript::file_id_of(&uri) == Some(id) {
            *part = gemini::Part::text(EXPIRED_CONTENT);
            if !gone.contains(&uri) {
                gone.push(uri);
            }
        }
    }
    gone
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
    fn only_the_named_file_expires() {
        let file = |id: &str| Part {
            file_data: Some(FileData { mime_type: "application/pdf".into(), file_uri: format!("https://x/v1beta/files/{id}") }),
            ..Part::default()
        };
        let contents = vec![Content { role: Role::User, parts: vec![file("aaa"), file("bbb"), file("aaa"), Part::text("hi")] }];
        let mut request = to_gemini(&contents);
        assert_eq!(expire(&mut request, "aaa"), vec!["https://x/v1beta/files/aaa".to_string()]);
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json.matches("expired content").count(), 2);
        assert!(json.contains("files/bbb"));
        assert!(expire(&mut request, "zzz").is_empty());
    }

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
