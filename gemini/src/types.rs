//! Wire types of the Gemini REST API.
//!
//! Output is camelCase, as Gemini writes it; input accepts camelCase and snake_case alike,
//! as proto3 JSON parsers must ("Parsers accept both the lowerCamelCase name … and the
//! original proto field name", <https://protobuf.dev/programming-guides/json/>).

use serde::{Deserialize, Deserializer, Serialize};

/// A File resource (<https://ai.google.dev/api/files#File>).
///
/// Fields holding defaults may be absent on the wire; they deserialize to their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// Resource name, `files/{id}` (id: up to 40 chars of `[a-z0-9-]`).
    #[serde(default)]
    pub name: String,
    /// Human name given at upload, up to 512 chars.
    #[serde(default, alias = "display_name", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// MIME type, e.g. `image/jpeg`.
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    /// Size in bytes. A string on the wire (int64); a number is accepted too.
    #[serde(
        default,
        alias = "size_bytes",
        deserialize_with = "de_int64",
        serialize_with = "ser_int64"
    )]
    pub size_bytes: u64,
    /// RFC 3339 creation time.
    #[serde(default, alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// RFC 3339 last update time.
    #[serde(default, alias = "update_time", skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    /// RFC 3339 time after which Gemini deletes the File (create + 48 h on Gemini).
    #[serde(default, alias = "expiration_time", skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// Base64 of the lowercase hex SHA-256 digest text (see `docs/gemini-protocol.md`).
    #[serde(default, alias = "sha256_hash", skip_serializing_if = "Option::is_none")]
    pub sha256_hash: Option<String>,
    /// The URI to put in `fileData.fileUri`.
    #[serde(default)]
    pub uri: String,
    /// Processing state.
    #[serde(default)]
    pub state: FileState,
    /// `UPLOADED`, `GENERATED` or `REGISTERED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why processing failed, when `state` is `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    /// Set for videos once processed.
    #[serde(default, alias = "video_metadata", skip_serializing_if = "Option::is_none")]
    pub video_metadata: Option<VideoMetadata>,
}

/// `videoMetadata`: `{"videoDuration": "2.5s"}` (a proto Duration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VideoMetadata {
    /// The video's length, e.g. `"2.5s"`.
    #[serde(default, alias = "video_duration", skip_serializing_if = "Option::is_none")]
    pub video_duration: Option<String>,
}

impl File {
    /// The bare id: `abc123` for `files/abc123`.
    pub fn id(&self) -> &str {
        self.name.strip_prefix("files/").unwrap_or(&self.name)
    }
}

/// One page of `files.list`: `{"files": [...], "nextPageToken": "..."}`; an empty page may
/// be `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FileList {
    /// The Files of this page.
    #[serde(default)]
    pub files: Vec<File>,
    /// The token of the next page; absent on the last one.
    #[serde(default, alias = "next_page_token", skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `google.rpc.Status`: `{code, message, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    /// gRPC code number (not HTTP).
    #[serde(default)]
    pub code: i32,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// A File's processing state (<https://ai.google.dev/api/files#State>).
///
/// Parsing is lenient (`lenient-states`): `ACTIVE`, `active`, `FileState.ACTIVE` and `STATE_ACTIVE`
/// all mean [`FileState::Active`]; anything unknown is kept as [`FileState::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FileState {
    /// `STATE_UNSPECIFIED`, or absent.
    #[default]
    Unspecified,
    /// Being processed; cannot be used for inference yet.
    Processing,
    /// Ready for inference.
    Active,
    /// Processing failed; see [`File::error`].
    Failed,
    /// A state this client does not know, upper-cased.
    Other(String),
}

impl FileState {
    /// The canonical wire name, e.g. `ACTIVE`.
    pub fn as_str(&self) -> &str {
        match self {
            FileState::Unspecified => "STATE_UNSPECIFIED",
            FileState::Processing => "PROCESSING",
            FileState::Active => "ACTIVE",
            FileState::Failed => "FAILED",
            FileState::Other(s) => s,
        }
    }

    /// Whether the File can no longer become `ACTIVE` (FAILED, ERROR, CANCELLED, …).
    pub fn is_terminal_failure(&self) -> bool {
        match self {
            FileState::Failed => true,
            FileState::Other(s) => matches!(s.as_str(), "ERROR" | "CANCELLED" | "CANCELED"),
            _ => false,
        }
    }
}

