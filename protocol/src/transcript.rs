//! A conversation as a file: the export/import format of ChatSphere's format
//! (`docs/export-format.md`), version `1.2`, field for field:
//!
//! ```json
//! {"version": "1.2",
//!  "conversation": [{"role": "user", "parts": [{"text": "…"}, {"inline_data": {…}, "file_data": {…}}]}, …],
//!  "conversation_summaries": [ … ],
//!  "uploaded_files": {"prsxstwp6anr": {"uploadTime": 1703752258000, "fileUri": "https://…/files/prsxstwp6anr"}}}
//! ```
//!
//! Older exports are accepted too: a bare array of messages, or a versioned object without
//! `uploaded_files` (ChatSphere's parser, `conversationService.js` `parseConversationData`).
//! Messages and parts are kept as JSON values, so that fields Parley does not use (ChatSphere's
//! `timestamp`, `uuid`, `lastUpdate`) survive a round trip, and `conversation_summaries` is
//! kept untouched. Parley writes its own extra facts about a File (name, size, MIME type,
//! expiry) beside `uploadTime` and `fileUri` in `uploaded_files`, never inside parts, which
//! ChatSphere's app sends to Gemini as they are.
//!
//! Import validates everything and refuses what it cannot trust with a [`ImportError`] that
//! says why: nothing is half-imported.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version Parley writes.
pub const FORMAT_VERSION: &str = "1.2";

/// Versions Parley reads: 1.2 and the earlier ones without `uploaded_files`.
pub const READABLE_VERSIONS: &[&str] = &["1.0", "1.1", "1.2"];

/// Largest file imported, bytes (16 MiB: a long conversation with a hundred image previews).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// Longest single string in an import, bytes (4 MiB: a 720×720 preview is far smaller; a
/// message as long as a model's whole context window fits).
pub const MAX_STRING_BYTES: usize = 4 * 1024 * 1024;

/// Most messages in one conversation (a thousand turns).
pub const MAX_MESSAGES: usize = 2_000;

/// Deepest nesting accepted (objects and arrays), levels.
pub const MAX_DEPTH: usize = 32;

/// What Parley knows about one uploaded File, keyed by its id in [`Transcript::uploaded_files`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedFile {
    /// When it was uploaded, ms since the Unix epoch (ChatSphere's `uploadTime`; kept as
    /// written, integer or not).
    #[serde(rename = "uploadTime")]
    pub upload_time: serde_json::Number,
    /// The File's URI (ChatSphere's `fileUri`).
    #[serde(rename = "fileUri")]
    pub file_uri: String,
    /// Other fields: Parley's `name`, `sizeBytes`, `mimeType`, `expirationTime`, `expired`,
    /// or anything another app wrote.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One conversation in the export format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    /// Gemini `contents`, one JSON object per message (`role`, `parts`, and whatever else).
    pub conversation: Vec<Value>,
    /// Kept as given (ChatSphere's app stores its own summaries here).
    pub conversation_summaries: Value,
    /// File id → tracking.
    pub uploaded_files: BTreeMap<String, TrackedFile>,
    /// Parley's extra field `model`: the conversation's model id, when one was chosen
    /// (ChatSphere's importer ignores fields it does not know).
    pub model: Option<String>,
    /// Parley's extra field `cache_files`: the conversation's "Cache files" switch, when on.
    pub cache_files: bool,
}

/// Why a file could not be imported. Nothing is imported when any of these occurs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Over [`MAX_IMPORT_BYTES`].
    #[error("The file is too large to import ({size} bytes; the limit is {limit} bytes).")]
    TooLarge {
        /// Its size, bytes.
        size: usize,
        /// The limit, bytes.
        limit: usize,
    },
    /// Not JSON at all, or nested deeper than [`MAX_DEPTH`].
    #[error("The file is not a conversation export: {0}")]
    NotJson(String),
    /// A `version` Parley does not know.
    #[error("This export has version “{0}”, which Parley cannot read (it reads 1.0 to 1.2).")]
    UnknownVersion(String),
    /// The structure is wrong: `what` says where and how.
    #[error("The export is malformed: {0}.")]
    Malformed(String),
}

