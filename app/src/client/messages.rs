//! Between the page's messages and the stored/exported form ([`Transcript`]): Gemini
//! `contents` with snake_case parts, as ChatSphere's format (`docs/export-format.md`) keeps them —
//! for an image, one part with `inline_data` (the preview, for display) and `file_data` (the File,
//! for requests); for other files only `file_data`.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::{json, Map, Value};

use super::state::{Attachment, Message, Status};
use crate::{
    model::{Role, UploadedFile},
    transcript::{field, file_id_of, upload_time, TrackedFile, Transcript},
};

/// Longest title, characters.
const TITLE_CHARS: usize = 60;

/// The conversation's title: its first user text (shortened), else its first file's name,
/// else `New chat`.
pub fn title_of(messages: &[Message]) -> String {
    let first_text = messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.text.get_untracked())
        .find(|t| !t.trim().is_empty());
    if let Some(text) = first_text {
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let mut title: String = line.chars().take(TITLE_CHARS).collect();
        if line.chars().count() > TITLE_CHARS {
            title.push('…');
        }
        return title;
    }
    messages
        .iter()
        .flat_map(|m| m.attachments.iter())
        .map(|a| a.name.clone())
        .next()
        .unwrap_or_else(|| "New chat".into())
}

/// The settled messages as a transcript: user turns that were sent and answers that are
/// complete (or stopped). `summaries` and the known `tracked` files are carried over; every
/// File of the conversation gets its tracking (with Parley's name, size, MIME type, expiry).
pub fn to_transcript(
    messages: &[Message],
    summaries: &Value,
    tracked: &BTreeMap<String, TrackedFile>,
    now_ms: f64,
) -> Transcript {
    let mut uploaded_files = tracked.clone();
    let mut conversation = Vec::new();
    for message in messages.iter().filter(|m| is_settled(m)) {
        for attachment in &message.attachments {
            if let Some(file) = attachment.uploaded.get_untracked() {
                if let Some(id) = file_id_of(&file.uri) {
                    uploaded_files
                        .entry(id.to_string())
                        .or_insert_with(|| track(&file, attachment, now_ms));
                }
            }
        }
        let value = message.raw.get_value().unwrap_or_else(|| to_json(message));
        conversation.push(value);
    }
    Transcript {
        conversation,
        conversation_summaries: summaries.clone(),
        uploaded_files,
        ..Transcript::default()
    }
}

/// Whether a message is kept: a user turn that was sent, an answer that is complete.
fn is_settled(message: &Message) -> bool {
    matches!(message.status.get_untracked(), Status::Sent | Status::Done)
}

/// The ids of the messages [`to_transcript`] keeps, in its order.
pub fn keys_of(messages: &[Message]) -> Vec<String> {
    messages.iter().filter(|m| is_settled(m)).map(|m| m.key.clone()).collect()
}

fn track(file: &UploadedFile, attachment: &Attachment, now_ms: f64) -> TrackedFile {
    let mut extra = Map::new();
    extra.insert("name".into(), json!(attachment.name));
    extra.insert("sizeBytes".into(), json!(attachment.size));
    extra.insert("mimeType".into(), json!(file.mime_type));
    if let Some(t) = &file.expiration_time {
        extra.insert("expirationTime".into(), json!(t));
    }
    TrackedFile { upload_time: upload_time(now_ms), file_uri: file.uri.clone(), extra }
}

/// A message made in Parley, as JSON: file parts first, then the text; an answer's
/// `thoughtSignature`s as parts of their own with empty text (what Gemini sends back, and
/// ChatSphere, the export format's first app, would send on as they are), its token counts as
/// `usage_metadata`.
fn to_json(message: &Message) -> Value {
    let mut parts = Vec::new();
    for attachment in &message.attachments {
        let mut part = Map::new();
        if let Some(preview) = attachment.preview.get_untracked() {
            if let Some((mime, data)) = split_data_url(&preview) {
                part.insert("inline_data".into(), json!({"mime_type": mime, "data": data}));
            }
        }
        if let Some(file) = attachment.uploaded.get_untracked() {
            part.insert(
                "file_data".into(),
                json!({"mime_type": file.mime_type, "file_uri": file.uri}),
            );
        }
        if !part.is_empty() {
            parts.push(Value::Object(part));
        }
    }
    let text = message.text.get_untracked();
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    for signature in message.signatures.get_value() {
        parts.push(json!({"text": "", "thought_signature": signature}));
    }
    let mut value = json!({"role": message.role.as_str(), "parts": parts});
    if let Some(usage) = message.usage.get_untracked() {
        value["usage_metadata"] = serde_json::to_value(usage).unwrap_or(Value::Null);
    }
    value
}

/// `("image/jpeg", "<base64>")` from `data:image/jpeg;base64,<base64>`.
fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (mime, data) = rest.split_once(";base64,")?;
    Some((mime, data))
}

