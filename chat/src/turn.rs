//! One chat turn, as named steps ([`Engine::turn`]): the page's summary put in place of the
//! turns it covers and the request made (`prepare`), the Files checked and the expired ones
//! replaced ([`precheck`]), the conversation fitted into the context budget
//! ([`crate::summary::fit`]), its files sent from a context cache ([`crate::caching::apply`]),
//! then sent — and, when Gemini refuses, the one fallback its refusal calls for ([`Fallback`],
//! decided by [`fallback_for`] alone) — and the answer's events ([`Answer`]).

use std::collections::{BTreeSet, HashMap};

use futures::{stream, StreamExt};
use parley_protocol::model::{
    CacheState, ChatEvent, ChatOptions, Content, ModalityTokens, Part, UploadedFile, Usage,
    EXPIRED_CONTENT,
};
use parley_store::{FileRow, FileState};

use crate::{
    budget::{Charge, Meter},
    ChatError, ClientAddress, Engine, Principal,
};

/// What a turn gives back: the notices for the page (Files replaced or expired, a new summary,
/// what the cache did), then the answer's events as Gemini streams them.
pub struct Answer {
    notices: Vec<ChatEvent>,
    upstream: gemini::SseStream,
    slot: crate::slots::UpstreamSlot,
    received: std::time::Instant,
    meter: Meter,
}

impl Answer {
    /// Every event of the turn, in order; an error (Gemini failed mid-answer, or the answer was
    /// cut short) ends it.
    pub fn events(self) -> impl futures::Stream<Item = Result<ChatEvent, ChatError>> + Send {
        let Answer { notices, upstream, slot, received, meter } = self;
        stream::iter(notices.into_iter().map(Ok))
            .chain(answer_events(upstream, slot, received, meter))
    }
}

/// What a refusal of the request as it was sent calls for — the whole fallback tree ("cache
/// gone" × "403 File" × retry) as one type, decided by [`fallback_for`] from the refusal alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Report the refusal as it is (a second 403 is the real cause: billing and key problems
    /// give the same text, `403-retried-once`); when `forget_cache`, the cache the request named
    /// is deleted and forgotten first.
    Report {
        /// Whether the request's cache is forgotten before reporting.
        forget_cache: bool,
    },
    /// The cache is gone (expired, deleted): forget it and send the files instead, once.
    WithoutCache,
    /// The cached request named Files Gemini no longer gives access to: forget the cache, treat
    /// those Files (re-uploaded, else `expired content`) and send the files, once.
    WithoutCacheOrFiles(Vec<String>),
    /// Files of this conversation Gemini no longer gives access to (either form of the File id,
    /// `403-names-the-file-both-ways`): treat them and send once more.
    WithoutFiles(Vec<String>),
}

/// The fallback for Gemini's refusal `error` of a request whose files, without any cache, are
/// `plain`'s; `cached` when the request named a cache.
pub fn fallback_for(
    error: &gemini::Error,
    plain: &gemini::GenerateContentRequest,
    cached: bool,
) -> Fallback {
    let named = error.inaccessible_file_id().map(|id| uris_of(plain, id)).unwrap_or_default();
    match (cached, error.is_cache_gone(), error.inaccessible_file_id().is_some()) {
        (true, true, _) => Fallback::WithoutCache,
        (true, false, true) if named.is_empty() => Fallback::Report { forget_cache: true },
        (true, false, true) => Fallback::WithoutCacheOrFiles(named),
        (false, _, true) if !named.is_empty() => Fallback::WithoutFiles(named),
        _ => Fallback::Report { forget_cache: false },
    }
}

/// The request for `contents` with the page's `summary` in place, and the conversation as it
/// came (what digests are made of) — on the blocking pool: a request may hold tens of thousands
/// of parts.
async fn prepare(
    engine: &Engine,
    contents: Vec<Content>,
    summary: Option<parley_protocol::model::Summary>,
) -> Result<
    (gemini::GenerateContentRequest, crate::summary::Conversation, BTreeSet<String>),
    ChatError,
