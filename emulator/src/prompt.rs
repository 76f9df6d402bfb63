//! A prompt as the emulator reads it, in one pass over its parts: the files it attaches
//! (each checked as Gemini checks it), the last text a user wrote, and its tokens
//! ([`crate::tokens`]). Requests, `countTokens` and context caches all read their `contents`
//! and `systemInstruction` through it, so they agree on every count and every refusal.

use base64::Engine;
use serde_json::Value;

use crate::{
    error::ApiError, inspect::Description, models::ModelInfo, routes::either, state::State, tokens,
};

/// How a File that cannot be used is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// As Gemini does: 403 for a missing, expired or foreign File, 400 for one not `ACTIVE`,
    /// for a bad URI or for bad base64.
    Strict,
    /// Left out (no tokens, not listed): for answers scripted through the control surface,
    /// which never looked at the Files.
    Lenient,
}

/// What a prompt holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompt {
    /// The files attached to `contents`, in order (those of a system instruction count but
    /// are not listed).
    pub files: Vec<Description>,
    /// The texts of the last `user` turn that had any, joined by `\n` (thoughts and signed
    /// parts left out).
    pub last_user_text: Option<String>,
    /// Its tokens.
    pub tokens: u64,
    /// Its tokens by modality.
    pub by_modality: tokens::ByModality,
}

impl Prompt {
    /// Reads `contents` (an array of `Content`) onto this prompt, as later turns.
    ///
    /// # Errors
    /// With [`Check::Strict`], Gemini's refusal of the first File that cannot be used.
    pub fn add_contents(
        &mut self,
        state: &State,
        owner: &str,
        contents: &[Value],
        check: Check,
    ) -> Result<(), ApiError> {
        for content in contents {
            let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
            let texts = self.add_parts(state, owner, content, check, true)?;
            if role == "user" && !texts.is_empty() {
                self.last_user_text = Some(texts.join("\n"));
            }
        }
        Ok(())
    }

    /// Counts a `systemInstruction` (one `Content`) onto this prompt: its tokens only.
    ///
    /// # Errors
    /// As [`Prompt::add_contents`].
    pub fn add_system_instruction(
        &mut self,
        state: &State,
        owner: &str,
        content: &Value,
        check: Check,
    ) -> Result<(), ApiError> {
        self.add_parts(state, owner, content, check, false).map(drop)
    }

    /// This prompt followed by `later` (a cache's contents, then a request's).
    pub fn then(mut self, later: Prompt) -> Prompt {
        self.files.extend(later.files);
        Prompt {
            files: self.files,
            last_user_text: later.last_user_text.or(self.last_user_text),
            tokens: self.tokens.saturating_add(later.tokens),
            by_modality: self.by_modality.merge(later.by_modality),
        }
    }

    /// About how many bytes of memory keeping this prompt takes.
    pub fn footprint(&self) -> usize {
        let files: usize = self
            .files
            .iter()
            .map(|d| {
                std::mem::size_of::<Description>()
                    + d.mime_type.len()
                    + d.sha256_hex.len()
                    + d.detail.as_ref().map_or(0, String::len)
            })
            .sum();
        files + self.last_user_text.as_ref().map_or(0, String::len)
    }

    /// The parts of one `Content`: their tokens and files added, their quotable texts
    /// returned.
    fn add_parts(
        &mut self,
        state: &State,
        owner: &str,
        content: &Value,
        check: Check,
        list_files: bool,
    ) -> Result<Vec<String>, ApiError> {
        let mut texts = Vec::new();
        let parts = content.get("parts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let signed = either(part, "thought_signature", "thoughtSignature").is_some();
            let file = if let Some(text) = part.get("text").and_then(Value::as_str) {
                let n = tokens::text(text);
                self.tokens = self.tokens.saturating_add(n);
                self.by_modality.add(tokens::Modality::Text, n);
                if !signed {
                    texts.push(text.to_string());
                }
                None
            } else if let Some(fd) = either(part, "file_data", "fileData") {
                Some(describe_file_data(state, owner, fd))
            } else {
                either(part, "inline_data", "inlineData").map(describe_inline)
            };
            match (file, check) {
                (Some(Ok(d)), _) => {
                    let n = tokens::file(&d);
                    self.tokens = self.tokens.saturating_add(n);
                    self.by_modality.add(tokens::Modality::of(&d), n);
                    if list_files {
                        self.files.push(d);
                    }
                }
                (Some(Err(e)), Check::Strict) => return Err(e),
                (Some(Err(_)), Check::Lenient) | (None, _) => {}
            }
        }
        Ok(texts)
    }
}

/// A `GenerateContentRequest` read for `model`: its cache's prompt (if it names one)
/// followed by its own `contents` and `systemInstruction`.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Everything the model reads.
    pub prompt: Prompt,
    /// The tokens of the cache named by `cachedContent`, when there is one.
    pub cached_tokens: Option<u64>,
    /// Those tokens by modality.
    pub cached_by_modality: tokens::ByModality,
}

