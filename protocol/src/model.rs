//! Conversation and file types shared by browser and server.
//!
//! The conversation is kept in Gemini's `contents` shape with snake_case names, exactly as
//! ChatSphere's format (`docs/export-format.md`) stores it: for an image, `inline_data` holds the
//! compressed preview (display only) and `file_data` the File's URI (for requests); a PDF has
//! only `file_data`. Requests to Gemini carry `file_data` and text only — never the preview.

use serde::{Deserialize, Serialize};

/// Who wrote a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person.
    User,
    /// Gemini.
    Model,
}

impl Role {
    /// `user` or `model`, as in `data-role` and Gemini's `role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Model => "model",
        }
    }
}

/// One turn: a role and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// Who wrote it.
    pub role: Role,
    /// Text and file parts, in order.
    pub parts: Vec<Part>,
}

/// One part of a turn. Usually exactly one field is set; an image part may carry both
/// `inline_data` (its preview) and `file_data` (its File).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Part {
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A compressed JPEG preview (base64), for display only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<InlineData>,
    /// The uploaded File this part refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// Gemini's opaque `thoughtSignature` of a model part (Gemini 3 sends one even on an empty
    /// final text part): sent back as it came on the next request, never shown
    /// (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part { text: Some(text.into()), ..Part::default() }
    }

    /// Whether Gemini is sent this part: a File, a thought signature, or text that is not
    /// blank. (A preview alone is for display and never leaves the server.)
    pub fn is_sent(&self) -> bool {
        self.file_data.is_some()
            || self.thought_signature.is_some()
            || self.text.as_deref().is_some_and(|t| !t.trim().is_empty())
    }
}

impl Content {
    /// Whether this counts as a turn of the conversation — the one definition the page (what it
    /// sends, how a summary counts) and the server (what it sends Gemini) share: it has a part
    /// Gemini is sent ([`Part::is_sent`]).
    pub fn is_turn(&self) -> bool {
        self.parts.iter().any(Part::is_sent)
    }
}

/// Inline bytes: `{mime_type, data}` with standard base64 `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InlineData {
    /// MIME type, `image/jpeg` for previews.
    pub mime_type: String,
    /// Base64 of the bytes.
    pub data: String,
}

/// A reference to an uploaded File: `{mime_type, file_uri}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileData {
    /// MIME type of the File.
    pub mime_type: String,
    /// The File's `uri`, e.g. `https://generativelanguage.googleapis.com/v1beta/files/abc123`.
    pub file_uri: String,
}

/// What the server returns once an upload is `ACTIVE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// Gemini's resource name, `files/{id}`.
    pub name: String,
    /// The URI to use in `file_data.file_uri`.
    pub uri: String,
    /// MIME type.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes the server received (64 chars).
    pub sha256: String,
    /// RFC 3339 time after which Gemini deletes the File, from the File resource.
    pub expiration_time: Option<String>,
    /// The name the person's file had.
    pub display_name: String,
}

/// The text that stands in for a File that is gone (ChatSphere's format, `docs/export-format.md`).
pub const EXPIRED_CONTENT: &str = "expired content";

/// Most File URIs one `check_files` call takes.
pub const MAX_FILE_CHECKS: usize = 500;

/// Whether a File can still be used, as `check_files` finds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCheck {
    /// The File's URI, as asked.
    pub uri: String,
    /// True when the File exists for this server's key and is `ACTIVE`.
    pub live: bool,
    /// Its RFC 3339 `expirationTime`, when live.
    pub expiration_time: Option<String>,
    /// Its MIME type, when live.
    pub mime_type: Option<String>,
}

/// Where an uploaded File stands, as the server knows it (`"ACTIVE"`, `"EXPIRED"`,
/// `"REPLACED"` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    /// Gemini holds it and it can be sent.
    Active,
    /// Gone upstream (or past its expiry margin), with nothing in its place.
    Expired,
    /// Gone, and uploaded again from its retained original under a new URI.
    Replaced,
}

