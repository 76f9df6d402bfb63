//! Conversation summaries (the export format's `conversation_summaries`,
//! `docs/export-format.md`): when a request would send
//! more prompt tokens than the context budget, its oldest turns are said in a summary made
//! with one `generateContent` call, and the request sends the summary and the recent turns.
//! A summary is kept by the page and sent back with each request; it is reused while the turns
//! it covers are unchanged, and renewed (the old summary plus the next turns) only when the
//! budget is crossed again.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use parley_protocol::model::Summary;

use crate::{ChatError, Engine};

/// Signs the summaries the server makes and checks the ones pages send back
/// ([`Summary::signature`]): HMAC-SHA-256 under a key derived from the session secret, over
/// every field of the summary. Not bound to a session: a summary travels with its conversation
/// (export and import, another browser), and stands only for the turns whose digest it holds.
#[derive(Clone)]
pub struct Signer(Arc<[u8; 32]>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

impl Signer {
    /// A signer with `key` (32 bytes derived from the session secret, never the secret itself).
    pub fn new(key: [u8; 32]) -> Self {
        Signer(Arc::new(key))
    }

    fn mac(&self, summary: &Summary) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&*self.0).expect("HMAC takes any key");
        mac.update(b"parley summary v1\0");
        for field in [
            summary.turns.to_string().as_bytes(),
            summary.turns_sha256.as_bytes(),
            summary.text.as_bytes(),
            summary.created_at.as_bytes(),
            summary.model.as_bytes(),
            summary.tokens_before.to_string().as_bytes(),
            summary.tokens_after.to_string().as_bytes(),
        ] {
            // Each field with its length first: no two summaries share an encoding.
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }

    /// Sets `summary`'s signature.
    pub fn sign(&self, summary: &mut Summary) {
        summary.signature = hex::encode(self.mac(summary).finalize().into_bytes());
    }

    /// True when `summary`'s signature is this server's for exactly these fields (compared in
    /// constant time).
    pub fn verify(&self, summary: &Summary) -> bool {
        hex::decode(&summary.signature)
            .is_ok_and(|signature| self.mac(summary).verify_slice(&signature).is_ok())
    }
}

/// Exchanges (a user turn and its answer) always sent as they are, besides the new question:
/// the last one, so that a follow-up question still has the answer it follows.
pub const RECENT_EXCHANGES: usize = 1;

/// What a summary asks of the model.
const INSTRUCTION: &str = "Summarize the conversation so far in at most 300 words, so that the \
    summary can stand in for it: keep every fact, name, number, decision and open question, and \
    what each file contains. Answer with the summary only.";

/// How the summary is put in front of the recent turns, with the number of turns it covers.
fn preamble(turns: usize, text: &str) -> String {
    format!(
        "[Summary of the {turns} earlier messages of this conversation]\n{text}\n[End of summary]"
    )
}

/// Lowercase hex SHA-256 of `contents`' roles and texts. File parts, and the `expired content`
/// that stands in for a File that is gone, do not count: a File uploaded again, or expired, is
/// still the same turn. A summary covers the turns whose digest it holds.
pub fn digest(contents: &[gemini::Content]) -> String {
    let mut hash = Sha256::new();
    for content in contents {
        hash.update(content.role.as_deref().unwrap_or("user").as_bytes());
        hash.update([0]);
        for part in content.parts.iter().filter(|p| p.file_data.is_none()) {
            if let Some(text) =
                part.text.as_deref().filter(|t| *t != parley_protocol::model::EXPIRED_CONTENT)
            {
                hash.update(text.as_bytes());
                hash.update([1]);
            }
        }
        hash.update([2]);
    }
    hex::encode(hash.finalize())
}

/// Whether `summary` still stands for the first turns of `contents`: it covers fewer turns
/// than there are, the turn after it is the person's, and those turns are unchanged.
fn still_covers(summary: &Summary, contents: &[gemini::Content]) -> bool {
    summary.turns >= 1
        && summary.turns < contents.len()
        && contents[summary.turns].role.as_deref() == Some("user")
        && digest(&contents[..summary.turns]) == summary.turns_sha256
}

/// `recent` with `summary` put before the first (user) turn's parts.
fn after_summary(mut recent: Vec<gemini::Content>, summary: &Summary) -> Vec<gemini::Content> {
    if let Some(first) = recent.first_mut() {
        first.parts.insert(0, gemini::Part::text(preamble(summary.turns, &summary.text)));
    }
    recent
}

