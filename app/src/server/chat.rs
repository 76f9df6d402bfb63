//! `chat`: the conversation to `streamGenerateContent`, the answer back as NDJSON lines.

use bytes::Bytes;
use futures::{stream, StreamExt};
use leptos::server_fn::codec::ByteStream;

use super::{
    errors::{from_gemini, registry_failed},
    refresh::{refresh, usable},
    registry::{FileRow, EXPIRED},
    state,
};
use crate::{
    error::AppError,
    model::{ChatEvent, Content, UploadedFile, EXPIRED_CONTENT},
};

/// See [`crate::api::chat`].
///
/// Before the request, [`precheck`] makes every `fileData` part usable or `expired content`.
/// When Gemini still answers 403 "You do not have permission to access the File X…" and X
/// is a File of this conversation (either form of X, BC-18), X gets the same treatment —
/// re-uploaded from its retained original, else `expired content` — and the request goes
/// again, once. A second 403, or one naming a File the conversation does not hold, is the
/// real cause (billing and key problems give the same text, BC-19) and is reported as it is.
pub async fn chat(contents: Vec<Content>) -> Result<ByteStream<AppError>, AppError> {
    let state = state()?;
    let session = super::session()?;
    let mut request = to_gemini(&contents);
    if request.contents.is_empty() {
        return Err(AppError::BadUpload("the conversation is empty".into()));
    }
    let slot = super::upstream_slot(&state).await?;
    let mut treated = precheck(&state, &session, &mut request).await?;
    let upstream = match state.gemini.stream_generate_content(&state.model, &request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let named = e.inaccessible_file_id().map(|id| uris_of(&request, id)).unwrap_or_default();
            if named.is_empty() {
                // Not a File of this conversation: re-sending cannot help; say what Gemini said.
                return Err(super::errors::refused_after_retry(e));
            }
            tracing::info!(files = ?named, "Gemini says files are gone: treating them and asking once more");
            let rows = state.registry.find_many(&session.0, named.clone()).await.map_err(registry_failed)?;
            for uri in named {
                match rows.get(&uri) {
                    Some(row) => {
                        state.registry.set_state(&row.owner, &row.uri, EXPIRED).await.map_err(registry_failed)?;
                        treat(&state, row, &mut request, &mut treated).await?;
                    }
                    None => {
                        replace_uri(&mut request, &uri, None);
                        treated.expired.push(uri);
                    }
                }
            }
            state
                .gemini
                .stream_generate_content(&state.model, &request)
                .await
                .map_err(super::errors::refused_after_retry)?
        }
    };
    let notices = treated
        .replaced
        .into_iter()
        .map(|(old_uri, file)| ChatEvent::Replaced { old_uri, file })
        .chain(treated.expired.into_iter().map(|file_uri| ChatEvent::Expired { file_uri }));
    // Each upstream chunk gives zero or more lines.
    // State: (upstream, finished, the slot held until the answer ends).
    let lines = stream::unfold((upstream, false, slot), |(mut upstream, finished, slot)| async move {
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
        Some((stream::iter(events), (upstream, finished, slot)))
    })
    .flatten();
    let lines = stream::iter(notices.collect::<Vec<_>>()).chain(lines).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("ChatEvent serializes");
        line.push(b'\n');
        Ok::<_, AppError>(Bytes::from(line))
    });
    Ok(ByteStream::new(lines))
}

/// What the check before a request did to the conversation's Files.
#[derive(Debug, Default)]
pub struct Treated {
    /// Old URI → the File now standing in for it (re-uploaded, or the same content already
    /// `ACTIVE`).
    pub replaced: Vec<(String, UploadedFile)>,
    /// URIs now sent as `expired content`.
    pub expired: Vec<String>,
}