/// One of this session's uploads, as the Files view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The person's file name.
    pub display_name: String,
    /// The File's URI.
    pub uri: String,
    /// MIME type.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Where it stands.
    pub state: FileState,
    /// RFC 3339 `expirationTime` from Gemini.
    pub expiration_time: Option<String>,
    /// Whether the server keeps a copy of the bytes to upload again after expiry.
    pub retained: bool,
    /// Where its thumbnail is (`/thumbnails/{File id}`, a small JPEG made on the server), for
    /// an image whose original the server keeps; other kinds show their type.
    #[serde(default)]
    pub thumbnail: Option<String>,
}

/// Most files one message may carry (Gemini's apps take up to 10 per prompt).
pub const MAX_ATTACHMENTS: usize = 10;

/// MIME types Gemini documents for the Files API (`docs/gemini-protocol.md`), with
/// the extensions the browser may fail to type; any `text/*` is taken as well.
const ACCEPTED: &[(&str, &[&str])] = &[
    ("image/png", &["png"]),
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/webp", &["webp"]),
    ("image/heic", &["heic"]),
    ("image/heif", &["heif"]),
    ("audio/wav", &["wav"]),
    ("audio/mp3", &[]),
    ("audio/mpeg", &["mp3"]),
    ("audio/aiff", &["aif", "aiff"]),
    ("audio/aac", &["aac"]),
    ("audio/ogg", &["ogg", "oga"]),
    ("audio/flac", &["flac"]),
    ("audio/m4a", &["m4a"]),
    ("audio/opus", &["opus"]),
    ("audio/webm", &[]),
    ("video/mp4", &["mp4", "m4v"]),
    ("video/mpeg", &["mpeg", "mpg"]),
    ("video/mov", &[]),
    ("video/quicktime", &["mov"]),
    ("video/avi", &["avi"]),
    ("video/x-flv", &["flv"]),
    ("video/webm", &["webm"]),
    ("video/wmv", &["wmv"]),
    ("video/3gpp", &["3gp"]),
    ("application/pdf", &["pdf"]),
    ("application/json", &["json"]),
    ("text/plain", &["txt", "log"]),
    ("text/markdown", &["md", "markdown"]),
    ("text/csv", &["csv"]),
    ("text/html", &["html", "htm"]),
    ("text/css", &["css"]),
    ("text/xml", &["xml"]),
    ("text/javascript", &["js", "mjs"]),
    ("text/x-python", &["py"]),
    ("text/rtf", &["rtf"]),
];

/// The MIME type to upload a file as, or `None` when Gemini does not take it: the browser's
/// type when Gemini accepts it, else one guessed from the name's extension (browsers leave
/// `.md` or `.py` untyped).
pub fn accepted_mime(name: &str, browser_type: &str) -> Option<String> {
    let base = browser_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if is_accepted(&base) {
        return Some(base);
    }
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    ACCEPTED.iter().find(|(_, exts)| exts.contains(&ext.as_str())).map(|(m, _)| m.to_string())
}

/// True when Gemini reads Files of this MIME type (parameters and case ignored). Gemini's
/// upload takes any type and refuses the others only when a prompt uses them
/// (`Unsupported MIME type: …`), so Parley refuses them before uploading.
pub fn is_accepted(mime_type: &str) -> bool {
    let base = mime_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    base.starts_with("text/") || ACCEPTED.iter().any(|(m, _)| *m == base)
}

/// The file input's `accept` list: every accepted MIME type and extension.
pub fn accept_attribute() -> String {
    let mut items: Vec<String> = ACCEPTED.iter().map(|(m, _)| m.to_string()).collect();
    items.extend(ACCEPTED.iter().flat_map(|(_, exts)| exts.iter().map(|e| format!(".{e}"))));
    items.push("text/*".into());
    items.join(",")
}