impl Transcript {
    /// The export file's text: pretty JSON (two-space indent), keys sorted, so that the same
    /// conversation always gives the same bytes.
    pub fn to_export(&self) -> String {
        let mut root = Map::new();
        root.insert("version".into(), Value::String(FORMAT_VERSION.into()));
        root.insert("conversation".into(), Value::Array(self.conversation.clone()));
        let summaries = match &self.conversation_summaries {
            Value::Null => Value::Array(Vec::new()),
            other => other.clone(),
        };
        root.insert("conversation_summaries".into(), summaries);
        if let Some(model) = &self.model {
            root.insert("model".into(), Value::String(model.clone()));
        }
        if self.cache_files {
            root.insert("cache_files".into(), Value::Bool(true));
        }
        root.insert(
            "uploaded_files".into(),
            serde_json::to_value(&self.uploaded_files)
                .unwrap_or_else(|_| Value::Object(Map::new())),
        );
        let mut text = serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads an export (any readable version), validating every field Parley uses.
    ///
    /// # Errors
    /// An [`ImportError`] saying what is wrong; nothing is returned half-read.
    pub fn from_export(text: &str) -> Result<Transcript, ImportError> {
        if text.len() > MAX_IMPORT_BYTES {
            return Err(ImportError::TooLarge { size: text.len(), limit: MAX_IMPORT_BYTES });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| ImportError::NotJson(e.to_string()))?;
        check_shape(&value, 0)?;
        let (conversation, summaries, files, settings) = match value {
            Value::Array(messages) => (messages, Value::Array(Vec::new()), None, (None, false)),
            Value::Object(mut root) => {
                let version = match root.remove("version") {
                    Some(Value::String(v)) => v,
                    Some(other) => return Err(ImportError::UnknownVersion(other.to_string())),
                    None => return Err(ImportError::Malformed("it has no `version`".into())),
                };
                if !READABLE_VERSIONS.contains(&version.as_str()) {
                    return Err(ImportError::UnknownVersion(version));
                }
                let conversation = match root.remove("conversation") {
                    Some(Value::Array(messages)) => messages,
                    _ => {
                        return Err(ImportError::Malformed(
                            "`conversation` must be a list of messages".into(),
                        ))
                    }
                };
                let summaries = match root.remove("conversation_summaries") {
                    None | Some(Value::Null) => Value::Array(Vec::new()),
                    Some(s @ Value::Array(_)) => s,
                    Some(_) => {
                        return Err(ImportError::Malformed(
                            "`conversation_summaries` must be a list".into(),
                        ))
                    }
                };
                let model = match root.remove("model") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(m)) if !m.is_empty() && m.len() <= 200 => Some(m),
                    Some(_) => {
                        return Err(ImportError::Malformed("`model` must be a model name".into()))
                    }
                };
                let cache_files = matches!(root.remove("cache_files"), Some(Value::Bool(true)));
                (conversation, summaries, root.remove("uploaded_files"), (model, cache_files))
            }
            _ => {
                return Err(ImportError::Malformed(
                    "the file holds neither an export object nor a list of messages".into(),
                ))
            }
        };
        if conversation.len() > MAX_MESSAGES {
            return Err(ImportError::Malformed(format!(
                "it has {} messages; at most {MAX_MESSAGES} are taken",
                conversation.len()
            )));
        }
        for (i, message) in conversation.iter().enumerate() {
            check_message(message)
                .map_err(|why| ImportError::Malformed(format!("message {}: {why}", i + 1)))?;
        }
        let uploaded_files = match files {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(id, entry)| {
                    serde_json::from_value::<TrackedFile>(entry)
                        .map(|t| (id.clone(), t))
                        .map_err(|e| ImportError::Malformed(format!("`uploaded_files.{id}`: {e}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ImportError::Malformed(
                    "`uploaded_files` must map file ids to their tracking".into(),
                ))
            }
        };
        let (model, cache_files) = settings;
        Ok(Transcript {
            conversation,
            conversation_summaries: summaries,
            uploaded_files,
            model,
            cache_files,
        })
    }
}