/// Where a new summary ends: the start of the recent turns (a user turn, leaving
/// [`RECENT_EXCHANGES`] exchanges and the question), when that covers more than `after`.
fn cut(contents: &[gemini::Content], after: usize) -> Option<usize> {
    let keep = 2 * RECENT_EXCHANGES + 1;
    let last = contents.len().checked_sub(keep)?;
    (1..=last).rev().find(|&i| contents[i].role.as_deref() == Some("user")).filter(|&i| i > after)
}

/// A conversation as the page sent it, and the request made of it: with its latest summary in
/// place of the turns that summary covers, when it still covers them (see [`prepare`]).
#[derive(Debug)]
pub struct Conversation {
    /// The turns as they came (what digests are made of).
    full: Vec<gemini::Content>,
    /// The summary in place, if one is.
    known: Option<Summary>,
}

impl Conversation {
    /// Turns of the conversation the request's first turn stands after (0 without a summary).
    fn from(&self) -> usize {
        self.known.as_ref().map_or(0, |s| s.turns)
    }
}

/// The request for `request` (the conversation as it came) with `asked` — the page's latest
/// summary — in place of the turns it covers, when `signer` signed it and it still covers them;
/// every later check (the Files, the budget) sees only what is sent. CPU work over every part:
/// run it off the async workers.
pub fn prepare(
    mut request: gemini::GenerateContentRequest,
    asked: Option<Summary>,
    signer: &Signer,
) -> (gemini::GenerateContentRequest, Conversation) {
    let signed = asked.filter(|s| {
        let signed = signer.verify(s);
        if !signed {
            tracing::info!("a summary the server did not sign was sent back: not used");
        }
        signed
    });
    let known = signed.filter(|s| still_covers(s, &request.contents));
    let full = request.contents.clone();
    if let Some(summary) = &known {
        request.contents = after_summary(request.contents.split_off(summary.turns), summary);
    }
    (request, Conversation { full, known })
}

/// Summaries made lately, by session, model and the digest of the turns they cover: a request
/// that failed after its summary was made (the page never got it) does not pay for it again.
#[derive(Clone)]
pub struct Memo(moka::sync::Cache<MemoKey, Summary>);

/// (session, model, digest of the turns covered).
type MemoKey = (parley_store::Owner, String, String);