/// Facts about the running site that the page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// Where answers come from.
    pub upstream: UpstreamKind,
    /// The default model's id, e.g. `gemini-2.5-flash` (`PARLEY_MODEL`).
    pub model: String,
    /// The models a person may pick (`PARLEY_MODELS`), the default first.
    pub models: Vec<ModelChoice>,
    /// Whether the "Cache files" switch is offered (`PARLEY_CONTEXT_CACHING=opt-in`).
    pub context_caching: bool,
    /// Signing in: the providers offered, and who is signed in on this request.
    #[serde(default)]
    pub sign_in: crate::account::SignInView,
    /// What is left of this person's budget on the site's key, when one applies, as the page
    /// shows it beside the composer: e.g. `$0.18 of $0.25 left today`, `1.2M of 2M tokens
    /// left this month`.
    #[serde(default)]
    pub budget: Option<String>,
    /// Who may open shared links (`PARLEY_SHARING`): `off` hides `Share`.
    #[serde(default)]
    pub sharing: crate::share::Sharing,
}

/// One model a person may pick, as the "Model" select shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// The model's id, e.g. `gemini-2.5-pro` (what a conversation stores and `chat` takes).
    pub id: String,
    /// Gemini's `displayName`, e.g. `Gemini 2.5 Pro` (the id when unknown).
    pub display_name: String,
    /// Gemini's `inputTokenLimit`, tokens (0 when unknown).
    pub input_token_limit: u64,
}

/// What a `chat` request asks for besides the conversation; every field may be left out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatOptions {
    /// The conversation's model id; `None` for the site's default. One outside
    /// [`SiteInfo::models`] is refused.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation's latest [`Summary`], if it has one: reused while it still matches
    /// the turns it covers.
    #[serde(default)]
    pub summary: Option<Summary>,
    /// The conversation's "Cache files" switch (used only with `PARLEY_CONTEXT_CACHING=opt-in`).
    #[serde(default)]
    pub cache_files: bool,
}

/// Parley's element of the export format's `conversation_summaries` (a list the format's
/// first app, ChatSphere, defined and Parley keeps; `docs/export-format.md`): the first
/// `turns` turns of the
/// conversation (as sent: settled messages, oldest first) said in `text`, which requests
/// send instead of them (`docs/export-format.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// How many turns, from the first, it stands for.
    pub turns: usize,
    /// Lowercase hex SHA-256 of those turns' roles and texts (see
    /// `app::server::summary::digest`): a summary whose turns were edited since is not reused.
    pub turns_sha256: String,
    /// The summary.
    pub text: String,
    /// When it was made, RFC 3339.
    pub created_at: String,
    /// The model id that made it.
    pub model: String,
    /// The prompt's tokens before it was made (with the previous summary in place, if any),
    /// as Gemini counted them.
    pub tokens_before: u64,
    /// The prompt's tokens with it (what was sent), reckoned from the summary call's own counts.
    pub tokens_after: u64,
    /// The server's HMAC-SHA-256 over the fields above, hex: a summary is used only with a
    /// signature the server made, so a page can send back only what the server summarized
    /// (never a text of its own in place of the turns). Empty on summaries of older versions,
    /// which are not used (a new one is made when needed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

impl Summary {
    /// The latest of Parley's summaries among `conversation_summaries` (other apps' elements
    /// are kept but not used).
    pub fn latest_of(summaries: &serde_json::Value) -> Option<Summary> {
        summaries
            .as_array()?
            .iter()
            .rev()
            .find_map(|value| serde_json::from_value::<Summary>(value.clone()).ok())
    }
}

/// An answer's token counts, from Gemini's `usageMetadata`
/// (<https://ai.google.dev/api/generate-content#UsageMetadata>), tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// `promptTokenCount`: the whole prompt, including what came from a cache.
    #[serde(default, alias = "promptTokenCount")]
    pub prompt_token_count: u64,
    /// `candidatesTokenCount`: the answer.
    #[serde(default, alias = "candidatesTokenCount")]
    pub candidates_token_count: u64,
    /// `cachedContentTokenCount`: the part of the prompt that came from a cache.
    #[serde(default, alias = "cachedContentTokenCount")]
    pub cached_content_token_count: u64,
    /// `thoughtsTokenCount`: the model's thinking.
    #[serde(default, alias = "thoughtsTokenCount")]
    pub thoughts_token_count: u64,
    /// `totalTokenCount`.
    #[serde(default, alias = "totalTokenCount")]
    pub total_token_count: u64,
    /// `promptTokensDetails`: the prompt's tokens by modality, when Gemini gives them.
    #[serde(default, alias = "promptTokensDetails", skip_serializing_if = "Vec::is_empty")]
    pub prompt_tokens_details: Vec<ModalityTokens>,
}