impl From<&str> for FileState {
    fn from(raw: &str) -> Self {
        let last = raw.rsplit('.').next().unwrap_or(raw).trim().to_ascii_uppercase();
        let name = last.strip_prefix("STATE_").filter(|s| *s != "UNSPECIFIED").unwrap_or(&last);
        match name {
            "" | "STATE_UNSPECIFIED" => FileState::Unspecified,
            "PROCESSING" => FileState::Processing,
            "ACTIVE" => FileState::Active,
            "FAILED" => FileState::Failed,
            other => FileState::Other(other.to_string()),
        }
    }
}

impl Serialize for FileState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FileState {
    /// A name, or — with `$alt=json;enum-encoding=int` — the proto's number (`file.proto`:
    /// 0 unspecified, 1 `PROCESSING`, 2 `ACTIVE`, 10 `FAILED`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match NameOrNumber::deserialize(d)? {
            NameOrNumber::Name(raw) => FileState::from(raw.as_str()),
            NameOrNumber::Number(0) => FileState::Unspecified,
            NameOrNumber::Number(1) => FileState::Processing,
            NameOrNumber::Number(2) => FileState::Active,
            NameOrNumber::Number(10) => FileState::Failed,
            NameOrNumber::Number(n) => FileState::Other(n.to_string()),
        })
    }
}

/// An enum on the wire: its name, or its number when the request asked
/// `$alt=json;enum-encoding=int`.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameOrNumber {
    Name(String),
    Number(u64),
}

/// The name of a `finishReason` (`generative_service.proto`, `Candidate.FinishReason`), given
/// as its name or its number.
fn de_finish_reason<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    const NAMES: [&str; 11] = [
        "FINISH_REASON_UNSPECIFIED",
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "OTHER",
        "LANGUAGE",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
    ];
    Ok(match Option::<NameOrNumber>::deserialize(d)? {
        None => None,
        Some(NameOrNumber::Name(name)) => Some(name),
        Some(NameOrNumber::Number(n)) => {
            Some(NAMES.get(n as usize).map_or_else(|| n.to_string(), |name| (*name).to_string()))
        }
    })
}

/// What a count of tokens is of (`generative_service.proto`, `Modality`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Modality {
    /// `MODALITY_UNSPECIFIED`, or absent.
    #[default]
    Unspecified,
    /// Plain text.
    Text,
    /// Images.
    Image,
    /// Video.
    Video,
    /// Audio.
    Audio,
    /// Documents (PDF).
    Document,
    /// One this client does not know, as given.
    Other(String),
}

impl Modality {
    /// The wire name, e.g. `DOCUMENT`.
    pub fn as_str(&self) -> &str {
        match self {
            Modality::Unspecified => "MODALITY_UNSPECIFIED",
            Modality::Text => "TEXT",
            Modality::Image => "IMAGE",
            Modality::Video => "VIDEO",
            Modality::Audio => "AUDIO",
            Modality::Document => "DOCUMENT",
            Modality::Other(s) => s,
        }
    }
}

impl Serialize for Modality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Modality {
    /// A name, or its number (0 unspecified, 1 `TEXT`, 2 `IMAGE`, 3 `VIDEO`, 4 `AUDIO`,
    /// 5 `DOCUMENT`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match NameOrNumber::deserialize(d)? {
            NameOrNumber::Name(name) => match name.to_ascii_uppercase().as_str() {
                "TEXT" => Modality::Text,
                "IMAGE" => Modality::Image,
                "VIDEO" => Modality::Video,
                "AUDIO" => Modality::Audio,
                "DOCUMENT" => Modality::Document,
                "" | "MODALITY_UNSPECIFIED" => Modality::Unspecified,
                _ => Modality::Other(name),
            },
            NameOrNumber::Number(n) => match n {
                1 => Modality::Text,
                2 => Modality::Image,
                3 => Modality::Video,
                4 => Modality::Audio,
                5 => Modality::Document,
                0 => Modality::Unspecified,
                n => Modality::Other(n.to_string()),
            },
        })
    }
}

/// Tokens of one modality (`ModalityTokenCount`,
/// <https://ai.google.dev/api/generate-content#modalitytokencount>); Gemini leaves out
/// `tokenCount` when it is 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModalityTokenCount {
    /// What the tokens are of.
    #[serde(default)]
    pub modality: Modality,
    /// How many, tokens.
    #[serde(default, alias = "token_count")]
    pub token_count: u64,
}

