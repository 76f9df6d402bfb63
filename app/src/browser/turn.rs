//! One chat turn: upload the user's files, then stream the answer into a model bubble.

use futures::StreamExt;
use leptos::prelude::*;
use web_sys::FormData;

use crate::{
    api,
    error::AppError,
    model::{ChatEvent, UploadedFile},
    ui::state::{Chat, Message, Status},
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
        match upload(file).await {
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

/// Streams the answer to the conversation so far into a new model bubble.
pub async fn ask(chat: Chat) {
    chat.busy.set(true);
    chat.typing.set(true);
    let answer = Message::model();
    let mut shown = false;
    let show = |shown: &mut bool| {
        if !*shown {
            *shown = true;
            chat.typing.set(false);
            chat.push(answer.clone());
        }
    };
    match api::chat(chat.request_contents()).await {
        Err(e) => {
            show(&mut shown);
            answer.fail(e.to_string());
        }
        Ok(stream) => {
            let mut stream = stream.into_inner();
            let mut buffer: Vec<u8> = Vec::new();
            let mut finished = false;
            'read: while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        show(&mut shown);
                        answer.fail(e.to_string());
                        finished = true;
                        break;
                    }
                };
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    show(&mut shown);
                    match serde_json::from_slice::<ChatEvent>(&line[..end]) {
                        Ok(ChatEvent::Delta { text }) => answer.text.update(|t| t.push_str(&text)),
                        Ok(ChatEvent::Done { .. }) => {
                            answer.status.set(Status::Done);
                            finished = true;
                        }
                        Ok(ChatEvent::Error { error }) => {
                            answer.fail(error.to_string());
                            finished = true;
                        }
                        Err(e) => {
                            answer.fail(AppError::Transport(format!("unreadable answer: {e}")).to_string());
                            finished = true;
                        }
                    }
                    if finished {
                        break 'read;
                    }
                }
            }
            if !finished {
                show(&mut shown);
                answer.fail("The answer was cut off. Please try again.");
            }
        }
    }
    chat.typing.set(false);
    chat.busy.set(false);
}

/// Sends one file to the `upload_file` server function: `size`, `mime_type`, `name`, then
/// the bytes (see [`crate::api::upload_file`]).
async fn upload(file: &web_sys::File) -> Result<UploadedFile, AppError> {
    let form = FormData::new().map_err(|_| AppError::Transport("FormData is unavailable".into()))?;
    let mime_type = if file.type_().is_empty() { "application/octet-stream".to_string() } else { file.type_() };
    let appended = form
        .append_with_str("size", &(file.size() as u64).to_string())
        .and_then(|_| form.append_with_str("mime_type", &mime_type))
        .and_then(|_| form.append_with_str("name", &file.name()))
        .and_then(|_| form.append_with_blob_and_filename("file", file, &file.name()));
    appended.map_err(|_| AppError::Transport("the file could not be read".into()))?;
    api::upload_file(form.into()).await
}
