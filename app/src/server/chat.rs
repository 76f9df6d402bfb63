//! `chat`: the conversation to the engine's turn ([`parley_chat::Engine::turn`]), its events
//! back as NDJSON lines.

use bytes::Bytes;
use futures::StreamExt;
use leptos::server_fn::codec::ByteStream;

pub use parley_chat::MAX_FILES_PER_REQUEST;

use super::{errors::OrApp, state, ToAppError};
use crate::{
    error::AppError,
    model::{ChatEvent, ChatOptions, Content},
};

/// See [`crate::api::chat`]: the model chosen (and its weight taken from the chat rate limit),
/// then one turn of the engine, whose events go out one JSON line each; an error after the
/// answer began is its last line.
pub async fn chat(
    contents: Vec<Content>,
    options: ChatOptions,
) -> Result<ByteStream<AppError>, AppError> {
    let received = std::time::Instant::now();
    let state = state()?;
    let principal = super::principal()?;
    let engine = state.engine();
    let model = engine.models().choose(options.model.as_deref()).or_app()?;
    // A dearer model counts as more requests: the rate limiter took one already.
    let weight = engine.models().weight(&model);
    if let (true, Some(allowance)) = (weight > 1, super::chat_allowance()) {
        allowance.0.take(weight - 1).await?;
    }
    let address = super::client_address();
    let answer = match engine.turn(&principal, &address, &model, contents, options, received).await
    {
        Ok(answer) => answer,
        Err(parley_chat::ChatError::BudgetSpent(refusal)) => {
            // Signing in helps only where there are providers and accounts may spend more.
            let provider = super::request::sign_in_view().providers.into_iter().next();
            let sign_in = provider
                .filter(|_| engine.budgets().sign_in_helps(&refusal))
                .map(|p| format!("/auth/login/{}", p.name));
            let mut error = parley_chat::ChatError::BudgetSpent(refusal).to_app();
            if let AppError::BudgetSpent { message, sign_in: offer } = &mut error {
                if sign_in.is_some() {
                    message.push_str(" Sign in for a larger budget.");
                }
                *offer = sign_in;
            }
            return Err(error);
        }
        Err(e) => return Err(e.to_app()),
    };
    let lines = answer.events().map(|event| {
        let event = event.unwrap_or_else(|e| ChatEvent::Error { error: e.to_app() });
        let mut line = serde_json::to_vec(&event).expect("ChatEvent serializes");
        line.push(b'\n');
        Ok::<_, AppError>(Bytes::from(line))
    });
    Ok(ByteStream::new(lines))
}