fn de_int64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Num(u64),
        Str(String),
    }
    match Int64::deserialize(d)? {
        Int64::Num(n) => Ok(n),
        Int64::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn ser_int64<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// One turn of a conversation (<https://ai.google.dev/api/caching#Content>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// `user` or `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The parts, in order.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a [`Content`] (<https://ai.google.dev/api/caching#Part>): one of `text`,
/// `inlineData` and `fileData` is set, optionally with `thought` and `thoughtSignature`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Bytes inline, base64.
    #[serde(default, alias = "inline_data", skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<InlineData>,
    /// A reference to an uploaded File.
    #[serde(default, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// `true` when the part is a summary of the model's thinking, not its answer
    /// (<https://ai.google.dev/gemini-api/docs/thinking>).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// An opaque signature of the model's thinking (base64 bytes), to be sent back unchanged
    /// in the model turn it came with (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
    /// Gemini 3 sends one even on an empty final text part.
    #[serde(default, alias = "thought_signature", skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part { text: Some(text.into()), ..Default::default() }
    }

    /// A `fileData` part referencing an uploaded File.
    pub fn file(mime_type: impl Into<String>, file_uri: impl Into<String>) -> Self {
        Part {
            file_data: Some(FileData {
                mime_type: Some(mime_type.into()),
                file_uri: file_uri.into(),
            }),
            ..Default::default()
        }
    }
}

/// `inlineData`: `{mimeType, data}` with standard padded base64 data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineData {
    /// MIME type of the bytes.
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    /// Base64 of the bytes.
    pub data: String,
}

/// `fileData`: `{mimeType, fileUri}`; `mimeType` is optional on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    /// MIME type of the File.
    #[serde(default, alias = "mime_type", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The File's `uri`.
    #[serde(alias = "file_uri")]
    pub file_uri: String,
}

/// The body of `generateContent` / `streamGenerateContent`
/// (<https://ai.google.dev/api/generate-content#request-body>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// The conversation so far, oldest first.
    pub contents: Vec<Content>,
    /// Optional system instruction. Gemini refuses it (400) together with `cached_content`:
    /// a cache carries its own.
    #[serde(default, alias = "system_instruction", skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// A context cache to put before `contents`: its resource name, `cachedContents/{id}`
    /// (<https://ai.google.dev/api/caching>). It must belong to the same key and name the
    /// same model as the request.
    #[serde(default, alias = "cached_content", skip_serializing_if = "Option::is_none")]
    pub cached_content: Option<String>,
    /// How the answer is generated (Parley sets `maxOutputTokens` where a budget applies).
    #[serde(default, alias = "generation_config", skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

/// `generationConfig` (<https://ai.google.dev/api/generate-content#generationconfig>): only
/// what Parley sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// The most tokens the answer may have (thinking included, on thinking models); past it
    /// the answer stops with `finishReason: MAX_TOKENS`.
    #[serde(default, alias = "max_output_tokens", skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

/// One response, or one SSE chunk of a streamed response (deltas per chunk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// Candidates; Parley uses the first.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Token counts; repeated on every chunk.
    #[serde(default, alias = "usage_metadata", skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model version that answered.
    #[serde(default, alias = "model_version", skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The answer's id: the same on every chunk of one streamed answer.
    #[serde(default, alias = "response_id", skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