/// Reads a `GenerateContentRequest` (of `generateContent`, or inside `countTokens`), as
/// Gemini checks it.
///
/// # Errors
/// 400 without `contents` (with [`Check::Strict`]), or when `cachedContent` comes with
/// `systemInstruction`, `tools` or `toolConfig`, or names a cache of another model; 403 for a
/// cache that is missing, expired or another key's; the Files' refusals
/// ([`Prompt::add_contents`]).
pub fn read_request(
    state: &State,
    owner: &str,
    model: &ModelInfo,
    request: &Value,
    check: Check,
) -> Result<Reading, ApiError> {
    let mut prompt = Prompt::default();
    let mut cached_tokens = None;
    let mut cached_by_modality = tokens::ByModality::default();
    if let Some(name) = either(request, "cached_content", "cachedContent") {
        let settings = [
            ("system_instruction", "systemInstruction"),
            ("tools", "tools"),
            ("tool_config", "toolConfig"),
        ];
        if settings.iter().any(|(snake, camel)| either(request, snake, camel).is_some()) {
            return Err(ApiError::cache_with_request_settings());
        }
        let name = name.as_str().unwrap_or("");
        let id = name.strip_prefix("cachedContents/").unwrap_or(name);
        let cache = state.caches().get(owner, id, state.now())?.clone();
        if cache.model.id != model.id {
            return Err(ApiError::cache_model_mismatch(
                &format!("models/{}", model.id),
                &format!("models/{}", cache.model.id),
            ));
        }
        cached_tokens = Some(cache.prompt.tokens);
        cached_by_modality = cache.prompt.by_modality;
        prompt = cache.prompt;
    }
    let mut own = Prompt::default();
    match request.get("contents").and_then(Value::as_array) {
        Some(contents) => own.add_contents(state, owner, contents, check)?,
        None if check == Check::Strict => {
            return Err(ApiError::invalid_argument(
                "* GenerateContentRequest.contents: contents is not specified",
            ))
        }
        None => {}
    }
    if let Some(system) = either(request, "system_instruction", "systemInstruction") {
        own.add_system_instruction(state, owner, system, check)?;
    }
    Ok(Reading { prompt: prompt.then(own), cached_tokens, cached_by_modality })
}

fn describe_file_data(state: &State, owner: &str, fd: &Value) -> Result<Description, ApiError> {
    let uri = either(fd, "file_uri", "fileUri").and_then(Value::as_str).unwrap_or("");
    let id = file_id_of(uri).ok_or_else(|| ApiError::bad_file_uri(uri))?;
    let file = state.file_for(owner, id)?;
    if file.state(state.now()) != "ACTIVE" {
        return Err(ApiError::file_not_active(id));
    }
    readable(file.description)
}

/// `d`, if Gemini reads its MIME type in a prompt; else its refusal, `Unsupported MIME type:
/// …` (the upload itself was taken, as on Gemini).
fn readable(d: Description) -> Result<Description, ApiError> {
    if crate::routes::is_supported(&d.mime_type) {
        Ok(d)
    } else {
        Err(ApiError::unsupported_mime(&d.mime_type))
    }
}

fn describe_inline(inline: &Value) -> Result<Description, ApiError> {
    let mime = either(inline, "mime_type", "mimeType").and_then(Value::as_str).unwrap_or("");
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')))
        .map_err(|_| ApiError::invalid_argument("Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES): Base64 decoding failed"))?;
    readable(Description::of(mime, &bytes))
}

/// The id in `http(s)://host/…/files/{id}`: `[a-z0-9]` then `-`, like Gemini's ids.
pub fn file_id_of(uri: &str) -> Option<&str> {
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return None;
    }
    let id = uri.rsplit_once("/files/")?.1;
    let valid = !id.is_empty()
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(contents: Value, check: Check) -> Result<Prompt, ApiError> {
        let state = State::new(crate::testing::instant());
        let mut prompt = Prompt::default();
        prompt.add_contents(&state, "key k", contents.as_array().unwrap(), check)?;
        Ok(prompt)
    }

    #[test]
    fn file_ids_are_taken_from_files_uris_only() {
        assert_eq!(
            file_id_of("https://generativelanguage.googleapis.com/v1beta/files/abc123"),
            Some("abc123")
        );
        assert_eq!(file_id_of("http://127.0.0.1:9/v1/files/x-1"), Some("x-1"));
        assert_eq!(file_id_of("gs://bucket/files/abc"), None);
        assert_eq!(file_id_of("https://example.com/files/ABC"), None);
    }

    #[test]
    fn texts_files_thoughts_and_signatures() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG");
        let prompt = read(
            json!([
                {"role": "user", "parts": [{"text": "abcdefgh"}, {"inlineData": {"mimeType": "image/png", "data": png}}]},
                {"role": "model", "parts": [{"text": "secret plan", "thought": true}, {"text": "ok"}, {"text": "", "thoughtSignature": "c2ln"}]},
                {"role": "user", "parts": [{"text": "again"}, {"text": "signed", "thought_signature": "c2ln"}]}
            ]),
            Check::Strict,
        )
        .unwrap();
        assert_eq!(prompt.files.len(), 1);
        assert_eq!(prompt.last_user_text.as_deref(), Some("again"), "signed text is not quoted");
        // 2 + 258 (image) + 0 (thought) + 1 + 0 + 2 + 2.
        assert_eq!(prompt.tokens, 265);
    }

    #[test]
    fn unusable_files_refuse_or_are_left_out() {
        let contents = json!([{"parts": [{"fileData": {"fileUri": "https://x/v1beta/files/gone"}}, {"text": "hi"}]}]);
        let err = read(contents.clone(), Check::Strict).unwrap_err();
        assert_eq!(err.status, "PERMISSION_DENIED");
        let lenient = read(contents, Check::Lenient).unwrap();
        assert_eq!((lenient.files.len(), lenient.tokens), (0, 1));
        let bad = json!([{"parts": [{"inline_data": {"mime_type": "text/plain", "data": "!!"}}]}]);
        assert_eq!(read(bad, Check::Strict).unwrap_err().code, 400);
    }
}