/// Depth and string-size limits over the whole tree.
fn check_shape(value: &Value, depth: usize) -> Result<(), ImportError> {
    if depth > MAX_DEPTH {
        return Err(ImportError::NotJson(format!("it is nested deeper than {MAX_DEPTH} levels")));
    }
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => Err(ImportError::Malformed(format!(
            "a text of {} bytes is longer than the {MAX_STRING_BYTES} bytes allowed",
            s.len()
        ))),
        Value::Array(items) => items.iter().try_for_each(|v| check_shape(v, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| check_shape(v, depth + 1)),
        _ => Ok(()),
    }
}

/// One message: `role` `user` or `model`, `parts` a list of parts of known shapes.
fn check_message(message: &Value) -> Result<(), String> {
    let object = message.as_object().ok_or("it is not an object")?;
    match object.get("role").and_then(Value::as_str) {
        Some("user" | "model") => {}
        Some(other) => {
            return Err(format!("unknown role “{}”", other.chars().take(40).collect::<String>()))
        }
        None => return Err("it has no role".into()),
    }
    let parts = object.get("parts").and_then(Value::as_array).ok_or("`parts` must be a list")?;
    for (j, part) in parts.iter().enumerate() {
        check_part(part).map_err(|why| format!("part {}: {why}", j + 1))?;
    }
    Ok(())
}

fn check_part(part: &Value) -> Result<(), String> {
    let object = part.as_object().ok_or("it is not an object")?;
    if let Some(text) = object.get("text") {
        text.as_str().ok_or("`text` must be text")?;
    }
    if let Some(inline) = field(object, "inline_data", "inlineData") {
        let inline = inline.as_object().ok_or("`inline_data` must be an object")?;
        field(inline, "mime_type", "mimeType")
            .and_then(Value::as_str)
            .ok_or("`inline_data.mime_type` is missing")?;
        inline.get("data").and_then(Value::as_str).ok_or("`inline_data.data` is missing")?;
    }
    if let Some(file) = field(object, "file_data", "fileData") {
        let file = file.as_object().ok_or("`file_data` must be an object")?;
        field(file, "file_uri", "fileUri")
            .and_then(Value::as_str)
            .ok_or("`file_data.file_uri` is missing")?;
        if let Some(mime) = field(file, "mime_type", "mimeType") {
            mime.as_str().ok_or("`file_data.mime_type` must be text")?;
        }
    }
    Ok(())
}

/// A field under either of its proto3 names.
pub fn field<'a>(object: &'a Map<String, Value>, snake: &str, camel: &str) -> Option<&'a Value> {
    object.get(snake).or_else(|| object.get(camel))
}

/// Points every `file_data.file_uri` (or `fileData.fileUri`) equal to `old` anywhere in
/// `value` at `new`; true when something changed. For a stored message whose File was
/// uploaded again under a new URI.
pub fn rewrite_file_uri(value: &mut Value, old: &str, new: &str) -> bool {
    match value {
        Value::Object(object) => {
            let mut changed = false;
            for (key, item) in object.iter_mut() {
                if (key == "file_uri" || key == "fileUri") && item.as_str() == Some(old) {
                    *item = Value::String(new.to_string());
                    changed = true;
                } else {
                    changed |= rewrite_file_uri(item, old, new);
                }
            }
            changed
        }
        Value::Array(items) => {
            items.iter_mut().fold(false, |changed, item| rewrite_file_uri(item, old, new) | changed)
        }
        _ => false,
    }
}

