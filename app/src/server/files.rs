//! The session's Files: `check_files` (which URIs can still be used — `import-keeps-live-files`: an
//! import must not turn live files into `expired content` just because they are untracked; and
//! never another session's), `list_uploads` and `delete_upload` for the Files view.

use std::{collections::HashMap, time::Duration};

use futures::{stream, StreamExt};
use parley_files::time::is_expired;
use parley_store::{FileRow, FileState};

use super::{
    errors::{from_gemini, OrApp, ToAppError},
    principal, state, ServerState,
};
use crate::{
    error::AppError,
    model::{FileCheck, FileState as WireState, UploadRecord, MAX_FILE_CHECKS},
};

/// How long what `files.get` said of a File is reused by `check_files` (30 s): a client asking
/// again and again costs Gemini one call per File per this period.
pub const STATE_CACHE_TTL: Duration = Duration::from_secs(30);

/// Most uploads the Files view lists (the newest).
pub const MAX_LISTED: usize = 1000;

/// Files whose state is remembered at most (each entry is about 300 bytes).
const STATE_CACHE_CAPACITY: u64 = 10_000;

/// What `files.get` said of a File: whether it is `ACTIVE`, its `expirationTime`, its MIME type.
#[derive(Debug, Clone)]
struct Said {
    live: bool,
    expiration_time: Option<String>,
    mime_type: Option<String>,
}

/// What `files.get` said of a File lately, by upstream identity and URI. Only answers Gemini
/// gave are kept, never errors.
#[derive(Clone)]
pub struct StateCache(moka::sync::Cache<(String, String), Said>);

impl Default for StateCache {
    fn default() -> Self {
        StateCache(
            moka::sync::Cache::builder()
                .max_capacity(STATE_CACHE_CAPACITY)
                .time_to_live(STATE_CACHE_TTL)
                .build(),
        )
    }
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateCache({} entries)", self.0.entry_count())
    }
}

/// See [`crate::api::check_files`]. Each distinct URI is checked once: against this session's
/// records (one query for all), then — for usable ones — with `files.get` under an upstream
/// slot, at most 4 at a time, reusing what Gemini said within [`STATE_CACHE_TTL`].
pub async fn check_files(uris: Vec<String>) -> Result<Vec<FileCheck>, AppError> {
    if uris.len() > MAX_FILE_CHECKS {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_FILE_CHECKS} files can be checked at once."
        )));
    }
    let state = state()?;
    let principal = principal()?;
    let owner = principal.owner();
    let mut distinct = uris.clone();
    distinct.sort();
    distinct.dedup();
    let rows = state.files().store().find_many(&owner, distinct.clone()).await.or_app()?;
    let now = std::time::SystemTime::now();
    let checks: Vec<Result<FileCheck, AppError>> = stream::iter(distinct)
        .map(|uri| {
            let row = rows.get(&uri);
            let state = &state;
            async move { check_one(state, uri, row, now).await }
        })
        .buffered(4)
        .collect()
        .await;
    let mut by_uri = HashMap::new();
    for check in checks {
        let check = check?;
        by_uri.insert(check.uri.clone(), check);
    }
    Ok(uris.into_iter().filter_map(|uri| by_uri.get(&uri).cloned()).collect())
}

