//! Conversation summaries (seed 002's `conversation_summaries`): when a request would send
//! more prompt tokens than the context budget, its oldest turns are said in a summary made
//! with one `generateContent` call, and the request sends the summary and the recent turns.
//! A summary is kept by the page and sent back with each request; it is reused while the turns
//! it covers are unchanged, and renewed (the old summary plus the next turns) only when the
//! budget is crossed again.

use sha2::{Digest, Sha256};

use super::ServerState;
use crate::{error::AppError, model::Summary};

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
            if let Some(text) = part.text.as_deref().filter(|t| *t != crate::model::EXPIRED_CONTENT)
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
/// summary — in place of the turns it covers, when it still covers them; every later check (the
/// Files, the budget) sees only what is sent. CPU work over every part: run it off the async
/// workers.
pub fn prepare(
    mut request: gemini::GenerateContentRequest,
    asked: Option<Summary>,
) -> (gemini::GenerateContentRequest, Conversation) {
    let known = asked.filter(|s| still_covers(s, &request.contents));
    let full = request.contents.clone();
    if let Some(summary) = &known {
        request.contents = after_summary(request.contents.split_off(summary.turns), summary);
    }
    (request, Conversation { full, known })
}

/// Summaries made lately, by session and the digest of the turns they cover: a request that
/// failed after its summary was made (the page never got it) does not pay for it again.
#[derive(Clone)]
pub struct Memo(moka::sync::Cache<(String, String), Summary>);

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
    /// The prompt's tokens as sent, when they were counted.
    pub tokens: Option<u64>,
}

/// An upper bound of `request`'s tokens when it has no file part: its text bytes (no
/// tokenizer makes more tokens than bytes) and a few per turn; `None` with files.
fn text_only_bound(request: &gemini::GenerateContentRequest) -> Option<u64> {
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

/// Fits `request` (made by [`prepare`]; its Files checked) into the context budget of
/// `model`: counts the prompt (`countTokens`), and past the budget summarizes the turns before
/// the recent ones — after the summary already in place, whose text stands for what it covers —
/// in one `generateContent` call, and sends that summary instead.
///
/// Nothing is asked of Gemini without a budget (off, or a share of a limit Gemini does not
/// say), with fewer turns than a summary could shorten, or when the text alone is under the
/// budget.
///
/// # Errors
/// The summary call's failure, mapped to [`AppError`]. A failed `countTokens` leaves the request
/// as it is.
pub async fn fit(
    state: &ServerState,
    session: &super::Session,
    model: &str,
    request: &mut gemini::GenerateContentRequest,
    conversation: &Conversation,
) -> Result<Fitted, AppError> {
    let gemini = &state.files.gemini;
    let from = conversation.from();
    let Some(end) = cut(&conversation.full, from) else { return Ok(Fitted::default()) };
    let limit = state.models.input_token_limit(gemini, model).await;
    let Some(budget) = state.context_budget.tokens(limit) else {
        return Ok(Fitted::default());
    };
    if text_only_bound(request).is_some_and(|bound| bound <= budget) {
        return Ok(Fitted::default());
    }
    let tokens = match gemini.count_tokens(model, request).await {
        Ok(count) => count.total_tokens,
        Err(e) => {
            super::errors::from_gemini(e, None);
            tracing::info!("the request goes without a new summary: its tokens are unknown");
            return Ok(Fitted::default());
        }
    };
    if tokens <= budget {
        return Ok(Fitted { new_summary: None, tokens: Some(tokens) });
    }
    // Past the model's own limit (an import, a smaller model), the turns to summarize may not
    // fit in one call either: fewer are summarized now, the rest by the next requests.
    let end = match limit.filter(|limit| tokens > *limit) {
        Some(limit) => fitting_end(state, model, request, conversation, end, limit).await,
        None => end,
    };
    let turns_sha256 = digest(&conversation.full[..end]);
    let memo_key = (session.0.clone(), turns_sha256.clone());
    let mut summary = match state.summaries.0.get(&memo_key) {
        Some(summary) => summary,
        None => {
            let text = summarize(state, model, &request.contents[..end - from]).await?;
            Summary {
                turns: end,
                turns_sha256,
                text,
                created_at: parley_files::time::rfc3339_now(),
                model: model.to_string(),
                tokens_before: tokens,
                tokens_after: 0,
            }
        }
    };
    request.contents = after_summary(request.contents.split_off(end - from), &summary);
    if summary.tokens_after == 0 {
        summary.tokens_after = match gemini.count_tokens(model, request).await {
            Ok(count) => count.total_tokens,
            Err(e) => {
                super::errors::from_gemini(e, None);
                0
            }
        };
        state.summaries.0.insert(memo_key, summary.clone());
        tracing::info!(
            turns = end,
            tokens_before = tokens,
            tokens_after = summary.tokens_after,
            budget,
            "older turns summarized"
        );
        metrics::counter!("parley_summaries_total").increment(1);
    }
    Ok(Fitted { tokens: Some(summary.tokens_after), new_summary: Some(summary) })
}

/// Most times [`fitting_end`] halves the turns to summarize.
const HALVINGS: usize = 4;

/// The latest cut at or before `end` whose summary call — the turns from the request's start to
/// it, and the instruction — fits in `limit` tokens (counted; halved up to [`HALVINGS`] times).
async fn fitting_end(
    state: &ServerState,
    model: &str,
    request: &gemini::GenerateContentRequest,
    conversation: &Conversation,
    mut end: usize,
    limit: u64,
) -> usize {
    let from = conversation.from();
    for _ in 0..HALVINGS {
        let call = gemini::GenerateContentRequest {
            contents: request.contents[..end - from].to_vec(),
            ..Default::default()
        };
        match state.files.gemini.count_tokens(model, &call).await {
            Ok(count) if count.total_tokens > limit => {}
            _ => return end,
        }
        let half = from + (end - from) / 2;
        match (from + 1..=half)
            .rev()
            .find(|&i| conversation.full[i].role.as_deref() == Some("user"))
        {
            Some(earlier) => end = earlier,
            None => return end,
        }
    }
    end
}

/// One `generateContent` call: `turns` (after the summary in place, when there is one) and the
/// instruction; the answer's text.
async fn summarize(
    state: &ServerState,
    model: &str,
    turns: &[gemini::Content],
) -> Result<String, AppError> {
    let mut turns = turns.to_vec();
    turns.push(gemini::Content {
        role: Some("user".into()),
        parts: vec![gemini::Part::text(INSTRUCTION)],
    });
    let request = gemini::GenerateContentRequest { contents: turns, ..Default::default() };
    let answer = state
        .files
        .gemini
        .generate_content(model, &request)
        .await
        .map_err(|e| super::errors::from_gemini(e, None))?;
    let text = answer.text().trim().to_string();
    if text.is_empty() {
        return Err(AppError::Upstream {
            code: 502,
            message: "the summary of the earlier messages came back empty".into(),
        });
    }
    Ok(text)
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
        };
        assert!(still_covers(&summary, &contents));
        let request =
            gemini::GenerateContentRequest { contents: contents.clone(), ..Default::default() };
        let (prepared, conversation) = prepare(request, Some(summary.clone()));
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
                gemini::Part::text(crate::model::EXPIRED_CONTENT),
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