/// Tokens of one kind of input, from Gemini's `ModalityTokenCount`
/// (<https://ai.google.dev/api/generate-content#modalitytokencount>).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModalityTokens {
    /// Gemini's `Modality`: `TEXT`, `IMAGE`, `VIDEO`, `AUDIO`, `DOCUMENT`.
    pub modality: String,
    /// Its tokens.
    #[serde(default, alias = "tokenCount")]
    pub token_count: u64,
}

impl ModalityTokens {
    /// What the page calls the modality: `text`, `image`, `video`, `audio`, `PDF` (Gemini's
    /// `DOCUMENT`), or its own name lower-cased.
    pub fn label(&self) -> String {
        match self.modality.as_str() {
            "DOCUMENT" => "PDF".to_string(),
            other => other.to_ascii_lowercase(),
        }
    }
}

/// What "Cache files" did for this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CacheState {
    /// The conversation's files were sent from a `cachedContents` resource.
    Active {
        /// Its tokens.
        tokens: u64,
        /// RFC 3339 time Gemini deletes it unless it is used again.
        expire_time: Option<String>,
    },
    /// The files are fewer tokens than Gemini caches: nothing was cached.
    TooSmall {
        /// Their tokens.
        tokens: u64,
        /// Gemini's minimum for this model.
        minimum: u64,
    },
    /// The request carries no file to cache (the conversation has none, or only summarized
    /// messages had them).
    NoFiles,
    /// Caching failed this time; the request went without it.
    Failed {
        /// Why, as a sentence.
        reason: String,
    },
}

/// Which Gemini the server talks to, as the page may show it: never a key, never a URL path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpstreamKind {
    /// The built-in Gemini emulator ("Offline demo").
    Offline,
    /// Google's Gemini API directly.
    Google,
    /// Gemini behind an API gateway at this host, e.g. `jp-gw2.azure-api.net`.
    Gateway {
        /// The gateway's host name.
        host: String,
    },
}

impl UpstreamKind {
    /// True for the built-in emulator.
    pub fn is_offline(&self) -> bool {
        matches!(self, UpstreamKind::Offline)
    }

    /// A short label for the page: `Offline demo`, `Google Gemini`, `Gemini via <host>`.
    pub fn label(&self) -> String {
        match self {
            UpstreamKind::Offline => "Offline demo".into(),
            UpstreamKind::Google => "Google Gemini".into(),
            UpstreamKind::Gateway { host } => format!("Gemini via {host}"),
        }
    }
}

/// One line of the `chat` server function's answer stream (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// More answer text (a delta, to append).
    Delta {
        /// The new text.
        text: String,
    },
    /// What is left of the person's budget once this answer was paid for (after `usage`,
    /// before `done`; only when a budget applies).
    Budget {
        /// As [`SiteInfo::budget`] says it: `$0.18 of $0.25 left today`.
        left: String,
    },
    /// The answer is complete.
    Done {
        /// Gemini's `finishReason`, e.g. `STOP`.
        finish_reason: Option<String>,
    },
    /// The answer failed after it had started.
    Error {
        /// What went wrong.
        error: crate::error::AppError,
    },
    /// This File cannot be used (expired without a retained original, deleted, or not this
    /// session's): the request went with the text `expired content` in its place. Sent
    /// before any `delta`.
    Expired {
        /// The File's URI.
        file_uri: String,
    },
    /// Token counts of the answer, sent once before `done`.
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// A `thoughtSignature` Gemini gave with the answer: kept in the model turn (as a part of
    /// its own with empty text) and sent back with the next request, never shown.
    Signature {
        /// The opaque signature.
        thought_signature: String,
    },
    /// The oldest turns were summarized for this request (a new or renewed summary): the page
    /// stores it in `conversation_summaries` and shows it. Sent before any `delta`.
    Summarized {
        /// The summary.
        summary: Summary,
    },
    /// What "Cache files" did. Sent before any `delta`, when the switch is on.
    Cache {
        /// The state.
        cache: CacheState,
    },
    /// This File expired and `file` stands in for it (uploaded again from the retained
    /// original, or the same content already uploaded): the request went with `file`'s URI.
    /// The browser rewrites its history and `uploaded_files` tracking. Sent before any `delta`.
    Replaced {
        /// The URI the conversation had.
        old_uri: String,
        /// The File now used instead.
        file: UploadedFile,
    },
}

