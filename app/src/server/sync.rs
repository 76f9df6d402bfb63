//! `sync_*`: the signed-in account's conversations on the server (the service is
//! [`parley_chat::sync::Sync`]). Every call acts for the request's account only — the store
//! reads and writes by account — so another account's conversation id is not found.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use leptos::{prelude::use_context, server_fn::codec::ByteStream};
use parley_store::AccountId;

use super::{state, ToAppError};
use crate::{
    error::AppError,
    sync::{
        is_valid_id, DeletedConversation, Pulled, Push, PushOutcome, SyncEvent, SyncedConversation,
    },
};

/// Event streams one account may hold open at once (its tabs and devices).
pub const MAX_STREAMS_PER_ACCOUNT: usize = 16;

/// How often an idle event stream says it is alive.
pub const PING_EVERY: Duration = Duration::from_secs(25);

/// How long one event stream lasts before the page opens another (so a signed-out or
/// disabled session stops hearing within this time).
pub const STREAM_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The event streams open per account.
#[derive(Debug, Default, Clone)]
pub struct OpenStreams(Arc<Mutex<HashMap<AccountId, usize>>>);

/// One open stream, counted until it is dropped.
struct Open {
    streams: OpenStreams,
    account: AccountId,
}

impl OpenStreams {
    fn open(&self, account: &AccountId) -> Option<Open> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(account.clone()).or_default();
        if *count >= MAX_STREAMS_PER_ACCOUNT {
            return None;
        }
        *count += 1;
        Some(Open { streams: self.clone(), account: account.clone() })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.account) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.account);
            }
        }
    }
}

/// The request's account, or why there is none.
fn account() -> Result<AccountId, AppError> {
    super::principal()?.account.ok_or(AppError::SignInRequired)
}

fn checked_id(id: &str) -> Result<(), AppError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("conversation {:.64}", id)))
    }
}

/// See [`crate::api::sync_pull`].
pub async fn pull(cursor: i64) -> Result<Pulled, AppError> {
    let state = state()?;
    state.sync().pull(&account()?, cursor).await.map_err(ToAppError::to_app)
}

/// See [`crate::api::sync_push`]: 409 when the write was on a stale revision.
pub async fn push(push: Push) -> Result<PushOutcome, AppError> {
    let state = state()?;
    let outcome = state.sync().push(&account()?, push).await.map_err(ToAppError::to_app)?;
    if let (true, Some(response)) =
        (outcome.was_stale(), use_context::<leptos_axum::ResponseOptions>())
    {
        response.set_status(http::StatusCode::CONFLICT);
    }
    Ok(outcome)
}

/// See [`crate::api::sync_delete`].
pub async fn delete(id: String, restore: bool) -> Result<(), AppError> {
    checked_id(&id)?;
    let (state, account) = (state()?, account()?);
    let sync = state.sync();
    if restore {
        return sync.restore(&account, &id).await.map_err(ToAppError::to_app);
    }
    sync.delete(&account, &id).await.map_err(ToAppError::to_app)?;
    // A deleted conversation's links go with it, whichever device deleted it.
    let owner = parley_store::Owner::of_account(&account);
    state.shares().revoke_conversation(&owner, &id).await.map_err(ToAppError::to_app)?;
    Ok(())
}

/// See [`crate::api::sync_get`].
pub async fn get(id: String) -> Result<SyncedConversation, AppError> {
    checked_id(&id)?;
    let (state, account) = (state()?, account()?);
    let found =
        state.files().store().conversation(&account, &id).await.map_err(ToAppError::to_app)?;
    found
        .filter(|c| !c.purged)
        .map(parley_chat::sync::synced)
        .ok_or_else(|| AppError::NotFound(format!("conversation {id}")))
}

/// See [`crate::api::sync_deleted`].
pub async fn deleted() -> Result<Vec<DeletedConversation>, AppError> {
    let state = state()?;
    state.sync().deleted(&account()?).await.map_err(ToAppError::to_app)
}

/// See [`crate::api::sync_events`].
pub async fn events() -> Result<ByteStream<AppError>, AppError> {
    let (state, account) = (state()?, account()?);
    let open = state
        .open_streams()
        .open(&account)
        .ok_or(AppError::TooManyRequests { retry_after_secs: PING_EVERY.as_secs() })?;
    // Subscribed before the cursor is read: a change in between is not missed.
    let subscription = state.sync().subscribe(&account);
    let (cursor, _) = state.sync().state(&account).await.map_err(ToAppError::to_app)?;
    let first = SyncEvent::Changed { cursor };
    let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
    let lines = futures::stream::unfold(
        (Some(first), subscription, open),
        move |(next, mut subscription, open)| async move {
            let event = match next {
                Some(event) => event,
                None => tokio::select! {
                    cursor = subscription.changed() => SyncEvent::Changed { cursor },
                    () = tokio::time::sleep(PING_EVERY) => SyncEvent::Ping,
                    () = tokio::time::sleep_until(ends) => return None,
                },
            };
            let mut line = serde_json::to_vec(&event).expect("SyncEvent serializes");
            line.push(b'\n');
            Some((Ok::<_, AppError>(Bytes::from(line)), (None, subscription, open)))
        },
    );
    Ok(ByteStream::new(lines))
}
