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
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part { text: Some(text.into()), ..Part::default() }
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
    /// `ACTIVE`, or `EXPIRED` once known gone.
    pub state: String,
    /// RFC 3339 `expirationTime` from Gemini.
    pub expiration_time: Option<String>,
    /// Whether the server keeps a copy of the bytes to upload again after expiry.
    pub retained: bool,
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
    if base.starts_with("text/") || ACCEPTED.iter().any(|(m, _)| *m == base) {
        return Some(base);
    }
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    ACCEPTED.iter().find(|(_, exts)| exts.contains(&ext.as_str())).map(|(m, _)| m.to_string())
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
    /// The model name, e.g. `gemini-2.5-flash`.
    pub model: String,
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

/// Human size with one decimal, e.g. `1.2 MB`, `340 KB`, `12 bytes` (SI units, as browsers
/// and operating systems show file sizes).
pub fn human_size(bytes: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn human_sizes() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_234), "1.2 KB");
        assert_eq!(human_size(340_000), "340 KB");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(999_999), "1.0 MB");
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
