//! One chat turn: upload the user's files, then stream the answer into a model bubble.

use futures::{
    future::{AbortHandle, Abortable},
    StreamExt,
};
use leptos::prelude::*;
use web_sys::FormData;

use crate::{
    api,
    client::state::{Chat, Message, Progress, Status},
    error::AppError,
    model::{ChatEvent, UploadedFile},
};

/// Uploads `message`'s files that are not uploaded yet, marks it `sent`, then asks for the
/// answer. A failed upload marks the message `error` (with Retry) and stops the turn.
pub async fn run(chat: Chat, message: Message) {
    chat.busy.set(true);
    chat.typing.set(true);
    for (attachment, file) in message.attachments.iter().zip(message.files.iter()) {
        if attachment.uploaded.get_untracked().is_some() {
            continue;
        }
        attachment.progress.set(Some(Progress::Sending(0)));
        let result = upload(file, &attachment.mime_type, attachment.progress.clone()).await;
        attachment.progress.set(None);
        match result {
            Ok(uploaded) => attachment.uploaded.set(Some(uploaded)),
            Err(e) => {
                message.fail(format!("“{}” could not be uploaded. {e}", attachment.name));
                chat.typing.set(false);
                chat.busy.set(false);
                return;
            }
        }
    }
    message.status.set(Status::Sent);
    ask(chat).await;
}

/// Streams the answer to the conversation so far into a new model bubble. `Stop` (or Esc)
/// ends it early: the bubble keeps what arrived and is marked stopped.
pub async fn ask(chat: Chat) {
    chat.busy.set(true);
    chat.typing.set(true);
    upload_previews(chat).await;
    chat.answering.set(true);
    let answer = Message::model();
    let shown = std::rc::Rc::new(std::cell::Cell::new(false));
    let (handle, registration) = AbortHandle::new_pair();
    chat.stopper.set_value(Some(handle));
    let receiving = receive(chat, answer.clone(), shown.clone());
    if Abortable::new(receiving, registration).await.is_err() {
        show(chat, &answer, &shown);
        answer.stopped.set(true);
        answer.status.set(Status::Done);
    }
    chat.stopper.set_value(None);
    chat.answering.set(false);
    chat.typing.set(false);
    chat.busy.set(false);
    super::conversations::persist(chat).await;
}

/// Uploads, as this person's own Files, the pictures of the conversation that have a preview
/// but no File (a conversation continued from a shared link), so that Gemini sees them; one
/// that cannot be uploaded is left out of the request, as before.
async fn upload_previews(chat: Chat) {
    let waiting: Vec<(Message, crate::client::state::Attachment)> =
        chat.messages.with_untracked(|messages| {
            messages
                .iter()
                .filter(|m| matches!(m.status.get_untracked(), Status::Sent | Status::Done))
                .flat_map(|m| m.attachments.iter().map(move |a| (m.clone(), a.clone())))
                .filter(|(_, a)| {
                    a.uploaded.with_untracked(Option::is_none)
                        && !a.expired.get_untracked()
                        && a.preview.with_untracked(Option::is_some)
                })
                .collect()
        });
    for (message, attachment) in waiting {
        let preview = attachment.preview.get_untracked().unwrap_or_default();
        let Some(file) = crate::browser::preview::file_of(&preview, &attachment.name) else {
            continue;
        };
        attachment.progress.set(Some(Progress::Sending(0)));
        let result = upload(&file, "image/jpeg", attachment.progress.clone()).await;
        attachment.progress.set(None);
        match result {
            Ok(uploaded) => {
                attachment.uploaded.set(Some(uploaded));
                // Its stored JSON is written anew, with the File beside the preview.
                message.raw.set_value(None);
            }
            Err(e) => leptos::logging::warn!("a picture could not be uploaded: {e}"),
        }
    }
}

/// Puts the answer's bubble in the log (once), replacing the typing indicator.
fn show(chat: Chat, answer: &Message, shown: &std::cell::Cell<bool>) {
    if !shown.replace(true) {
        chat.typing.set(false);
        chat.push(answer.clone());
    }
}

