//! `chat`: the conversation to `streamGenerateContent`, the answer back as NDJSON lines.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use futures::{stream, StreamExt};
use leptos::server_fn::codec::ByteStream;
use parley_store::{FileRow, FileState};

use super::{
    errors::{from_gemini, OrApp},
    state,
};
use crate::{
    error::AppError,
    model::{CacheState, ChatEvent, ChatOptions, Content, UploadedFile, Usage, EXPIRED_CONTENT},
};

/// See [`crate::api::chat`].
///
/// Before the request, [`precheck`] makes every `fileData` part usable or `expired content`;
/// then the conversation is fitted into the context budget ([`super::summary::fit`]) and, with
/// "Cache files" on, its files are sent from a context cache ([`super::caching::apply`]).
/// When Gemini still answers 403 "You do not have permission to access the File X…" and X
/// is a File of this conversation (either form of X, `403-names-the-file-both-ways`), X gets the
/// same treatment — re-uploaded from its retained original, else `expired content` — and the
/// request goes again, once. A second 403, or one naming a File the conversation does not hold, is
/// the real cause (billing and key problems give the same text, `403-retried-once`) and is reported
/// as it is. A cache Gemini no longer has is forgotten and the request sent once without it.
pub async fn chat(
    contents: Vec<Content>,
    options: ChatOptions,
) -> Result<ByteStream<AppError>, AppError> {
    let received = std::time::Instant::now();
    let state = state()?;
    let principal = super::principal()?;
    let model = state.models.choose(options.model.as_deref())?;
    // A dearer model counts as more requests: the rate limiter took one already.
    let weight = state.models.weight(&model);
    if let (true, Some(allowance)) = (weight > 1, super::chat_allowance()) {
        allowance.0.take(weight - 1).await?;
    }
    // Passes over every part run on the blocking pool: a request may hold tens of thousands.
    // The page's summary goes in first: the Files of the turns it covers are not checked, not
    // uploaded again and not sent.
    let signer = state.summary_signer.clone();
    let (mut request, conversation, uris) = off_workers(move || {
        let (request, conversation) =
            super::summary::prepare(to_gemini(&contents), options.summary, &signer);
        let uris = file_uris(&request);
        (request, conversation, uris)
    })
    .await?;
    if request.contents.is_empty() {
        return Err(AppError::BadRequest("the conversation is empty.".into()));
    }
    check_file_count(&uris)?;
    let slot = super::upstream_slot(&state).await?;
    let (substitutes, mut treated) = treat_all(&state, &principal, uris).await?;
    if !substitutes.is_empty() {
        request = off_workers(move || {
            substitute(&mut request, &substitutes);
            request
        })
        .await?;
    }
    let mut notices = Vec::new();
    let fitted =
        super::summary::fit(&state, &principal, &model, &mut request, &conversation).await?;
    drop(conversation);
    if let Some(summary) = fitted.new_summary {
        notices.push(ChatEvent::Summarized { summary });
    }
    let mut uncached = None;
    if let Some(policy) = state.caching.as_ref().filter(|_| options.cache_files) {
        let replaced: Vec<String> = treated.replaced.iter().map(|(old, _)| old.clone()).collect();
        if !replaced.is_empty() {
            super::caching::delete_holding(&state, &principal, &replaced).await?;
        }
        let before = request.clone();
        let cache = super::caching::apply(&state, policy, &principal, &model, &mut request).await;
        if request.cached_content.is_some() {
            uncached = Some(before);
        }
        notices.push(ChatEvent::Cache { cache });
    }
    let gemini = &state.files.gemini;
    let upstream = match gemini.stream_generate_content(&model, &request).await {
        Ok(upstream) => upstream,
        Err(e) => {
            // A cache Gemini no longer has, or one holding a File it no longer gives access to:
            // the cache is deleted and forgotten, and the request goes with its files.
            let cached = request.cached_content.take();
            if let (Some(name), Some(plain)) = (cached, uncached.take()) {
                if e.is_cache_gone() || e.inaccessible_file_id().is_some() {
                    super::errors::count_upstream_error(&e);
                    tracing::info!("the context cache cannot be used: sending the files instead");
                    super::caching::forget_one(&state, &principal, &name).await;
                    request = plain;
                    notices.retain(|n| !matches!(n, ChatEvent::Cache { .. }));
                    notices.push(ChatEvent::Cache {
                        cache: CacheState::Failed {
                            reason:
                                "the cache could no longer be used; the files were sent instead."
                                    .into(),
                        },
                    });
                    if e.is_cache_gone() {
                        gemini
                            .stream_generate_content(&model, &request)
                            .await
                            .map_err(super::errors::refused_after_retry)?
                    } else {
                        retry_without_gone_files(
                            &state,
                            &principal,
                            &model,
                            &mut request,
                            &mut treated,
                            e,
                        )
                        .await?
                    }
                } else {
                    return Err(super::errors::refused_after_retry(e));
                }
            } else {
                retry_without_gone_files(&state, &principal, &model, &mut request, &mut treated, e)
                    .await?
            }
        }
    };
    metrics::counter!("parley_expired_content_total").increment(treated.expired.len() as u64);
    let files = treated
        .replaced
        .into_iter()
        .map(|(old_uri, file)| ChatEvent::Replaced { old_uri, file })
        .chain(treated.expired.into_iter().map(|file_uri| ChatEvent::Expired { file_uri }));
    let notices: Vec<ChatEvent> = files.chain(notices).collect();
    let lines = stream::iter(notices).chain(answer_events(upstream, slot, received)).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("ChatEvent serializes");
        line.push(b'\n');
        Ok::<_, AppError>(Bytes::from(line))
    });
    Ok(ByteStream::new(lines))
}