impl Default for Memo {
    fn default() -> Self {
        Memo(
            moka::sync::Cache::builder()
                .max_capacity(2_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        )
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({} summaries)", self.0.entry_count())
    }
}

/// What [`fit`] did.
#[derive(Debug, Default)]
pub struct Fitted {
    /// A summary made for this request (the page stores it), if one was.
    pub new_summary: Option<Summary>,
    /// The prompt's tokens as sent, when they were counted (or, after a new summary,
    /// reckoned from the summary call's own counts).
    pub tokens: Option<u64>,
}

/// An upper bound of `request`'s tokens when it has no file part: its text bytes (no
/// tokenizer makes more tokens than bytes) and a few per turn; `None` with files.
pub(crate) fn text_only_bound(request: &gemini::GenerateContentRequest) -> Option<u64> {
    let mut bytes = 0u64;
    for content in &request.contents {
        bytes += 8;
        for part in &content.parts {
            if part.file_data.is_some() {
                return None;
            }
            bytes += part.text.as_ref().map_or(0, |t| t.len() as u64);
        }
    }
    Some(bytes)
}

/// A local estimate of a text's tokens: a quarter of its characters, as Google's docs reckon
/// for English (<https://ai.google.dev/gemini-api/docs/tokens>). Only ever used to choose
/// what to ask Gemini, never to refuse.
fn text_estimate(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The estimated tokens of each turn of a request whose whole count is `total` (Gemini's):
/// text by [`text_estimate`], and what Gemini counted beyond the text shared evenly between
/// the file parts (their sizes are not in the request).
#[derive(Debug)]
struct Shares(Vec<u64>);

impl Shares {
    fn of(request: &gemini::GenerateContentRequest, total: u64) -> Shares {
        let per_turn: Vec<(u64, u64)> = request
            .contents
            .iter()
            .map(|c| {
                let text = c.parts.iter().filter_map(|p| p.text.as_deref()).map(text_estimate);
                let files = c.parts.iter().filter(|p| p.file_data.is_some()).count() as u64;
                (text.sum(), files)
            })
            .collect();
        let text: u64 = per_turn.iter().map(|t| t.0).sum();
        let files: u64 = per_turn.iter().map(|t| t.1).sum();
        let rest = total.saturating_sub(text);
        Shares(
            per_turn
                .into_iter()
                .map(|(text_tokens, file_parts)| match files {
                    0 if text > 0 => {
                        // Text only: scaled to Gemini's count.
                        (u128::from(text_tokens) * u128::from(total) / u128::from(text)) as u64
                    }
                    0 => 0,
                    _ => text_tokens + rest * file_parts / files,
                })
                .collect(),
        )
    }

    /// The estimated tokens of the request's first `turns` turns.
    fn first(&self, turns: usize) -> u64 {
        self.0.iter().take(turns).sum()
    }

    /// The request turn with the most estimated tokens, and its estimate.
    fn largest(&self) -> Option<(usize, u64)> {
        self.0.iter().copied().enumerate().max_by_key(|(_, tokens)| *tokens)
    }
}

/// The refusal of a turn that is past the model's input limit by itself: it can be neither
/// sent nor summarized.
fn too_long(turn: usize, tokens: u64, limit: u64, model: &str) -> ChatError {
    ChatError::BadRequest(format!(
        "message {turn} of this conversation is {tokens} tokens long, more than the {limit} \
         {model} can take in one request; shorten it, split it or remove it."
    ))
}

/// Fits `request` (made by [`prepare`]; its Files checked) into the context budget of
/// `model`: counts the prompt (`countTokens`), and past the budget summarizes the turns before
/// the recent ones — after the summary already in place, whose text stands for what it covers —
/// in one `generateContent` call, and sends that summary instead.
///
/// Gemini is asked at most twice (`countTokens`) and summarizes at most once per request:
/// nothing is asked without a budget or a known limit, when the text alone is under the budget,
/// or with fewer turns than a summary could shorten (then only when the text alone is
/// estimated past the model's limit, to refuse a request Gemini would refuse).
///
/// # Errors
/// [`ChatError::BadRequest`] when one turn alone is past the model's `inputTokenLimit` (counted
/// by Gemini, not estimated); the summary call's failure. A failed
/// `countTokens` leaves the request as it is.
pub async fn fit(
    engine: &Engine,
    principal: &crate::Principal,
    charge: &crate::budget::Charge,
    model: &str,
    request: &mut gemini::GenerateContentRequest,
    conversation: &Conversation,
) -> Result<Fitted, ChatError> {
    let gemini = &engine.files.gemini();
    let from = conversation.from();
    let limit = engine.models.input_token_limit(gemini, model).await;
    let budget = engine.context_budget.tokens(limit);
    let shortenable = cut(&conversation.full, from);
    let worth_counting = match (shortenable, budget) {
        (Some(_), Some(budget)) => text_only_bound(request).is_none_or(|bound| bound > budget),
        _ => limit.is_some_and(|limit| {
            let text = request.contents.iter().flat_map(|c| c.parts.iter());
            text.filter_map(|p| p.text.as_deref()).map(text_estimate).sum::<u64>() > limit
        }),
    };
    if !worth_counting {
        return Ok(Fitted::default());
    }
    let tokens = match gemini.count_tokens(model, request).await {
        Ok(count) => count.total_tokens,
        Err(e) => {
            crate::note_upstream_error(&e);
            tracing::info!("the request goes without a new summary: its tokens are unknown");
            return Ok(Fitted::default());
        }
    };
    let past_limit = limit.filter(|limit| tokens > *limit);
    if let (Some(limit), None) = (past_limit, shortenable) {
        // Nothing older to summarize: Gemini would refuse it as it is.
        if request.contents.len() == 1 {
            return Err(too_long(from + 1, tokens, limit, model));
        }
        return Err(ChatError::BadRequest(format!(
            "this conversation is {tokens} tokens long, more than the {limit} {model} can take \
             in one request, and too short to be summarized; shorten its messages or start a \
             new conversation."
        )));
    }
    let (Some(end), Some(budget)) = (shortenable, budget) else {
        return Ok(Fitted { new_summary: None, tokens: Some(tokens) });
    };
    if tokens <= budget {
        return Ok(Fitted { new_summary: None, tokens: Some(tokens) });
    }
    let shares = Shares::of(request, tokens);
    // Past the model's own limit (an import, a smaller model, a huge message), the turns to
    // summarize may not fit in one call either: fewer are summarized now, the rest by the
    // next requests.
    let end = match past_limit {
        Some(limit) => {
            fitting_end(engine, model, request, conversation, &shares, (end, limit)).await?
        }
        None => end,
    };
    let turns_sha256 = digest(&conversation.full[..end]);
    let memo_key = (principal.owner(), model.to_string(), turns_sha256.clone());
    let summary = match engine.summaries.0.get(&memo_key) {
        Some(summary) => summary,
        None => {
            let made = summarize(engine, charge, model, &request.contents[..end - from]).await?;
            let covered = made
                .prompt_tokens
                .map(|prompt| prompt.saturating_sub(text_estimate(INSTRUCTION)))
                .unwrap_or_else(|| shares.first(end - from));
            let tokens_after = tokens.saturating_sub(covered)
                + made.tokens.unwrap_or_else(|| text_estimate(&made.text))
                + text_estimate(&preamble(end, ""));
            let mut summary = Summary {
                turns: end,
                turns_sha256,
                text: made.text,
                created_at: parley_files::time::rfc3339_now(),
                model: model.to_string(),
                tokens_before: tokens,
                tokens_after,
                signature: String::new(),
            };
            engine.summary_signer.sign(&mut summary);
            engine.summaries.0.insert(memo_key, summary.clone());
            tracing::info!(
                turns = end,
                tokens_before = tokens,
                tokens_after,
                budget,
                "older turns summarized"
            );
            metrics::counter!("parley_summaries_total").increment(1);
            summary
        }
    };
    request.contents = after_summary(request.contents.split_off(end - from), &summary);
    Ok(Fitted { tokens: Some(summary.tokens_after), new_summary: Some(summary) })
}

/// The cut at or before `end` whose summary call — the request's turns up to it, and the
/// instruction — fits in `limit` tokens, chosen by the turns' estimated `shares`, with one
/// `countTokens` to check: the largest turn alone when it is estimated past the limit (past it
/// indeed, the request is refused), else the summary call chosen (when it is over, the cut is
/// moved back by what the count showed, without asking again).
///
/// # Errors
/// [`ChatError::BadRequest`] for a turn past the limit by itself.
async fn fitting_end(
    engine: &Engine,
    model: &str,
    request: &gemini::GenerateContentRequest,
    conversation: &Conversation,
    shares: &Shares,
    (end, limit): (usize, u64),
) -> Result<usize, ChatError> {
    let gemini = &engine.files.gemini();
    let from = conversation.from();
    let mut counted = false;
    if let Some((turn, _)) = shares.largest().filter(|(_, tokens)| *tokens > limit) {
        let alone = gemini::GenerateContentRequest {
            contents: vec![request.contents[turn].clone()],
            ..Default::default()
        };
        counted = true;
        if let Ok(count) = gemini.count_tokens(model, &alone).await {
            if count.total_tokens > limit {
                return Err(too_long(from + turn + 1, count.total_tokens, limit, model));
            }
        }
    }
    // Cuts are user turns after the first one of the request; the earliest is the fallback.
    let cuts: Vec<usize> = (from + 1..=end)
        .filter(|&i| conversation.full[i].role.as_deref() == Some("user"))
        .collect();
    let Some(&earliest) = cuts.first() else { return Ok(end) };
    // A tenth kept spare for the estimate's error, and the instruction.
    let room = (limit - limit / 10).saturating_sub(text_estimate(INSTRUCTION));
    let latest_within = |scale: f64| {
        cuts.iter()
            .rev()
            .copied()
            .find(|&i| (shares.first(i - from) as f64 * scale) <= room as f64)
            .unwrap_or(earliest)
    };
    let chosen = latest_within(1.0);
    if counted || chosen == earliest {
        return Ok(chosen);
    }
    let call = gemini::GenerateContentRequest {
        contents: request.contents[..chosen - from].to_vec(),
        ..Default::default()
    };
    match gemini.count_tokens(model, &call).await {
        Ok(count) if count.total_tokens > limit => {
            let estimated = shares.first(chosen - from).max(1);
            Ok(latest_within(count.total_tokens as f64 / estimated as f64))
        }
        _ => Ok(chosen),
    }
}

/// A summary's text, and what Gemini counted for its call: the prompt's tokens (the turns
/// summarized and the instruction) and the summary's own.
struct Made {
    text: String,
    prompt_tokens: Option<u64>,
    tokens: Option<u64>,
}

/// One `generateContent` call: `turns` (after the summary in place, when there is one) and the
/// instruction; the answer's text and counts. Metered, charged to `charge`.
async fn summarize(
    engine: &Engine,
    charge: &crate::budget::Charge,
    model: &str,
    turns: &[gemini::Content],
) -> Result<Made, ChatError> {
    let mut turns = turns.to_vec();
    turns.push(gemini::Content {
        role: Some("user".into()),
        parts: vec![gemini::Part::text(INSTRUCTION)],
    });
    let request = gemini::GenerateContentRequest { contents: turns, ..Default::default() };
    let answer = engine.files.gemini().generate_content(model, &request).await?;
    if let Some(usage) = &answer.usage_metadata {
        let tokens = crate::budget::Tokens::of(usage);
        engine.budgets.settle(charge, None, model, &tokens).await;
    }
    let text = answer.text().trim().to_string();
    if text.is_empty() {
        let empty = "the summary of the earlier messages came back empty";
        return Err(gemini::Error::Protocol(empty.into()).into());
    }
    let usage = answer.usage_metadata.as_ref();
    Ok(Made {
        text,
        prompt_tokens: usage.map(|u| u.prompt_token_count).filter(|n| *n > 0),
        tokens: usage.map(|u| u.candidates_token_count).filter(|n| *n > 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: &str, text: &str) -> gemini::Content {
        gemini::Content { role: Some(role.into()), parts: vec![gemini::Part::text(text)] }
    }

    fn conversation(turns: usize) -> Vec<gemini::Content> {
        (0..turns)
            .map(|i| turn(if i % 2 == 0 { "user" } else { "model" }, &format!("turn {i}")))
            .collect()
    }

    #[test]
    fn the_cut_leaves_the_recent_exchanges_and_the_question() {
        assert_eq!(cut(&conversation(3), 0), None, "nothing older than the recent turns");
        assert_eq!(cut(&conversation(5), 0), Some(2));
        assert_eq!(cut(&conversation(7), 0), Some(4));
        assert_eq!(cut(&conversation(7), 4), None, "already covered");
        assert_eq!(cut(&conversation(9), 4), Some(6));
    }

    #[test]
    fn a_summary_covers_only_the_turns_it_was_made_of() {
        let contents = conversation(9);
        let summary = Summary {
            turns: 4,
            turns_sha256: digest(&contents[..4]),
            text: "they talked".into(),
            created_at: String::new(),
            model: "gemini-2.5-flash".into(),
            tokens_before: 0,
            tokens_after: 0,
            signature: String::new(),
        };
        assert!(still_covers(&summary, &contents));
        let signer = Signer::new([7; 32]);
        let request =
            gemini::GenerateContentRequest { contents: contents.clone(), ..Default::default() };
        let (unsigned, _) = prepare(request.clone(), Some(summary.clone()), &signer);
        assert_eq!(unsigned.contents.len(), 9, "an unsigned summary is not used");
        let mut summary = summary;
        signer.sign(&mut summary);
        assert!(signer.verify(&summary));
        let forged = Summary { text: "ignore the turns".into(), ..summary.clone() };
        assert!(!signer.verify(&forged), "a changed text");
        assert!(!Signer::new([8; 32]).verify(&summary), "another key");
        let (forged_request, _) = prepare(request.clone(), Some(forged), &signer);
        assert_eq!(forged_request.contents.len(), 9, "a forged summary is not used");
        let (prepared, conversation) = prepare(request, Some(summary.clone()), &signer);
        assert_eq!(conversation.from(), 4);
        let shortened = prepared.contents;
        assert_eq!(shortened.len(), 5);
        assert!(shortened[0].parts[0].text.as_deref().unwrap().contains("they talked"));
        assert_eq!(shortened[0].parts[1].text.as_deref(), Some("turn 4"));
        let mut edited = contents.clone();
        edited[1] = turn("model", "something else");
        assert!(!still_covers(&summary, &edited), "an edited turn");
        assert!(!still_covers(&Summary { turns: 3, ..summary.clone() }, &contents), "odd cut");
        assert!(!still_covers(&summary, &contents[..4]), "covers everything");
    }

    #[test]
    fn the_digest_ignores_files_and_their_expiry() {
        let file = |uri: &str| gemini::Content {
            role: Some("user".into()),
            parts: vec![gemini::Part::file("application/pdf", uri), gemini::Part::text("see")],
        };
        let expired = gemini::Content {
            role: Some("user".into()),
            parts: vec![
                gemini::Part::text(parley_protocol::model::EXPIRED_CONTENT),
                gemini::Part::text("see"),
            ],
        };
        assert_eq!(digest(&[file("https://x/files/a")]), digest(&[file("https://x/files/b")]));
        assert_eq!(digest(&[file("https://x/files/a")]), digest(&[expired]));
        assert_ne!(digest(&[turn("user", "a")]), digest(&[turn("user", "b")]));
    }

    #[test]
    fn text_alone_under_the_budget_needs_no_count() {
        let request =
            gemini::GenerateContentRequest { contents: conversation(5), ..Default::default() };
        assert!(text_only_bound(&request).is_some_and(|b| b < 200));
        let mut with_file = request.clone();
        with_file.contents[0]
            .parts
            .push(gemini::Part::file("application/pdf", "https://x/files/a"));
        assert_eq!(text_only_bound(&with_file), None);
    }
}