impl GenerateContentResponse {
    /// The concatenated text of the first candidate's parts, thought summaries
    /// (`thought: true`) left out (empty when there is none).
    pub fn text(&self) -> String {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| {
                c.parts
                    .iter()
                    .filter(|p| p.thought != Some(true))
                    .filter_map(|p| p.text.as_deref())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first candidate's `finishReason`, present on the last chunk of a stream.
    pub fn finish_reason(&self) -> Option<&str> {
        self.candidates.first().and_then(|c| c.finish_reason.as_deref())
    }
}

/// One candidate answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer's content (role `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, … — on the last chunk only (a number on the wire is
    /// read as its name).
    #[serde(
        default,
        alias = "finish_reason",
        deserialize_with = "de_finish_reason",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish_reason: Option<String>,
    /// Position among the candidates.
    #[serde(default)]
    pub index: u32,
}

/// Token counts of a request
/// (<https://ai.google.dev/api/generate-content#UsageMetadata>), tokens. Absent counts are 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Tokens in the prompt, the cached content included.
    #[serde(default, alias = "prompt_token_count")]
    pub prompt_token_count: u64,
    /// Tokens in the candidates.
    #[serde(default, alias = "candidates_token_count")]
    pub candidates_token_count: u64,
    /// Tokens of the prompt that came from the request's `cachedContent`.
    #[serde(default, alias = "cached_content_token_count")]
    pub cached_content_token_count: u64,
    /// Tokens the model spent thinking (thinking models only).
    #[serde(default, alias = "thoughts_token_count")]
    pub thoughts_token_count: u64,
    /// Sum of all: prompt + candidates + thoughts.
    #[serde(default, alias = "total_token_count")]
    pub total_token_count: u64,
    /// The prompt's tokens by modality (Gemini gives them with every answer).
    #[serde(default, alias = "prompt_tokens_details", skip_serializing_if = "Vec::is_empty")]
    pub prompt_tokens_details: Vec<ModalityTokenCount>,
    /// The cached part's tokens by modality.
    #[serde(default, alias = "cache_tokens_details", skip_serializing_if = "Vec::is_empty")]
    pub cache_tokens_details: Vec<ModalityTokenCount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_state_is_lenient() {
        assert_eq!(FileState::from("ACTIVE"), FileState::Active);
        assert_eq!(FileState::from("FileState.ACTIVE"), FileState::Active);
        assert_eq!(FileState::from("active"), FileState::Active);
        assert_eq!(FileState::from("STATE_ACTIVE"), FileState::Active);
        assert_eq!(FileState::from("STATE_UNSPECIFIED"), FileState::Unspecified);
        assert!(FileState::from("CANCELLED").is_terminal_failure());
    }

    #[test]
    fn file_parses_the_documented_resource() {
        let json = r#"{"name":"files/prsxstwp6anr","displayName":"test","mimeType":"text/plain",
            "sizeBytes":"100","expirationTime":"2025-12-30T05:10:57.099754402Z",
            "uri":"https://generativelanguage.googleapis.com/v1beta/files/prsxstwp6anr",
            "state":"ACTIVE","source":"UPLOADED"}"#;
        let file: File = serde_json::from_str(json).unwrap();
        assert_eq!(file.id(), "prsxstwp6anr");
        assert_eq!(file.size_bytes, 100);
        assert_eq!(file.state, FileState::Active);
        let numeric: File = serde_json::from_str(r#"{"name":"files/a","size_bytes":7}"#).unwrap();
        assert_eq!(numeric.size_bytes, 7);
    }

    #[test]
    fn enums_are_read_as_names_or_numbers() {
        let json = r#"{"candidates": [{"content": {"parts": [{"text": "hi"}],"role": "model"},"finishReason": 1,"index": 0}],
            "usageMetadata": {"promptTokenCount": 267,"promptTokensDetails": [{"modality": 1,"tokenCount": 9},{"modality": "DOCUMENT","tokenCount": 258},{"modality": "IMAGE"}]},
            "responseId": "abc"}"#;
        let r: GenerateContentResponse = serde_json::from_str(json).unwrap();
        assert_eq!(r.finish_reason(), Some("STOP"));
        assert_eq!(r.response_id.as_deref(), Some("abc"));
        let details = &r.usage_metadata.unwrap().prompt_tokens_details;
        assert_eq!(details[0], ModalityTokenCount { modality: Modality::Text, token_count: 9 });
        assert_eq!(details[1].modality, Modality::Document);
        assert_eq!(details[2], ModalityTokenCount { modality: Modality::Image, token_count: 0 });
        let file: File = serde_json::from_str(r#"{"name":"files/a","state":2}"#).unwrap();
        assert_eq!(file.state, FileState::Active);
        let failed: File = serde_json::from_str(r#"{"name":"files/a","state":10}"#).unwrap();
        assert_eq!(failed.state, FileState::Failed);
    }

    #[test]
    fn parts_accept_both_casings_and_write_camel_case() {
        let snake: Part =
            serde_json::from_str(r#"{"file_data":{"mime_type":"image/png","file_uri":"u"}}"#)
                .unwrap();
        let camel: Part =
            serde_json::from_str(r#"{"fileData":{"mimeType":"image/png","fileUri":"u"}}"#).unwrap();
        assert_eq!(snake, camel);
        assert_eq!(
            serde_json::to_string(&snake).unwrap(),
            r#"{"fileData":{"mimeType":"image/png","fileUri":"u"}}"#
        );
    }
}