/// After a 403 naming File X: when X is a File of this conversation (either form of X), it is
/// treated — re-uploaded from its retained original, else `expired content` — and the request
/// goes again, once; otherwise Gemini's refusal is the answer.
async fn retry_without_gone_files(
    state: &super::ServerState,
    principal: &super::Principal,
    model: &str,
    request: &mut gemini::GenerateContentRequest,
    treated: &mut Treated,
    e: gemini::Error,
) -> Result<gemini::SseStream, AppError> {
    let named = e.inaccessible_file_id().map(|id| uris_of(request, id)).unwrap_or_default();
    if named.is_empty() {
        // Not a File of this conversation: re-sending cannot help; say what Gemini said.
        return Err(super::errors::refused_after_retry(e));
    }
    super::errors::count_upstream_error(&e);
    tracing::info!(files = ?named, "Gemini says files are gone: treating them and asking once more");
    let rows = state.files.store.find_many(&principal.owner(), named.clone()).await.or_app()?;
    let mut substitutes = Substitutes::new();
    for uri in named {
        match rows.get(&uri) {
            Some(row) => {
                state
                    .files
                    .store
                    .set_state(&row.owner, &row.uri, FileState::Expired)
                    .await
                    .or_app()?;
                treat(state, row, &mut substitutes, treated).await?;
            }
            None => {
                substitutes.insert(uri.clone(), None);
                treated.expired.push(uri);
            }
        }
    }
    substitute(request, &substitutes);
    state
        .files
        .gemini
        .stream_generate_content(model, request)
        .await
        .map_err(super::errors::refused_after_retry)
}