/// The check before every request: each `fileData` URI must be a File this session uploaded,
/// under this upstream identity, `ACTIVE` and not past its `expirationTime` minus the margin
/// (BC-20). One registry query for the whole conversation. This session's expired Files are
/// replaced ([`refresh`]: re-uploaded from the retained original); the rest — foreign,
/// unknown, gone for good — become `expired content`. A browser can never make the server use
/// someone else's File.
///
/// # Errors
/// [`AppError`] when the registry fails or a re-upload fails.
pub async fn precheck(
    state: &super::ServerState,
    session: &super::Session,
    request: &mut gemini::GenerateContentRequest,
) -> Result<Treated, AppError> {
    let mut uris: Vec<String> = request
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.file_data.as_ref().map(|f| f.file_uri.clone()))
        .collect();
    uris.sort();
    uris.dedup();
    let mut treated = Treated::default();
    if uris.is_empty() {
        return Ok(treated);
    }
    let rows = state.registry.find_many(&session.0, uris.clone()).await.map_err(registry_failed)?;
    let now = std::time::SystemTime::now();
    for uri in uris {
        match rows.get(&uri) {
            Some(row) if usable(state, row, now) => {}
            Some(row) => treat(state, row, request, &mut treated).await?,
            None => {
                replace_uri(request, &uri, None);
                treated.expired.push(uri);
            }
        }
    }
    Ok(treated)
}

/// Replaces this session's unusable File `row` in `request` by its stand-in, or by
/// `expired content` when there is none.
async fn treat(state: &super::ServerState, row: &FileRow, request: &mut gemini::GenerateContentRequest, treated: &mut Treated) -> Result<(), AppError> {
    match refresh(state, row).await? {
        Some(stand_in) => {
            replace_uri(request, &row.uri, Some(&stand_in.uri));
            treated.replaced.push((row.uri.clone(), stand_in.into()));
        }
        None => {
            replace_uri(request, &row.uri, None);
            treated.expired.push(row.uri.clone());
        }
    }
    Ok(())
}

/// The distinct `fileData` URIs in `request` naming File `id`.
fn uris_of(request: &gemini::GenerateContentRequest, id: &str) -> Vec<String> {
    let mut uris: Vec<String> = request
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.file_data.as_ref().map(|f| f.file_uri.clone()))
        .filter(|uri| crate::transcript::file_id_of(uri) == Some(id))
        .collect();
    uris.sort();
    uris.dedup();
    uris
}

/// Points every `fileData` part at `uri` to `to`, or makes it the text [`EXPIRED_CONTENT`].
fn replace_uri(request: &mut gemini::GenerateContentRequest, uri: &str, to: Option<&str>) {
    for part in request.contents.iter_mut().flat_map(|c| c.parts.iter_mut()) {
        let Some(file) = part.file_data.as_mut().filter(|f| f.file_uri == uri) else { continue };
        match to {
            Some(to) => file.file_uri = to.to_string(),
            None => *part = gemini::Part::text(EXPIRED_CONTENT),
        }
    }
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
    fn only_the_named_file_is_replaced() {
        let file = |id: &str| Part {
            file_data: Some(FileData { mime_type: "application/pdf".into(), file_uri: format!("https://x/v1beta/files/{id}") }),
            ..Part::default()
        };
        let contents = vec![Content { role: Role::User, parts: vec![file("aaa"), file("bbb"), file("aaa"), file("ccc"), Part::text("hi")] }];
        let mut request = to_gemini(&contents);
        assert_eq!(uris_of(&request, "aaa"), vec!["https://x/v1beta/files/aaa".to_string()]);
        assert!(uris_of(&request, "zzz").is_empty());
        replace_uri(&mut request, "https://x/v1beta/files/aaa", None);
        replace_uri(&mut request, "https://x/v1beta/files/ccc", Some("https://x/v1beta/files/ddd"));
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json.matches("expired content").count(), 2);
        assert!(json.contains("files/bbb") && json.contains("files/ddd") && !json.contains("files/ccc"));
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