/// Calls the `chat` server function and appends its NDJSON events to `answer`.
async fn receive(chat: Chat, answer: Message, shown: std::rc::Rc<std::cell::Cell<bool>>) {
    let stream = match api::chat(chat.request_contents(), chat.options()).await {
        Ok(stream) => stream,
        Err(AppError::BudgetSpent { message, sign_in }) => {
            // Nothing was sent: the message goes back into the composer, no bubble fails.
            chat.give_back(message, sign_in);
            return;
        }
        Err(e) => {
            show(chat, &answer, &shown);
            answer.fail(e.to_string());
            return;
        }
    };
    let mut stream = stream.into_inner();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                show(chat, &answer, &shown);
                answer.fail(e.to_string());
                return;
            }
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            show(chat, &answer, &shown);
            match serde_json::from_slice::<ChatEvent>(&line[..end]) {
                Ok(ChatEvent::Delta { text }) => answer.text.update(|t| t.push_str(&text)),
                Ok(ChatEvent::Expired { file_uri }) => chat.mark_expired(&file_uri),
                Ok(ChatEvent::Replaced { old_uri, file }) => chat.replace_file(&old_uri, &file),
                Ok(ChatEvent::Usage { usage }) => answer.usage.set(Some(usage)),
                Ok(ChatEvent::Budget { left }) => chat.budget.set(Some(left)),
                Ok(ChatEvent::Signature { thought_signature }) => {
                    answer.signatures.update_value(|all| all.push(thought_signature))
                }
                Ok(ChatEvent::Summarized { summary }) => chat.add_summary(summary),
                Ok(ChatEvent::Cache { cache }) => chat.cache_state.set(Some(cache)),
                Ok(ChatEvent::Done { finish_reason }) => {
                    if answer.text.with_untracked(|t| t.trim().is_empty()) {
                        // Never an empty bubble: say so, with Retry.
                        let why = finish_reason.unwrap_or_else(|| "none given".into());
                        answer.fail(format!("Gemini's answer had no text (finish reason: {why})."));
                    } else {
                        answer.status.set(Status::Done);
                    }
                    return;
                }
                Ok(ChatEvent::Error { error }) => {
                    answer.fail(error.to_string());
                    return;
                }
                Err(e) => {
                    answer.fail(AppError::Transport(format!("unreadable answer: {e}")).to_string());
                    return;
                }
            }
        }
    }
    show(chat, &answer, &shown);
    answer.fail("The answer was cut off. Please try again.");
}

/// Sends one file to the `upload_file` server function: `size`, `mime_type`, `name`,
/// `sha256`, then the bytes (see [`crate::api::upload_file`]), showing the bytes sent in
/// `progress` and then `Processing` until the server answers (the File is `ACTIVE` then).
/// Content this session already has `ACTIVE` (asked first with its SHA-256,
/// [`crate::api::find_upload`]) is not sent at all; a file whose hash cannot be made is sent
/// without one.
async fn upload(
    file: &web_sys::File,
    mime_type: &str,
    progress: ArcRwSignal<Option<Progress>>,
) -> Result<UploadedFile, AppError> {
    let sha256 = match crate::browser::digest::sha256(file).await {
        Ok(sha256) => Some(sha256),
        Err(e) => {
            leptos::logging::warn!("no SHA-256 for {}: {e}", file.name());
            None
        }
    };
    if let Some(sha256) = &sha256 {
        if let Ok(Some(found)) = api::find_upload(sha256.clone()).await {
            return Ok(found);
        }
    }
    let form =
        FormData::new().map_err(|_| AppError::Transport("FormData is unavailable".into()))?;
    let appended = form
        .append_with_str("size", &(file.size() as u64).to_string())
        .and_then(|_| form.append_with_str("mime_type", mime_type))
        .and_then(|_| form.append_with_str("name", &file.name()))
        .and_then(|_| match &sha256 {
            Some(sha256) => form.append_with_str("sha256", sha256),
            None => Ok(()),
        })
        .and_then(|_| form.append_with_blob_and_filename("file", file, &file.name()));
    appended.map_err(|_| AppError::Transport("the file could not be read".into()))?;
    crate::browser::xhr::upload(&form, move |share| {
        let next = if share >= 1.0 {
            Progress::Processing
        } else {
            Progress::Sending((share * 100.0) as u8)
        };
        if progress.get_untracked() != Some(next) {
            progress.set(Some(next));
        }
    })
    .await
}