> {
    let signer = engine.summary_signer.clone();
    off_workers(move || {
        let (request, conversation) =
            crate::summary::prepare(to_gemini(&contents), summary, &signer);
        let uris = file_uris(&request);
        (request, conversation, uris)
    })
    .await
}

impl Engine {
    /// One chat turn for `principal` at `address` with `model` (one of the allowed models, see
    /// [`crate::models::Models::choose`]; `received` is when the request arrived, for the
    /// metrics).
    ///
    /// The page's summary goes in first: the Files of the turns it covers are not checked, not
    /// uploaded again and not sent. Then [`precheck`] makes every `fileData` part usable or
    /// `expired content`, the conversation is fitted into the context budget, and with "Cache
    /// files" on its files are sent from a context cache. A refusal gets the fallback
    /// [`fallback_for`] decides.
    ///
    /// # Errors
    /// [`ChatError::BadRequest`] for an empty conversation, too many Files, a turn past the
    /// model's limit; [`ChatError::Busy`] without a slot towards Gemini in time; Gemini's
    /// refusal ([`ChatError::RefusedAfterRetry`] once the fallback was tried); the store's and
    /// the Files' failures.
    pub async fn turn(
        &self,
        principal: &Principal,
        address: &ClientAddress,
        model: &str,
        contents: Vec<Content>,
        options: ChatOptions,
        received: std::time::Instant,
    ) -> Result<Answer, ChatError> {
        let (request, conversation, uris) = prepare(self, contents, options.summary).await?;
        if request.contents.is_empty() {
            return Err(ChatError::BadRequest("the conversation is empty.".into()));
        }
        check_file_count(&uris)?;
        // A spent budget is refused before anything is asked of Gemini.
        let charge = self.budgets.charge_for(principal, address).await?;
        self.budgets.check(&charge).await?;
        let slot = self.slot(principal, address).await?;
        let (mut request, mut treated) = precheck(self, principal, request, uris).await?;
        let mut notices = Vec::new();
        let fitted =
            crate::summary::fit(self, principal, &charge, model, &mut request, &conversation)
                .await?;
        drop(conversation);
        if let Some(summary) = fitted.new_summary {
            notices.push(ChatEvent::Summarized { summary });
        }
        let (mut prompt_tokens, bound) =
            self.prompt_tokens(&charge, model, &request, fitted.tokens).await;
        let mut uncached = None;
        if let Some(policy) = self.caching.as_ref().filter(|_| options.cache_files) {
            let replaced: Vec<String> =
                treated.replaced.iter().map(|(old, _)| old.clone()).collect();
            if !replaced.is_empty() {
                crate::caching::delete_holding(self, principal, &replaced).await?;
            }
            let before = request.clone();
            let cache = crate::caching::apply(
                self,
                policy,
                (principal, address, &charge),
                model,
                &mut request,
            )
            .await;
            if request.cached_content.is_some() {
                uncached = Some(before);
            }
            notices.push(ChatEvent::Cache { cache });
        }
        let gemini = self.files.gemini();
        let output_limit = self.models.output_token_limit(gemini, model).await;
        let output_limit = output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT);
        let held = match self.budgets.reserve(&charge, model, prompt_tokens, output_limit).await {
            // Where the budget binds, a text's bytes would cap the answer short of what is
            // left (or refuse it): its real count decides instead.
            Ok(Some(held)) if bound && held.max_output_tokens < output_limit => {
                self.budgets.release(held).await;
                prompt_tokens = self.count_prompt(model, &request).await;
                self.budgets.reserve(&charge, model, prompt_tokens, output_limit).await?
            }
            Err(ChatError::BudgetSpent(_)) if bound => {
                prompt_tokens = self.count_prompt(model, &request).await;
                self.budgets.reserve(&charge, model, prompt_tokens, output_limit).await?
            }
            held => held?,
        };
        if let Some(held) = &held {
            for request in std::iter::once(&mut request).chain(uncached.as_mut()) {
                request.generation_config = Some(gemini::GenerationConfig {
                    max_output_tokens: Some(held.max_output_tokens),
                });
            }
        }
        let meter = Meter::new(self.budgets.clone(), charge, held, model, prompt_tokens);
        let sending = Sending { engine: self, principal, model };
        let upstream = match sending.send(&mut request, uncached, &mut treated, &mut notices).await
        {
            Ok(upstream) => upstream,
            Err(e) => {
                // Refused: nothing was spent; the hold is given back.
                meter.cancel().await;
                return Err(e);
            }
        };
        metrics::counter!("parley_expired_content_total").increment(treated.expired.len() as u64);
        let files = treated
            .replaced
            .into_iter()
            .map(|(old_uri, file)| ChatEvent::Replaced { old_uri, file })
            .chain(treated.expired.into_iter().map(|file_uri| ChatEvent::Expired { file_uri }));
        let notices: Vec<ChatEvent> = files.chain(notices).collect();
        Ok(Answer { notices, upstream, slot, received, meter })
    }

    /// The prompt's tokens for a reservation, and whether they are only a bound: as counted
    /// while fitting, else — when a budget applies — a short text's bytes (a bound), or
    /// counted now ([`Engine::count_prompt`]). 0 when no budget applies.
    async fn prompt_tokens(
        &self,
        charge: &Charge,
        model: &str,
        request: &gemini::GenerateContentRequest,
        counted: Option<u64>,
    ) -> (u64, bool) {
        if let Some(tokens) = counted {
            return (tokens, false);
        }
        if !charge.is_limited() {
            return (0, false);
        }
        // Short text alone is bounded by its bytes without asking Gemini.
        if let Some(bound) =
            crate::summary::text_only_bound(request).filter(|b| *b <= TEXT_BOUND_ENOUGH)
        {
            return (bound, true);
        }
        (self.count_prompt(model, request).await, false)
    }

    /// `request`'s tokens as Gemini counts them (`countTokens` is free); when it cannot, the
    /// text's bytes and [`FILE_ALLOWANCE`] per File (at most what the model takes).
    async fn count_prompt(&self, model: &str, request: &gemini::GenerateContentRequest) -> u64 {
        let gemini = self.files.gemini();
        match gemini.count_tokens(model, request).await {
            Ok(count) => count.total_tokens,
            Err(e) => {
                // Often a File Gemini no longer has, which the send step replaces: not an
                // error of its own. The text's bytes and an allowance per File stand in.
                tracing::info!(error = %e, "countTokens failed: the prompt is reckoned instead");
                let files = file_uris(request).len() as u64;
                let text: u64 = request
                    .contents
                    .iter()
                    .flat_map(|c| c.parts.iter())
                    .filter_map(|p| p.text.as_ref().map(|t| t.len() as u64 + 8))
                    .sum();
                let most = self.models.input_token_limit(gemini, model).await.unwrap_or(1 << 20);
                (text + files * FILE_ALLOWANCE).min(most)
            }
        }
    }
}