/// `uploadTime` for a moment given in ms since the epoch: a whole number, as JavaScript's
/// `Date.now()` gives.
pub fn upload_time(ms: f64) -> serde_json::Number {
    serde_json::Number::from(ms.max(0.0) as u64)
}

/// The File id in a Files-API URI: `abc` of `https://…/files/abc` (ChatSphere's
/// `/\/files\/([^\/\?]+)/`).
pub fn file_id_of(uri: &str) -> Option<&str> {
    let tail = uri.split_once("/files/")?.1;
    let id = tail.split(['/', '?', '#']).next()?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_EXPORT: &str = r#"{
        "version": "1.2",
        "conversation": [
            {"role": "user", "timestamp": 1703752258000, "parts": [
                {"text": "What is in this file?", "uuid": "a1", "timestamp": 1703752258000, "lastUpdate": 1703752258000},
                {"file_data": {"mime_type": "application/pdf", "file_uri": "https://generativelanguage.googleapis.com/v1beta/files/prsxstwp6anr"}}
            ]},
            {"role": "model", "parts": [{"text": "A report."}]}
        ],
        "conversation_summaries": [{"summary": "talked about a report", "upTo": 2}],
        "uploaded_files": {
            "prsxstwp6anr": {"uploadTime": 1703752258000, "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/prsxstwp6anr"}
        }
    }"#;

    #[test]
    fn a_seed_002_export_imports_and_round_trips_byte_stable() {
        let t = Transcript::from_export(SEED_EXPORT).unwrap();
        assert_eq!(t.conversation.len(), 2);
        assert_eq!(t.uploaded_files["prsxstwp6anr"].upload_time.as_u64(), Some(1703752258000));
        assert_eq!(t.conversation[0]["parts"][0]["uuid"], "a1", "unknown fields survive");
        let once = t.to_export();
        assert!(
            once.contains(r#""uploadTime": 1703752258000"#) && !once.contains("1703752258000.0"),
            "{once}"
        );
        let twice = Transcript::from_export(&once).unwrap().to_export();
        assert_eq!(once, twice);
        let back: Value = serde_json::from_str(&once).unwrap();
        assert_eq!(back["version"], "1.2");
        assert_eq!(
            back["conversation_summaries"],
            serde_json::json!([{"summary": "talked about a report", "upTo": 2}])
        );
    }

    #[test]
    fn older_exports_are_read() {
        let bare = r#"[{"role": "user", "parts": [{"text": "hi"}]}]"#;
        let t = Transcript::from_export(bare).unwrap();
        assert_eq!(t.conversation.len(), 1);
        assert!(t.uploaded_files.is_empty());
        let v11 = r#"{"version": "1.1", "conversation": [{"role": "model", "parts": [{"text": "yo"}]}], "conversation_summaries": []}"#;
        assert!(Transcript::from_export(v11).unwrap().uploaded_files.is_empty());
    }

    #[test]
    fn hostile_files_are_refused_with_a_reason() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not a conversation export"),
            (r#"{"version": "9.0", "conversation": []}"#.into(), "version “9.0”"),
            (r#"{"version": 12, "conversation": []}"#.into(), "version “12”"),
            (r#"{"version": "1.2", "conversation": "nope"}"#.into(), "must be a list"),
            (r#"{"version": "1.2", "conversation": [{"role": "admin", "parts": []}]}"#.into(), "unknown role"),
            (r#"{"version": "1.2", "conversation": [{"role": "user", "parts": [{"text": 5}]}]}"#.into(), "`text` must be text"),
            (r#"{"version": "1.2", "conversation": [{"role": "user", "parts": [{"file_data": {}}]}]}"#.into(), "file_uri"),
            (r#"{"version": "1.2", "conversation": [], "uploaded_files": {"x": {"fileUri": 3}}}"#.into(), "uploaded_files.x"),
            (r#"{"version": "1.2", "conversation": [], "conversation_summaries": "x"}"#.into(), "conversation_summaries"),
            (format!("{}1{}", "[".repeat(100), "]".repeat(100)), "nested deeper"),
            (
                format!(r#"[{{"role": "user", "parts": [{{"text": "{}"}}]}}]"#, "a".repeat(MAX_STRING_BYTES + 1)),
                "longer than",
            ),
        ];
        for (text, why) in cases {
            let err = Transcript::from_export(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{} → {err}", &text[..text.len().min(60)]);
        }
        let huge = " ".repeat(MAX_IMPORT_BYTES + 1);
        assert!(matches!(Transcript::from_export(&huge), Err(ImportError::TooLarge { .. })));
    }

    #[test]
    fn file_uris_are_rewritten_in_both_casings() {
        let mut message = serde_json::json!({"role": "user", "parts": [
            {"file_data": {"mime_type": "image/png", "file_uri": "https://x/files/old"}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://x/files/old"}},
            {"file_data": {"mime_type": "image/png", "file_uri": "https://x/files/other"}},
            {"text": "https://x/files/old"}
        ]});
        assert!(rewrite_file_uri(&mut message, "https://x/files/old", "https://x/files/new"));
        let text = message.to_string();
        assert_eq!(text.matches("files/new").count(), 2);
        assert!(text.contains("files/other") && text.contains(r#"{"text":"https://x/files/old"}"#));
        assert!(!rewrite_file_uri(&mut message, "https://x/files/old", "https://x/files/new"));
    }

    /// Found by `cargo fuzz` (target import): a long decimal number used to parse to a nearby
    /// float that exported as digits parsing to another one, so export → import changed it.
    /// serde_json's `float_roundtrip` parses every number to the nearest float.
    #[test]
    fn long_numbers_survive_export_and_import() {
        let text = r#"{"version": "1.2", "conversation": [{"role": "user", "parts": [{"text": "hi", "timestamp": 1722222222200000000000000000000000000000000000000000000000000000016397105824827414993}]}]}"#;
        let transcript = Transcript::from_export(text).unwrap();
        assert_eq!(Transcript::from_export(&transcript.to_export()), Ok(transcript));
    }

    #[test]
    fn file_ids_come_from_uris() {
        assert_eq!(
            file_id_of("https://generativelanguage.googleapis.com/v1beta/files/prsxstwp6anr"),
            Some("prsxstwp6anr")
        );
        assert_eq!(file_id_of("http://127.0.0.1:3/v1/files/abc?x=1"), Some("abc"));
        assert_eq!(file_id_of("https://example.com/nothing"), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Arbitrary JSON, a few levels deep.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "\\PC{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("version".to_string()),
                        Just("conversation".to_string()),
                        Just("parts".to_string()),
                        Just("role".to_string()),
                        Just("file_data".to_string()),
                        Just("file_uri".to_string()),
                        Just("uploaded_files".to_string()),
                        Just("text".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
            ]
        })
    }

    /// An export with `conversation` made of arbitrary messages, so that many inputs get past
    /// the first checks.
    fn export_like() -> impl Strategy<Value = String> {
        (prop_oneof![Just("1.2"), Just("1.1"), Just("1.0"), Just("2.0")], proptest::collection::vec(json(), 0..4), json())
            .prop_map(|(version, conversation, files)| {
                serde_json::json!({"version": version, "conversation": conversation, "uploaded_files": files}).to_string()
            })
    }

    proptest! {
        /// Any text: a transcript or a typed error, never a panic.
        #[test]
        fn any_text_imports_or_says_why(text in "\\PC{0,400}") {
            let _ = Transcript::from_export(&text);
        }

        /// Any JSON, and export-shaped JSON: what imports exports and imports again to the same
        /// transcript (nothing half-read, nothing lost).
        #[test]
        fn what_imports_round_trips(text in prop_oneof![json().prop_map(|v| v.to_string()), export_like()]) {
            if let Ok(transcript) = Transcript::from_export(&text) {
                let again = Transcript::from_export(&transcript.to_export());
                prop_assert_eq!(again, Ok(transcript));
            }
        }
    }
}