/// The page's messages for a transcript. Each keeps its JSON, so that exporting it again
/// gives the same bytes, and its id from `keys` (by position; a new one past its end); files
/// are named from `uploaded_files` when Parley tracked them.
pub fn messages_from(transcript: &Transcript, keys: &[String]) -> Vec<Message> {
    transcript
        .conversation
        .iter()
        .enumerate()
        .filter_map(|(at, value)| {
            let object = value.as_object()?;
            let role = match object.get("role")?.as_str()? {
                "user" => Role::User,
                "model" => Role::Model,
                _ => return None,
            };
            let mut texts = Vec::new();
            let mut attachments = Vec::new();
            let mut signatures = Vec::new();
            for part in object.get("parts")?.as_array()? {
                let Some(part) = part.as_object() else { continue };
                let signature = field(part, "thought_signature", "thoughtSignature")
                    .and_then(Value::as_str)
                    .filter(|s| role == Role::Model && !s.is_empty());
                let text = part.get("text").and_then(Value::as_str);
                if let Some(signature) = signature {
                    signatures.push(signature.to_string());
                    // A signature's own empty text part is not text of the message.
                    if text.is_some_and(|t| !t.is_empty()) {
                        texts.extend(text.map(str::to_string));
                    }
                } else if let Some(text) = text {
                    texts.push(text.to_string());
                }
                if let Some(attachment) = attachment_of(part, &transcript.uploaded_files) {
                    attachments.push(attachment);
                }
            }
            let key = keys.get(at).cloned();
            let message =
                Message::restored(role, texts.join("\n"), attachments, value.clone(), key);
            message.signatures.set_value(signatures);
            let usage = field(object, "usage_metadata", "usageMetadata")
                .and_then(|u| serde_json::from_value(u.clone()).ok());
            message.usage.set(usage);
            Some(message)
        })
        .collect()
}

fn attachment_of(
    part: &Map<String, Value>,
    tracked: &BTreeMap<String, TrackedFile>,
) -> Option<Attachment> {
    let inline = field(part, "inline_data", "inlineData").and_then(Value::as_object);
    let file = field(part, "file_data", "fileData").and_then(Value::as_object);
    if inline.is_none() && file.is_none() {
        return None;
    }
    let preview = inline.and_then(|i| {
        let mime = field(i, "mime_type", "mimeType")?.as_str()?;
        let data = i.get("data")?.as_str()?;
        Some(format!("data:{mime};base64,{data}"))
    });
    let uri = file.and_then(|f| field(f, "file_uri", "fileUri")).and_then(Value::as_str);
    let id = uri.and_then(file_id_of);
    let track = id.and_then(|id| tracked.get(id));
    let extra = |key: &str| track.and_then(|t| t.extra.get(key));
    let mime_type = file
        .and_then(|f| field(f, "mime_type", "mimeType"))
        .or_else(|| inline.and_then(|i| field(i, "mime_type", "mimeType")))
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream")
        .to_string();
    let name = extra("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| id.map_or_else(|| "image".to_string(), |id| format!("file {id}")));
    let size = extra("sizeBytes").and_then(Value::as_u64).unwrap_or(0);
    let uploaded = uri.map(|uri| UploadedFile {
        name: id.map(|id| format!("files/{id}")).unwrap_or_default(),
        uri: uri.to_string(),
        mime_type: mime_type.clone(),
        size_bytes: size,
        sha256: String::new(),
        expiration_time: extra("expirationTime").and_then(Value::as_str).map(str::to_string),
        display_name: name.clone(),
    });
    let expired = extra("expired").and_then(Value::as_bool).unwrap_or(false);
    Some(Attachment {
        name,
        mime_type,
        size,
        preview: ArcRwSignal::new(preview),
        uploaded: ArcRwSignal::new(uploaded),
        expired: ArcRwSignal::new(expired),
        progress: ArcRwSignal::new(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_survives_the_page_and_back() {
        let text = r#"{"version": "1.2",
            "conversation": [
                {"role": "user", "timestamp": 5, "parts": [{"text": "Look", "uuid": "x"},
                    {"inline_data": {"mime_type": "image/jpeg", "data": "AAAA"},
                     "file_data": {"mime_type": "image/jpeg", "file_uri": "https://g.example/v1beta/files/abc"}}]},
                {"role": "model", "parts": [{"text": "A cat."}]}],
            "conversation_summaries": [{"s": 1}],
            "uploaded_files": {"abc": {"uploadTime": 7, "fileUri": "https://g.example/v1beta/files/abc", "name": "cat.jpg", "sizeBytes": 1234}}}"#;
        let transcript = Transcript::from_export(text).unwrap();
        let messages = messages_from(&transcript, &["m1".into()]);
        assert_eq!(messages[0].key, "m1");
        assert_eq!(keys_of(&messages)[0], "m1");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].text.get_untracked(), "Look");
        let photo = &messages[0].attachments[0];
        assert_eq!((photo.name.as_str(), photo.size), ("cat.jpg", 1234));
        assert_eq!(photo.preview.get_untracked().as_deref(), Some("data:image/jpeg;base64,AAAA"));
        assert_eq!(
            photo.uploaded.get_untracked().unwrap().uri,
            "https://g.example/v1beta/files/abc"
        );
        assert_eq!(title_of(&messages), "Look");
        let back = to_transcript(
            &messages,
            &transcript.conversation_summaries,
            &transcript.uploaded_files,
            99.0,
        );
        assert_eq!(back.to_export(), transcript.to_export());

        // An edited message is written anew, in ChatSphere's shape: preview + File in one part.
        messages[0].raw.set_value(None);
        let edited = to_transcript(
            &messages,
            &transcript.conversation_summaries,
            &transcript.uploaded_files,
            99.0,
        );
        let part = &edited.conversation[0]["parts"][0];
        assert_eq!(part["inline_data"]["data"], "AAAA");
        assert_eq!(part["file_data"]["file_uri"], "https://g.example/v1beta/files/abc");
        assert_eq!(edited.conversation[0]["parts"][1]["text"], "Look");
    }
}