/// The tokens a File is reckoned at when Gemini cannot count a prompt (a 250-page PDF's,
/// at 258 tokens a page).
const FILE_ALLOWANCE: u64 = 65_536;

/// Up to this many tokens, a text-only prompt is reserved at its byte count (an upper bound
/// of its tokens) instead of being counted by Gemini.
const TEXT_BOUND_ENOUGH: u64 = 8192;

/// The `maxOutputTokens` a reservation assumes when `models.get` does not say, tokens (the
/// largest of the Gemini 2.5 and 3 models).
const DEFAULT_OUTPUT_LIMIT: u64 = 65_536;

/// The send step of one turn: who, with which model.
struct Sending<'a> {
    engine: &'a Engine,
    principal: &'a Principal,
    model: &'a str,
}

impl Sending<'_> {
    /// Sends `request` (`uncached`: the same without its cache, when it names one) and, when
    /// Gemini refuses, follows the [`Fallback`] the refusal calls for.
    async fn send(
        &self,
        request: &mut gemini::GenerateContentRequest,
        uncached: Option<gemini::GenerateContentRequest>,
        treated: &mut Treated,
        notices: &mut Vec<ChatEvent>,
    ) -> Result<gemini::SseStream, ChatError> {
        let gemini = &self.engine.files.gemini();
        let error = match gemini.stream_generate_content(self.model, request).await {
            Ok(upstream) => return Ok(upstream),
            Err(error) => error,
        };
        let cache = request.cached_content.clone();
        let fallback = fallback_for(&error, uncached.as_ref().unwrap_or(request), cache.is_some());
        tracing::info!(?fallback, "Gemini refused the request");
        let forget_cache = matches!(
            fallback,
            Fallback::Report { forget_cache: true }
                | Fallback::WithoutCache
                | Fallback::WithoutCacheOrFiles(_)
        );
        if let (true, Some(name)) = (forget_cache, &cache) {
            crate::caching::forget_one(self.engine, self.principal, name).await;
        }
        if let (true, Some(plain)) = (forget_cache, uncached) {
            *request = plain;
            notices.retain(|n| !matches!(n, ChatEvent::Cache { .. }));
            let reason = "the cache could no longer be used; the files were sent instead.";
            notices.push(ChatEvent::Cache { cache: CacheState::Failed { reason: reason.into() } });
        }
        let named = match fallback {
            Fallback::Report { .. } => return Err(ChatError::RefusedAfterRetry(error)),
            Fallback::WithoutCache => Vec::new(),
            Fallback::WithoutCacheOrFiles(named) | Fallback::WithoutFiles(named) => named,
        };
        crate::count_upstream_error(&error);
        if !named.is_empty() {
            self.take_out(request, treated, named).await?;
        }
        gemini
            .stream_generate_content(self.model, request)
            .await
            .map_err(ChatError::RefusedAfterRetry)
    }

    /// Treats the Files at `named` as gone (marked expired, then re-uploaded from their retained
    /// original, else `expired content`) and puts their stand-ins in `request`.
    async fn take_out(
        &self,
        request: &mut gemini::GenerateContentRequest,
        treated: &mut Treated,
        named: Vec<String>,
    ) -> Result<(), ChatError> {
        tracing::info!(files = ?named, "Gemini says files are gone: treating them and asking once more");
        let store = &self.engine.files.store();
        let rows = store.find_many(&self.principal.owner(), named.clone()).await?;
        let mut substitutes = Substitutes::new();
        for uri in named {
            match rows.get(&uri) {
                Some(row) => {
                    store.set_state(&row.owner, &row.uri, FileState::Expired).await?;
                    treat(self.engine, row, &mut substitutes, treated).await?;
                }
                None => {
                    substitutes.insert(uri.clone(), None);
                    treated.expired.push(uri);
                }
            }
        }
        substitute(request, &substitutes);
        Ok(())
    }
}

