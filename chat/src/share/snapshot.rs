//! What a shared link shows, built from an allow-list: per message its role, its text, and per
//! attachment its name, type, size and (when images are included) its preview — nothing else
//! of the conversation (no File URI or id, no SHA-256, no summary, no usage, no signature).
//! Pure functions, unit-tested here.

use base64::Engine;
use parley_protocol::transcript::{field, file_id_of, Transcript};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Most image previews one snapshot keeps.
pub const MAX_IMAGES: usize = 100;

/// Largest preview taken, bytes (a page's previews fit 720×720 as JPEG: far less).
pub const MAX_PREVIEW_BYTES: usize = 2 << 20;

/// A conversation as its shared page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its title.
    pub title: String,
    /// The model it was held with, when one was chosen.
    pub model: Option<String>,
    /// When it was taken, ms since the epoch.
    pub taken_ms: i64,
    /// Its messages, in order.
    pub messages: Vec<Shot>,
}

/// One message of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    /// `user` or `model`.
    pub role: String,
    /// Its text (Markdown, for an answer).
    pub text: String,
    /// Its attachments.
    pub attachments: Vec<Attachment>,
}

/// An attachment, as a shared page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's name.
    pub name: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its size, bytes (0: not known).
    pub size_bytes: u64,
    /// The number of its preview among the share's images, when it has one.
    pub image: Option<usize>,
}

/// A snapshot and what the caller must check or keep beside it.
#[derive(Debug)]
pub struct Built {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// The previews, as sent (decoded from base64, not yet re-encoded), by number.
    pub previews: Vec<Vec<u8>>,
    /// The File URIs the conversation names: each must be the sharer's (or no one's).
    pub file_uris: Vec<String>,
}

/// The snapshot of `transcript`, titled `title`, taken at `now_ms`; previews kept when
/// `include_images`.
pub fn build(transcript: &Transcript, title: &str, include_images: bool, now_ms: i64) -> Built {
    let mut previews = Vec::new();
    let mut file_uris = Vec::new();
    let messages = transcript
        .conversation
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|message| {
            let role = message.get("role")?.as_str()?;
            if role != "user" && role != "model" {
                return None;
            }
            let mut texts = Vec::new();
            let mut attachments = Vec::new();
            for part in message.get("parts")?.as_array()?.iter().filter_map(Value::as_object) {
                let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    if !thought && !text.is_empty() {
                        texts.push(text.to_string());
                    }
                }
                if let Some(attachment) =
                    attachment(part, transcript, include_images, &mut previews, &mut file_uris)
                {
                    attachments.push(attachment);
                }
            }
            Some(Shot { role: role.to_string(), text: texts.join("\n"), attachments })
        })
        .collect();
    file_uris.sort();
    file_uris.dedup();
    Built {
        snapshot: Snapshot {
            title: title.chars().take(200).collect(),
            model: transcript.model.clone(),
            taken_ms: now_ms,
            messages,
        },
        previews,
        file_uris,
    }
}

fn attachment(
    part: &Map<String, Value>,
    transcript: &Transcript,
    include_images: bool,
    previews: &mut Vec<Vec<u8>>,
    file_uris: &mut Vec<String>,
) -> Option<Attachment> {
    let inline = field(part, "inline_data", "inlineData").and_then(Value::as_object);
    let file = field(part, "file_data", "fileData").and_then(Value::as_object);
    if inline.is_none() && file.is_none() {
        return None;
    }
    let uri = file.and_then(|f| field(f, "file_uri", "fileUri")).and_then(Value::as_str);
    if let Some(uri) = uri {
        file_uris.push(uri.to_string());
    }
    let tracked = uri.and_then(file_id_of).and_then(|id| transcript.uploaded_files.get(id));
    let extra = |key: &str| tracked.and_then(|t| t.extra.get(key));
    let mime_type = file
        .and_then(|f| field(f, "mime_type", "mimeType"))
        .or_else(|| inline.and_then(|i| field(i, "mime_type", "mimeType")))
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .chars()
        .take(100)
        .collect::<String>();
    let name = extra("name")
        .and_then(Value::as_str)
        .map(|n| n.chars().take(200).collect())
        .unwrap_or_else(|| if mime_type.starts_with("image/") { "image" } else { "file" }.into());
    let image = inline
        .filter(|_| include_images && previews.len() < MAX_IMAGES)
        .filter(|i| {
            field(i, "mime_type", "mimeType")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("image/"))
        })
        .and_then(|i| i.get("data")?.as_str())
        .filter(|data| data.len() <= MAX_PREVIEW_BYTES / 3 * 4 + 4)
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok())
        .map(|bytes| {
            previews.push(bytes);
            previews.len() - 1
        });
    Some(Attachment {
        name,
        mime_type,
        size_bytes: extra("sizeBytes").and_then(Value::as_u64).unwrap_or(0),
        image,
    })
}