/// The answer's events, chunk by chunk: `delta`s of its visible text, a `signature` for each
/// `thoughtSignature`, then `usage` (the last `usageMetadata`) and `done` — or an `error`. The
/// upstream slot is held until the stream ends.
fn answer_events(
    upstream: gemini::SseStream,
    slot: super::slots::UpstreamSlot,
    received: std::time::Instant,
) -> impl futures::Stream<Item = ChatEvent> + Send {
    struct Answer {
        upstream: gemini::SseStream,
        finished: bool,
        usage: Option<gemini::UsageMetadata>,
        _slot: super::slots::UpstreamSlot,
        watch: StreamWatch,
    }
    let answer = Answer {
        upstream,
        finished: false,
        usage: None,
        _slot: slot,
        watch: StreamWatch::start(received),
    };
    stream::unfold(answer, |mut answer| async move {
        if answer.finished {
            return None;
        }
        let events = match answer.upstream.next().await {
            Some(Ok(chunk)) => {
                let mut events = Vec::new();
                let parts = chunk
                    .candidates
                    .first()
                    .and_then(|c| c.content.as_ref())
                    .map(|c| c.parts.as_slice())
                    .unwrap_or_default();
                let text: String = parts
                    .iter()
                    .filter(|p| p.thought != Some(true))
                    .filter_map(|p| p.text.as_deref())
                    .collect();
                if !text.is_empty() {
                    answer.watch.token();
                    events.push(ChatEvent::Delta { text });
                }
                for signature in parts.iter().filter_map(|p| p.thought_signature.clone()) {
                    events.push(ChatEvent::Signature { thought_signature: signature });
                }
                if chunk.usage_metadata.is_some() {
                    answer.usage = chunk.usage_metadata.clone();
                }
                if let Some(finish) = chunk.finish_reason().map(str::to_string) {
                    answer.finished = true;
                    if let Some(usage) = answer.usage.take() {
                        events.push(ChatEvent::Usage { usage: usage_of(&usage) });
                    }
                    events.push(ChatEvent::Done { finish_reason: Some(finish) });
                }
                events
            }
            Some(Err(e)) => {
                answer.finished = true;
                vec![ChatEvent::Error { error: from_gemini(e, None) }]
            }
            None => {
                answer.finished = true;
                let error = AppError::Upstream {
                    code: 502,
                    message: "the answer stopped before it was complete".into(),
                };
                vec![ChatEvent::Error { error }]
            }
        };
        Some((stream::iter(events), answer))
    })
    .flatten()
}

/// The page's [`Usage`] from Gemini's `usageMetadata`.
fn usage_of(usage: &gemini::UsageMetadata) -> Usage {
    Usage {
        prompt_token_count: usage.prompt_token_count,
        candidates_token_count: usage.candidates_token_count,
        cached_content_token_count: usage.cached_content_token_count,
        thoughts_token_count: usage.thoughts_token_count,
        total_token_count: usage.total_token_count,
    }
}

/// The metrics of one answer stream: `parley_chat_streams_in_flight` while it lives,
/// `parley_chat_first_token_seconds` (from the request's arrival to the first text) and
/// `parley_chat_stream_seconds` (to its end, or to the browser going away) when it ends.
struct StreamWatch {
    received: std::time::Instant,
    first_token: bool,
}

impl StreamWatch {
    fn start(received: std::time::Instant) -> Self {
        metrics::gauge!("parley_chat_streams_in_flight").increment(1.0);
        StreamWatch { received, first_token: false }
    }