/// The page's record of an uploaded File, from the store's.
pub fn uploaded(row: FileRow) -> UploadedFile {
    UploadedFile {
        name: row.name,
        uri: row.uri,
        mime_type: row.mime_type,
        size_bytes: row.size_bytes,
        sha256: row.sha256,
        expiration_time: row.expiration_time,
        display_name: row.display_name,
    }
}

/// The answer's events, chunk by chunk: `delta`s of its visible text, a `signature` for each
/// `thoughtSignature`, then `usage` (the last `usageMetadata`), the call settled by its
/// `meter` (and `budget`, what is left), and `done` — or an error, which ends it (the meter,
/// dropped, settles to what arrived). The upstream slot is held until the stream ends.
fn answer_events(
    upstream: gemini::SseStream,
    slot: crate::slots::UpstreamSlot,
    received: std::time::Instant,
    meter: Meter,
) -> impl futures::Stream<Item = Result<ChatEvent, ChatError>> + Send {
    struct Answer {
        upstream: gemini::SseStream,
        finished: bool,
        usage: Option<gemini::UsageMetadata>,
        /// Settled when the answer completes; dropped (settled to what arrived) otherwise.
        meter: Option<Meter>,
        _slot: crate::slots::UpstreamSlot,
        watch: StreamWatch,
    }
    let answer = Answer {
        upstream,
        finished: false,
        usage: None,
        meter: Some(meter),
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
                if let Some(meter) = answer.meter.as_mut() {
                    meter.received(text.chars().count(), chunk.usage_metadata.as_ref());
                }
                if !text.is_empty() {
                    answer.watch.token();
                    events.push(Ok(ChatEvent::Delta { text }));
                }
                for signature in parts.iter().filter_map(|p| p.thought_signature.clone()) {
                    events.push(Ok(ChatEvent::Signature { thought_signature: signature }));
                }
                if chunk.usage_metadata.is_some() {
                    answer.usage = chunk.usage_metadata.clone();
                }
                if let Some(finish) = chunk.finish_reason().map(str::to_string) {
                    answer.finished = true;
                    if let Some(usage) = answer.usage.take() {
                        events.push(Ok(ChatEvent::Usage { usage: usage_of(&usage) }));
                    }
                    if let Some(meter) = answer.meter.take() {
                        if let Some(budget) = meter.finish().await {
                            events.push(Ok(ChatEvent::Budget { left: budget }));
                        }
                    }
                    events.push(Ok(ChatEvent::Done { finish_reason: Some(finish) }));
                }
                events
            }
            Some(Err(e)) => {
                answer.finished = true;
                vec![Err(ChatError::from(e))]
            }
            None => {
                answer.finished = true;
                let cut = "the answer stopped before it was complete";
                vec![Err(gemini::Error::Protocol(cut.into()).into())]
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
        prompt_tokens_details: usage
            .prompt_tokens_details
            .iter()
            .map(|d| ModalityTokens {
                modality: d.modality.as_str().to_string(),
                token_count: d.token_count,
            })
            .collect(),
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
/// 10 a message), low enough that checking them is cheap. More get [`ChatError::BadRequest`].
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
/// use someone else's File. `uris` are `request`'s ([`file_uris`]); the request comes back with
/// the stand-ins in place. [`Engine::turn`] runs this; so does the benchmark.
///
/// # Errors
/// [`ChatError::BadRequest`] for more than [`MAX_FILES_PER_REQUEST`] distinct Files;
/// [`ChatError`] when the store fails or a re-upload fails.
pub async fn precheck(
    engine: &Engine,
    principal: &Principal,
    request: gemini::GenerateContentRequest,
    uris: BTreeSet<String>,
) -> Result<(gemini::GenerateContentRequest, Treated), ChatError> {
    check_file_count(&uris)?;
    let (substitutes, treated) = treat_all(engine, principal, uris).await?;
    if substitutes.is_empty() {
        return Ok((request, treated));
    }
    let mut request = request;
    let request = off_workers(move || {
        substitute(&mut request, &substitutes);
        request
    })
    .await?;
    Ok((request, treated))
}

/// Runs CPU-bound work on tokio's blocking pool, off the async workers.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ChatError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "a blocking task failed");
        ChatError::Internal("prepare the request".into())
    })
}