/// The conversation a viewer continues (`Continue this conversation`): the snapshot's
/// messages, each image preview as the message's own picture (`images`, JPEG, by number; the
/// page uploads it as the viewer's own File when they next send), every other attachment as a
/// sentence saying it was not shared. An export text (format 1.2).
pub fn continued(snapshot: &Snapshot, images: &[Vec<u8>]) -> String {
    let conversation = snapshot
        .messages
        .iter()
        .map(|shot| {
            let mut parts = Vec::new();
            for a in &shot.attachments {
                match a.image.and_then(|n| images.get(n)) {
                    Some(jpeg) => parts.push(json!({"inline_data": {
                        "mime_type": "image/jpeg",
                        "data": base64::engine::general_purpose::STANDARD.encode(jpeg),
                    }})),
                    None => parts.push(json!({
                        "text": format!("[“{}” was not shared with this conversation.]", a.name)
                    })),
                }
            }
            if !shot.text.is_empty() {
                parts.push(json!({"text": shot.text}));
            }
            json!({"role": shot.role, "parts": parts})
        })
        .collect();
    Transcript { conversation, model: snapshot.model.clone(), ..Transcript::default() }.to_export()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = r#"{"version": "1.2",
        "conversation": [
            {"role": "user", "parts": [
                {"inline_data": {"mime_type": "image/jpeg", "data": "AAEC"},
                 "file_data": {"mime_type": "image/jpeg", "file_uri": "https://g.example/v1beta/files/abc"}},
                {"file_data": {"mime_type": "application/pdf", "fileUri": "https://g.example/v1beta/files/pdf1"}},
                {"text": "What is this?", "uuid": "secret-uuid"}]},
            {"role": "model", "parts": [
                {"text": "thinking…", "thought": true},
                {"text": "A cat."},
                {"text": "", "thought_signature": "c2lnbmF0dXJl"}],
             "usage_metadata": {"promptTokenCount": 7}}],
        "conversation_summaries": [{"summary": "secret summary"}],
        "uploaded_files": {"abc": {"uploadTime": 1, "fileUri": "https://g.example/v1beta/files/abc",
                                   "name": "cat.jpg", "sizeBytes": 1234, "sha256": "f00d"}},
        "model": "gemini-2.5-pro"}"#;

    #[test]
    fn a_snapshot_holds_only_what_the_page_shows() {
        let transcript = Transcript::from_export(EXPORT).unwrap();
        let built = build(&transcript, "Cats", true, 42);
        assert_eq!(built.previews, [vec![0u8, 1, 2]]);
        assert_eq!(
            built.file_uris,
            ["https://g.example/v1beta/files/abc", "https://g.example/v1beta/files/pdf1"]
        );
        let shot = &built.snapshot;
        assert_eq!(
            (shot.title.as_str(), shot.model.as_deref(), shot.taken_ms),
            ("Cats", Some("gemini-2.5-pro"), 42)
        );
        assert_eq!(shot.messages.len(), 2);
        assert_eq!(shot.messages[0].text, "What is this?");
        assert_eq!(shot.messages[1].text, "A cat.", "no thought, no signature");
        let photo = &shot.messages[0].attachments[0];
        assert_eq!(
            (photo.name.as_str(), photo.size_bytes, photo.image),
            ("cat.jpg", 1234, Some(0))
        );
        let pdf = &shot.messages[0].attachments[1];
        assert_eq!(
            (pdf.name.as_str(), pdf.mime_type.as_str(), pdf.image),
            ("file", "application/pdf", None)
        );
        let stored = serde_json::to_string(shot).unwrap();
        for secret in
            ["files/abc", "pdf1", "f00d", "secret", "c2lnbmF0dXJl", "promptTokenCount", "thinking"]
        {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        let without = build(&transcript, "Cats", false, 42);
        assert!(without.previews.is_empty());
        assert_eq!(without.snapshot.messages[0].attachments[0].image, None);
    }

    #[test]
    fn a_continued_conversation_has_the_pictures_and_says_what_was_not_shared() {
        let transcript = Transcript::from_export(EXPORT).unwrap();
        let built = build(&transcript, "Cats", true, 42);
        let text = continued(&built.snapshot, &[vec![9, 9]]);
        let copy = Transcript::from_export(&text).unwrap();
        assert_eq!(copy.model.as_deref(), Some("gemini-2.5-pro"));
        let parts = copy.conversation[0]["parts"].as_array().unwrap();
        assert_eq!(parts[0]["inline_data"]["data"], "CQk=");
        assert!(parts[0].get("file_data").is_none(), "never the sharer's File");
        assert_eq!(parts[1]["text"], "[“file” was not shared with this conversation.]");
        assert_eq!(parts[2]["text"], "What is this?");
        assert!(!text.contains("files/"));
    }
}