/// A count with thousands separated by commas, e.g. `25,800`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Usage {
    /// The line under an answer: `1,234 tokens in · 56 out`, then `· 1,000 cached` and
    /// `· 20 thinking` when there are such tokens.
    pub fn line(&self) -> String {
        // A breakdown says something only when files are part of the prompt.
        let counted: Vec<&ModalityTokens> =
            self.prompt_tokens_details.iter().filter(|d| d.token_count > 0).collect();
        let by_kind = if counted.iter().all(|d| d.modality == "TEXT") {
            String::new()
        } else {
            let kinds: Vec<String> = counted
                .iter()
                .map(|d| format!("{} {}", grouped(d.token_count), d.label()))
                .collect();
            format!(" ({})", kinds.join(", "))
        };
        let mut line = format!(
            "{} tokens in{by_kind} · {} out",
            grouped(self.prompt_token_count),
            grouped(self.candidates_token_count)
        );
        if self.cached_content_token_count > 0 {
            line.push_str(&format!(" · {} cached", grouped(self.cached_content_token_count)));
        }
        if self.thoughts_token_count > 0 {
            line.push_str(&format!(" · {} thinking", grouped(self.thoughts_token_count)));
        }
        line
    }
}

impl CacheState {
    /// What the "Cache files" switch says of it.
    pub fn sentence(&self) -> String {
        match self {
            CacheState::Active { tokens, .. } => {
                format!("{} tokens of files are cached.", grouped(*tokens))
            }
            CacheState::TooSmall { tokens, minimum } => format!(
                "Nothing is cached: the files are {} tokens, and Gemini caches {} or more.",
                grouped(*tokens),
                grouped(*minimum)
            ),
            CacheState::NoFiles => {
                "Nothing is cached: no file goes with this request (files of summarized messages do not).".into()
            }
            CacheState::Failed { reason } => format!("Nothing was cached this time: {reason}"),
        }
    }
}

/// Human size with one decimal, e.g. `1.2 MB`, `340 KB`, `12 bytes` (SI units, as browsers
/// and operating systems show file sizes). Integer arithmetic only, rounding half to even as
/// `{:.1}` does: float formatting would weigh about 14 KB in the page's wasm.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
    }
    let n = bytes;
    // The unit whose value (n / div) stays under 999.95, as far as TB (`div` ≤ 10¹²: no
    // product below overflows, and a saturated `n * 100` is past any bound anyway).
    let (mut unit, mut div) = (0, 1000u64);
    while n.saturating_mul(100) >= 99_995 * div && unit < UNITS.len() - 1 {
        div *= 1000;
        unit += 1;
    }
    if n < 10 * div {
        let tenths = rounded(n * 10, div);
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    } else {
        format!("{} {}", rounded(n, div), UNITS[unit])
    }
}