/// Refuses more than [`MAX_FILES_PER_REQUEST`] distinct Files.
fn check_file_count(uris: &BTreeSet<String>) -> Result<(), ChatError> {
    if uris.len() > MAX_FILES_PER_REQUEST {
        return Err(ChatError::BadRequest(format!(
            "the conversation refers to {} files; at most {MAX_FILES_PER_REQUEST} can be sent at once.",
            uris.len()
        )));
    }
    Ok(())
}

/// What stands in for each of `uris` that this session cannot send as it is (see
/// [`precheck`]).
async fn treat_all(
    engine: &Engine,
    principal: &Principal,
    uris: BTreeSet<String>,
) -> Result<(Substitutes, Treated), ChatError> {
    let mut treated = Treated::default();
    if uris.is_empty() {
        return Ok((Substitutes::new(), treated));
    }
    let rows =
        engine.files.store().find_many(&principal.owner(), uris.iter().cloned().collect()).await?;
    let now = std::time::SystemTime::now();
    let mut substitutes = Substitutes::new();
    for uri in uris {
        match rows.get(&uri) {
            Some(row) if engine.files.usable(row, now) => {}
            Some(row) => treat(engine, row, &mut substitutes, &mut treated).await?,
            None => {
                substitutes.insert(uri.clone(), None);
                treated.expired.push(uri);
            }
        }
    }
    Ok((substitutes, treated))
}