    /// Text arrived.
    fn token(&mut self) {
        if !self.first_token {
            self.first_token = true;
            metrics::histogram!("parley_chat_first_token_seconds")
                .record(self.received.elapsed().as_secs_f64());
        }
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        metrics::gauge!("parley_chat_streams_in_flight").decrement(1.0);
        metrics::histogram!("parley_chat_stream_seconds")
            .record(self.received.elapsed().as_secs_f64());
    }
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

/// Most distinct Files one request may name: far above any real conversation (Parley takes
/// 10 a message), low enough that checking them is cheap. More get [`AppError::BadRequest`].
pub const MAX_FILES_PER_REQUEST: usize = 500;

/// What a File URI of the request becomes: another URI, or (`None`) the text
/// [`EXPIRED_CONTENT`].
type Substitutes = HashMap<String, Option<String>>;

/// The check before every request: each `fileData` URI must be a File this session uploaded,
/// under this upstream identity, `ACTIVE` and not past its `expirationTime` minus the margin
/// (`expiry-from-the-file`). One store query for the whole conversation, one pass over its parts
/// to collect the URIs and one to put substitutes in. This session's expired Files are replaced
/// ([`parley_files::Lifecycle::refresh`]: re-uploaded from the retained original); the rest —
/// foreign, unknown, gone for good — become `expired content`. A browser can never make the server
/// use someone else's File.
///
/// # Errors
/// [`AppError::BadRequest`] for more than [`MAX_FILES_PER_REQUEST`] distinct Files;
/// [`AppError`] when the store fails or a re-upload fails.
pub async fn precheck(
    state: &super::ServerState,
    principal: &super::Principal,
    request: &mut gemini::GenerateContentRequest,
) -> Result<Treated, AppError> {
    let uris = file_uris(request);
    check_file_count(&uris)?;
    let (substitutes, treated) = treat_all(state, principal, uris).await?;
    substitute(request, &substitutes);
    Ok(treated)
}

/// Runs CPU-bound work on tokio's blocking pool, off the async workers.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "a blocking task failed");
        AppError::Internal("it could not prepare the request".into())
    })
}

/// Refuses more than [`MAX_FILES_PER_REQUEST`] distinct Files.
fn check_file_count(uris: &BTreeSet<String>) -> Result<(), AppError> {
    if uris.len() > MAX_FILES_PER_REQUEST {
        return Err(AppError::BadRequest(format!(
            "the conversation refers to {} files; at most {MAX_FILES_PER_REQUEST} can be sent at once.",
            uris.len()
        )));
    }
    Ok(())
}

/// What stands in for each of `uris` that this session cannot send as it is (see
/// [`precheck`]).
async fn treat_all(
    state: &super::ServerState,
    principal: &super::Principal,
    uris: BTreeSet<String>,
) -> Result<(Substitutes, Treated), AppError> {
    let mut treated = Treated::default();
    if uris.is_empty() {
        return Ok((Substitutes::new(), treated));
    }
    let rows = state
        .files
        .store
        .find_many(&principal.owner(), uris.iter().cloned().collect())
        .await
        .or_app()?;
    let now = std::time::SystemTime::now();
    let mut substitutes = Substitutes::new();
    for uri in uris {
        match rows.get(&uri) {
            Some(row) if state.files.usable(row, now) => {}
            Some(row) => treat(state, row, &mut substitutes, &mut treated).await?,
            None => {
                substitutes.insert(uri.clone(), None);
                treated.expired.push(uri);
            }
        }
    }
    Ok((substitutes, treated))
}

/// The distinct `fileData` URIs of `request`, in one pass.
fn file_uris(request: &gemini::GenerateContentRequest) -> BTreeSet<String> {
    request
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter_map(|p| p.file_data.as_ref().map(|f| f.file_uri.clone()))
        .collect()
}

/// Decides what stands in for this session's unusable File `row`: its stand-in's URI, or
/// `expired content` when there is none.
async fn treat(
    state: &super::ServerState,
    row: &FileRow,
    substitutes: &mut Substitutes,
    treated: &mut Treated,
) -> Result<(), AppError> {
    match state.files.refresh(row).await.or_app()? {
        Some(stand_in) => {
            substitutes.insert(row.uri.clone(), Some(stand_in.uri.clone()));
            treated.replaced.push((row.uri.clone(), super::uploaded(stand_in)));
        }
        None => {
            substitutes.insert(row.uri.clone(), None);
            treated.expired.push(row.uri.clone());
        }
    }
    Ok(())
}

/// The distinct `fileData` URIs in `request` naming File `id`.
fn uris_of(request: &gemini::GenerateContentRequest, id: &str) -> Vec<String> {
    file_uris(request)
        .into_iter()
        .filter(|uri| crate::transcript::file_id_of(uri) == Some(id))
        .collect()
}