/// `n / div` rounded to the nearest whole number, half to even.
fn rounded(n: u64, div: u64) -> u64 {
    let (q, r) = (n / div, n % div);
    if 2 * r > div || (2 * r == div && q % 2 == 1) {
        q + 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_is_what_gemini_is_sent() {
        let preview = Part {
            inline_data: Some(InlineData { mime_type: "image/jpeg".into(), data: "AA".into() }),
            ..Part::default()
        };
        let turn = |parts: Vec<Part>| Content { role: Role::User, parts };
        assert!(!turn(vec![]).is_turn());
        assert!(!turn(vec![preview.clone(), Part::text("  ")]).is_turn(), "a preview and blanks");
        assert!(turn(vec![preview, Part::text("what is it?")]).is_turn());
        let signature = Part {
            text: Some(String::new()),
            thought_signature: Some("sig".into()),
            ..Part::default()
        };
        assert!(turn(vec![signature]).is_turn(), "an empty answer part with its signature");
    }

    #[test]
    fn accepted_types() {
        assert_eq!(accepted_mime("a.pdf", "application/pdf").as_deref(), Some("application/pdf"));
        assert_eq!(accepted_mime("notes.md", "").as_deref(), Some("text/markdown"));
        assert_eq!(accepted_mime("x.csv", "text/csv; charset=utf-8").as_deref(), Some("text/csv"));
        assert_eq!(accepted_mime("photo.HEIC", "").as_deref(), Some("image/heic"));
        assert_eq!(accepted_mime("setup.exe", "application/x-msdownload"), None);
        assert_eq!(accepted_mime("archive.zip", "application/zip"), None);
        assert_eq!(accepted_mime("noext", ""), None);
        assert!(accept_attribute().contains(".pdf") && accept_attribute().contains("image/png"));
    }

    #[test]
    fn token_counts_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(25_800), "25,800");
        assert_eq!(grouped(1_048_576), "1,048,576");
        let usage = Usage {
            prompt_token_count: 26_000,
            candidates_token_count: 40,
            cached_content_token_count: 25_800,
            ..Usage::default()
        };
        assert_eq!(usage.line(), "26,000 tokens in · 40 out · 25,800 cached");
        let details =
            |modality: &str, token_count| ModalityTokens { modality: modality.into(), token_count };
        let usage = Usage {
            prompt_token_count: 267,
            candidates_token_count: 12,
            prompt_tokens_details: vec![
                details("TEXT", 9),
                details("DOCUMENT", 258),
                details("IMAGE", 0),
            ],
            ..Usage::default()
        };
        assert_eq!(usage.line(), "267 tokens in (9 text, 258 PDF) · 12 out");
        let text_only = Usage { prompt_tokens_details: vec![details("TEXT", 9)], ..usage.clone() };
        assert_eq!(text_only.line(), "267 tokens in · 12 out");
    }

    fn float_human_size(bytes: u64) -> String {
        const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
        if bytes < 1000 {
            return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
        }
        let mut value = bytes as f64 / 1000.0;
        let mut unit = 0;
        while value >= 999.95 && unit < UNITS.len() - 1 {
            value /= 1000.0;
            unit += 1;
        }
        if value < 10.0 {
            format!("{value:.1} {}", UNITS[unit])
        } else {
            format!("{value:.0} {}", UNITS[unit])
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_234), "1.2 KB");
        assert_eq!(human_size(340_000), "340 KB");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(human_size(9_960), "10.0 KB");
        assert_eq!(human_size(12_500), "12 KB");
        assert_eq!(human_size(13_500), "14 KB");
        assert_eq!(human_size(1_250), "1.2 KB");
        assert_eq!(human_size(u64::MAX), "18446744 TB");
        // As the float formatting it replaces, across magnitudes.
        for bytes in (0..4000u64).map(|i| i * 2_654_435_761 % 10u64.pow(1 + (i % 15) as u32)) {
            assert_eq!(human_size(bytes), float_human_size(bytes), "{bytes} bytes");
        }
    }

    #[test]
    fn parts_use_seed_002_names() {
        let part = Part {
            file_data: Some(FileData { mime_type: "application/pdf".into(), file_uri: "u".into() }),
            ..Part::default()
        };
        assert_eq!(
            serde_json::to_string(&part).unwrap(),
            r#"{"file_data":{"mime_type":"application/pdf","file_uri":"u"}}"#
        );
    }

    #[test]
    fn chat_events_are_tagged_lines() {
        let line = serde_json::to_string(&ChatEvent::Delta { text: "hi".into() }).unwrap();
        assert_eq!(line, r#"{"type":"delta","text":"hi"}"#);
    }
}