/// The distinct `fileData` URIs of `request`, in one pass (CPU work over every part: off the
/// async workers for a big request).
pub fn file_uris(request: &gemini::GenerateContentRequest) -> BTreeSet<String> {
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
    engine: &Engine,
    row: &FileRow,
    substitutes: &mut Substitutes,
    treated: &mut Treated,
) -> Result<(), ChatError> {
    match engine.files.refresh(row).await? {
        Some(stand_in) => {
            substitutes.insert(row.uri.clone(), Some(stand_in.uri.clone()));
            treated.replaced.push((row.uri.clone(), uploaded(stand_in)));
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
        .filter(|uri| parley_protocol::transcript::file_id_of(uri) == Some(id))
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

/// A part Gemini is sent ([`Part::is_sent`]) as Gemini's own.
fn to_gemini_part(part: &Part) -> gemini::Part {
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

    fn refusal(code: u16, message: &str) -> gemini::Error {
        gemini::Error::Api {
            code,
            status: "PERMISSION_DENIED".into(),
            message: message.into(),
            retry_after: None,
        }
    }

    fn about(ids: &[&str]) -> gemini::GenerateContentRequest {
        let parts = ids
            .iter()
            .map(|id| {
                gemini::Part::file(
                    "application/pdf",
                    format!("https://generativelanguage.googleapis.com/v1beta/files/{id}"),
                )
            })
            .collect();
        gemini::GenerateContentRequest {
            contents: vec![gemini::Content { role: Some("user".into()), parts }],
            ..Default::default()
        }
    }

    #[test]
    fn every_branch_of_the_fallback_tree() {
        let gone_file = |id: &str| {
            refusal(
                403,
                &format!("You do not have permission to access the File {id} or it may not exist."),
            )
        };
        let gone_cache = refusal(403, "CachedContent not found (or permission denied)");
        let plain = about(&["aaa", "bbb"]);
        let aaa = "https://generativelanguage.googleapis.com/v1beta/files/aaa".to_string();
        // Uncached: a File of this conversation (either form of its id) is taken out, once.
        assert_eq!(
            fallback_for(&gone_file("aaa"), &plain, false),
            Fallback::WithoutFiles(vec![aaa.clone()])
        );
        assert_eq!(
            fallback_for(&gone_file("files/aaa"), &plain, false),
            Fallback::WithoutFiles(vec![aaa.clone()])
        );
        // A File the conversation does not hold: billing and keys say the same; report it.
        assert_eq!(
            fallback_for(&gone_file("zzz"), &plain, false),
            Fallback::Report { forget_cache: false }
        );
        // Cached: a gone cache is forgotten and the files sent.
        assert_eq!(fallback_for(&gone_cache, &plain, true), Fallback::WithoutCache);
        // Cached, a File gone: the cache and then the File.
        assert_eq!(
            fallback_for(&gone_file("aaa"), &plain, true),
            Fallback::WithoutCacheOrFiles(vec![aaa])
        );
        assert_eq!(
            fallback_for(&gone_file("zzz"), &plain, true),
            Fallback::Report { forget_cache: true }
        );
        // Anything else is reported as it is, the cache kept.
        let busy = refusal(500, "Internal error");
        assert_eq!(fallback_for(&busy, &plain, true), Fallback::Report { forget_cache: false });
        assert_eq!(fallback_for(&busy, &plain, false), Fallback::Report { forget_cache: false });
        assert_eq!(
            fallback_for(&gone_cache, &plain, false),
            Fallback::Report { forget_cache: false }
        );
    }
    use parley_protocol::model::{FileData, InlineData, Role};

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