/// Puts the substitutes in, in one pass over the parts: a `fileData` part whose URI has one
/// points at the new URI, or becomes the text [`EXPIRED_CONTENT`].
fn substitute(request: &mut gemini::GenerateContentRequest, substitutes: &Substitutes) {
    if substitutes.is_empty() {
        return;
    }
    for part in request.contents.iter_mut().flat_map(|c| c.parts.iter_mut()) {
        let Some(file) = part.file_data.as_mut() else { continue };
        match substitutes.get(&file.file_uri) {
            Some(Some(to)) => file.file_uri.clone_from(to),
            Some(None) => *part = gemini::Part::text(EXPIRED_CONTENT),
            None => {}
        }
    }
}

/// Gemini's request from the stored conversation: text, `file_data` and the model's
/// `thoughtSignature` parts only — the `inline_data` previews are for display and never leave
/// the server.
pub fn to_gemini(contents: &[Content]) -> gemini::GenerateContentRequest {
    let contents = contents
        .iter()
        .filter(|c| c.is_turn())
        .map(|c| gemini::Content {
            role: Some(c.role.as_str().to_string()),
            parts: c.parts.iter().filter(|p| p.is_sent()).map(to_gemini_part).collect(),
        })
        .collect();
    gemini::GenerateContentRequest { contents, ..Default::default() }
}

/// A part Gemini is sent ([`crate::model::Part::is_sent`]) as Gemini's own.
fn to_gemini_part(part: &crate::model::Part) -> gemini::Part {
    if let Some(fd) = &part.file_data {
        gemini::Part::file(&fd.mime_type, &fd.file_uri)
    } else if let Some(signature) = &part.thought_signature {
        // Sent back as it came, in the model's turn (its text may be empty).
        gemini::Part {
            text: Some(part.text.clone().unwrap_or_default()),
            thought_signature: Some(signature.clone()),
            ..Default::default()
        }
    } else {
        gemini::Part::text(part.text.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileData, InlineData, Part, Role};

    #[test]
    fn only_the_named_file_is_replaced() {
        let file = |id: &str| Part {
            file_data: Some(FileData {
                mime_type: "application/pdf".into(),
                file_uri: format!("https://x/v1beta/files/{id}"),
            }),
            ..Part::default()
        };
        let contents = vec![Content {
            role: Role::User,
            parts: vec![file("aaa"), file("bbb"), file("aaa"), file("ccc"), Part::text("hi")],
        }];
        let mut request = to_gemini(&contents);
        assert_eq!(uris_of(&request, "aaa"), vec!["https://x/v1beta/files/aaa".to_string()]);
        assert!(uris_of(&request, "zzz").is_empty());
        let substitutes = Substitutes::from([
            ("https://x/v1beta/files/aaa".to_string(), None),
            (
                "https://x/v1beta/files/ccc".to_string(),
                Some("https://x/v1beta/files/ddd".to_string()),
            ),
        ]);
        substitute(&mut request, &substitutes);
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json.matches("expired content").count(), 2);
        assert!(
            json.contains("files/bbb") && json.contains("files/ddd") && !json.contains("files/ccc")
        );
    }

    #[test]
    fn previews_never_reach_gemini() {
        let image = Part {
            inline_data: Some(InlineData { mime_type: "image/jpeg".into(), data: "AAAA".into() }),
            file_data: Some(FileData {
                mime_type: "image/jpeg".into(),
                file_uri: "https://x/v1beta/files/a".into(),
            }),
            ..Part::default()
        };
        let preview_only = Part {
            inline_data: Some(InlineData { mime_type: "image/jpeg".into(), data: "BBBB".into() }),
            ..Part::default()
        };
        let contents =
            vec![Content { role: Role::User, parts: vec![image, preview_only, Part::text("hi")] }];
        let json = serde_json::to_string(&to_gemini(&contents)).unwrap();
        assert_eq!(
            json,
            r#"{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/jpeg","fileUri":"https://x/v1beta/files/a"}},{"text":"hi"}]}]}"#
        );
    }
}