/// Whether one URI can be used: only this session's Files (`row`), under this key, not expired
/// by the store's clock, and live by Gemini's word (or standing to be replaced).
async fn check_one(
    state: &ServerState,
    uri: String,
    row: Option<&FileRow>,
    now: std::time::SystemTime,
) -> Result<FileCheck, AppError> {
    let Some(row) = row else {
        return Ok(FileCheck { uri, live: false, expiration_time: None, mime_type: None });
    };
    if !state.files().usable(row, now) {
        // Still usable when the server can stand a File in for it at the next request.
        let live = state.files().refreshable(row, now).await.or_app()?;
        return Ok(FileCheck {
            uri,
            live,
            expiration_time: None,
            mime_type: Some(row.mime_type.clone()),
        });
    }
    let key = (state.files().upstream_id().to_string(), uri.clone());
    if let Some(Said { live, expiration_time, mime_type }) = state.file_states.0.get(&key) {
        return Ok(FileCheck { uri, live, expiration_time, mime_type });
    }
    let slot = super::upstream_slot(state).await?;
    let said = match state.files().gemini().get_file(&uri).await {
        Ok(file) => Said {
            live: file.state == gemini::FileState::Active,
            expiration_time: file.expiration_time,
            mime_type: Some(file.mime_type),
        },
        Err(e) if e.inaccessible_file_id().is_some() => {
            Said { live: false, expiration_time: None, mime_type: None }
        }
        Err(e) => return Err(e.to_app()),
    };
    drop(slot);
    state.file_states.0.insert(key, said.clone());
    let Said { live, expiration_time, mime_type } = said;
    Ok(FileCheck { uri, live, expiration_time, mime_type })
}

/// See [`crate::api::list_uploads`].
pub async fn list_uploads() -> Result<Vec<UploadRecord>, AppError> {
    let state = state()?;
    let principal = principal()?;
    let owner = principal.owner();
    let now = std::time::SystemTime::now();
    let rows: Vec<_> = state
        .files()
        .store()
        .list(&owner, MAX_LISTED)
        .await
        .or_app()?
        .into_iter()
        .filter(|r| r.state != FileState::Replaced)
        .collect();
    let retained = state
        .files()
        .store()
        .originals_among(rows.iter().map(|r| r.sha256.clone()).collect())
        .await
        .or_app()?;
    let retaining = state.files().originals().policy().enabled();
    Ok(rows
        .into_iter()
        .map(|r| UploadRecord {
            state: match r.state {
                FileState::Active
                    if is_expired(
                        r.expiration_time.as_deref(),
                        state.files().expiry_margin(),
                        now,
                    ) =>
                {
                    WireState::Expired
                }
                FileState::Active => WireState::Active,
                FileState::Expired => WireState::Expired,
                FileState::Replaced => WireState::Replaced,
            },
            thumbnail: (retaining
                && retained.contains(&r.sha256)
                && r.mime_type.starts_with("image/"))
            .then(|| r.name.strip_prefix("files/").map(|id| format!("/thumbnails/{id}")))
            .flatten(),
            retained: retaining && retained.contains(&r.sha256),
            display_name: r.display_name,
            uri: r.uri,
            mime_type: r.mime_type,
            size_bytes: r.size_bytes,
            expiration_time: r.expiration_time,
        })
        .collect())
}

/// See [`crate::api::delete_upload`].
pub async fn delete_upload(uri: String) -> Result<(), AppError> {
    let state = state()?;
    let principal = principal()?;
    let owner = principal.owner();
    let Some(row) = state.files().store().find(&owner, &uri).await.or_app()? else {
        return Err(AppError::NotFound("no such upload".into()));
    };
    let slot = super::upstream_slot(&state).await?;
    let deleted = state.files().gemini().delete_file(&row.name).await;
    state.file_states.0.invalidate(&(state.files().upstream_id().to_string(), uri.clone()));
    match deleted {
        Ok(()) => {}
        // Already gone upstream: forgetting it is all that is left.
        Err(e) if e.inaccessible_file_id().is_some() => {}
        Err(e) => return Err(from_gemini(e, Some(&row.display_name))),
    }
    state.files().store().remove(&owner, &uri).await.or_app()?;
    if let Err(e) = state.files().originals().release(&row.sha256).await {
        tracing::warn!(error = %e, "a retained original could not be deleted");
    }
    // A context cache holding the File goes with it.
    super::caching::delete_holding(state.engine(), &principal, std::slice::from_ref(&uri))
        .await
        .or_app()?;
    drop(slot);
    tracing::info!(file = %row.name, "upload deleted");
    Ok(())
}

/// See [`crate::api::forget_caches`].
pub async fn forget_caches(uris: Vec<String>) -> Result<(), AppError> {
    let state = state()?;
    let principal = principal()?;
    state.engine().forget_caches(&principal, &super::client_address(), &uris).await.or_app()?;
    Ok(())
}
