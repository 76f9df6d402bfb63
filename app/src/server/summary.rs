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

/// Lowercase hex SHA-256 of `contents`' roles and texts (a file part counts as its MIME
/// type: its URI changes when it is uploaded again, what it says does not). A summary covers the
/// turns whose digest it holds.
pub fn digest(contents: &[gemini::Content]) -> String {
    let mut hash = Sha256::new();
    for content in contents {
        hash.update(content.role.as_deref().unwrap_or("user").as_bytes());
        hash.update([0]);
        for part in &content.parts {
            if let Some(file) = &part.file_data {
                hash.update(b"file:");
                hash.update(file.mime_type.as_deref().unwrap_or("").as_bytes());
            } else if let Some(text) = &part.text {
                hash.update(b"text:");
                hash.update(text.as_bytes());
            }
            hash.update([1]);
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

/// `contents` with the first `summary.turns` replaced by the summary, put before the first
/// recent (user) turn's parts.
fn with_summary(contents: &[gemini::Content], summary: &Summary) -> Vec<gemini::Content> {
    let mut recent = contents[summary.turns..].to_vec();
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

/// What [`fit`] did.
#[derive(Debug, Default)]
pub struct Fitted {
    /// A summary made for this request (the page stores it), if one was.
    pub new_summary: Option<Summary>,
    /// The prompt's tokens as sent, when they were counted.
    pub tokens: Option<u64>,
}

/// Fits `request` into the context budget of `model`: puts in `known` (the conversation's
/// latest summary) while it still covers its turns; counts the prompt (`countTokens`); past the
/// budget, summarizes the turns before the recent ones (with `known`'s text in place of the
/// turns it covered) in one `generateContent` call, and sends that summary instead.
///
/// Nothing happens without a budget (off, or a share of a limit Gemini does not say) or with
/// fewer turns than a summary could shorten.
///
/// # Errors
/// The summary call's failure, mapped to [`AppError`]. A failed `countTokens` is logged and
/// the request goes as it is.
pub async fn fit(
    state: &ServerState,
    model: &str,
    request: &mut gemini::GenerateContentRequest,
    known: Option<Summary>,
) -> Result<Fitted, AppError> {
    let gemini = &state.files.gemini;
    let limit = state.models.input_token_limit(gemini, model).await;
    let Some(budget) = state.context_budget.tokens(limit) else {
        return Ok(Fitted::default());
    };
    let known = known.filter(|s| still_covers(s, &request.contents));
    if known.is_none() && cut(&request.contents, 0).is_none() {
        return Ok(Fitted::default());
    }
    let mut candidate = request.clone();
    if let Some(summary) = &known {
        candidate.contents = with_summary(&request.contents, summary);
    }
    let tokens = match gemini.count_tokens(model, &candidate).await {
        Ok(count) => count.total_tokens,
        Err(e) => {
            tracing::warn!(error = %e, "countTokens failed: the request goes without a new summary");
            *request = candidate;
            return Ok(Fitted::default());
        }
    };
    let after = known.as_ref().map_or(0, |s| s.turns);
    let Some(end) = cut(&request.contents, after).filter(|_| tokens > budget) else {
        *request = candidate;
        return Ok(Fitted { new_summary: None, tokens: Some(tokens) });
    };
    let text = summarize(state, model, &request.contents, known.as_ref(), end).await?;
    let mut summary = Summary {
        turns: end,
        turns_sha256: digest(&request.contents[..end]),
        text,
        created_at: parley_files::time::rfc3339_now(),
        model: model.to_string(),
        tokens_before: tokens,
        tokens_after: 0,
    };
    let shortened = with_summary(&request.contents, &summary);
    request.contents = shortened;
    let after_tokens = match gemini.count_tokens(model, request).await {
        Ok(count) => Some(count.total_tokens),
        Err(e) => {
            tracing::warn!(error = %e, "countTokens failed after the summary");
            None
        }
    };
    summary.tokens_after = after_tokens.unwrap_or(0);
    tracing::info!(
        turns = end,
        tokens_before = tokens,
        tokens_after = summary.tokens_after,
        budget,
        "older turns summarized"
    );
    metrics::counter!("parley_summaries_total").increment(1);
    Ok(Fitted { new_summary: Some(summary), tokens: after_tokens })
}

/// One `generateContent` call: the turns `[known.turns, end)` (after `known`'s text, when
/// there is one) and the instruction; the answer's text.
async fn summarize(
    state: &ServerState,
    model: &str,
    contents: &[gemini::Content],
    known: Option<&Summary>,
    end: usize,
) -> Result<String, AppError> {
    let mut turns = match known {
        Some(summary) => with_summary(&contents[..end], summary),
        None => contents[..end].to_vec(),
    };
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
        let shortened = with_summary(&contents, &summary);
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
    fn the_digest_ignores_file_uris() {
        let file = |uri: &str| gemini::Content {
            role: Some("user".into()),
            parts: vec![gemini::Part::file("application/pdf", uri)],
        };
        assert_eq!(digest(&[file("https://x/files/a")]), digest(&[file("https://x/files/b")]));
        assert_ne!(digest(&[turn("user", "a")]), digest(&[turn("user", "b")]));
    }
}
