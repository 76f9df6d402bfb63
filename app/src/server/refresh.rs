//! Expired Files made usable again (seed `001_523022e4202b4d48.txt`, BC-11): an expired
//! record is replaced by the session's `ACTIVE` File with the same content, or by a new
//! upload of the retained original, waited to `ACTIVE`. One re-upload per content at a time
//! ([`Flights`]): concurrent requests wait for it and use its result.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::SystemTime,
};


use super::{
    errors::{from_gemini, registry_failed},
    is_expired,
    registry::{FileRow, ACTIVE, EXPIRED, REPLACED},
    ServerState,
};
use crate::{error::AppError, model::UploadedFile};

/// Single flight per key: one async lock per key in use, dropped with its last holder.
#[derive(Debug, Clone, Default)]
pub struct Flights(Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>);

impl Flights {
    /// The lock for `key`, shared with everyone holding it now.
    fn slot(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, slot| slot.strong_count() > 0);
        if let Some(slot) = map.get(&key).and_then(Weak::upgrade) {
            return slot;
        }
        let slot = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key, Arc::downgrade(&slot));
        slot
    }
}

/// True when `row` can be sent to Gemini now: `ACTIVE`, under the current upstream identity,
/// and not within the expiry margin of its `expirationTime` (BC-20).
pub fn usable(state: &ServerState, row: &FileRow, now: SystemTime) -> bool {
    row.state == ACTIVE && row.upstream == state.upstream_id && !is_expired(row.expiration_time.as_deref(), state.expiry_margin, now)
}

/// The File that stands in for `row`, which is not [`usable`]: the session's `ACTIVE` File
/// with the same content under the current upstream, or a new upload of the retained
/// original. `Ok(None)` when there is neither: the caller puts `expired content` in its place.
/// `row` is marked `REPLACED` or `EXPIRED` accordingly.
///
/// # Errors
/// [`AppError`] when the registry, the store or the re-upload fails (the conversation is not
/// changed then: the person can try again).
pub async fn refresh(state: &ServerState, row: &FileRow) -> Result<Option<FileRow>, AppError> {
    let flight = state.flights.slot(format!("{}\n{}\n{}", row.owner, state.upstream_id, row.sha256));
    let _turn = flight.lock().await;
    let now = SystemTime::now();
    let copies = state.registry.active_copies(&row.owner, &state.upstream_id, &row.sha256).await.map_err(registry_failed)?;
    let mut stand_in = None;
    for copy in copies.into_iter().filter(|c| c.uri != row.uri) {
        if usable(state, &copy, now) {
            stand_in = Some(copy);
            break;
        }
        let _ = state.registry.set_state(&copy.owner, &copy.uri, EXPIRED).await;
    }
    let stand_in = match stand_in {
        Some(copy) => Some(copy),
        None => reupload(state, row).await?,
    };
    let mark = if stand_in.is_some() { REPLACED } else { EXPIRED };
    state.registry.set_state(&row.owner, &row.uri, mark).await.map_err(registry_failed)?;
    Ok(stand_in)
}

/// True when [`refresh`] would find a File for this session's unusable `row` (for
/// `check_files`): the same content is `ACTIVE`, or its original is retained (by the same
/// rules [`super::originals::Originals::open`] applies).
///
/// # Errors
/// [`AppError`] when the registry fails.
pub async fn refreshable(state: &ServerState, row: &FileRow, now: SystemTime) -> Result<bool, AppError> {
    let copies = state.registry.active_copies(&row.owner, &state.upstream_id, &row.sha256).await.map_err(registry_failed)?;
    if copies.iter().any(|c| c.uri != row.uri && usable(state, c, now)) {
        return Ok(true);
    }
    state.originals.is_retained(&row.sha256).await.map_err(|e| {
        tracing::error!(error = %e, "the store of originals failed");
        AppError::Transport("the server could not check its retained files".into())
    })
}

/// Uploads `row`'s retained original again, waits for `ACTIVE` and records the new File.
async fn reupload(state: &ServerState, row: &FileRow) -> Result<Option<FileRow>, AppError> {
    let opened = state.originals.open(&row.sha256).await.map_err(|e| {
        tracing::error!(error = %e, "a retained original could not be read");
        AppError::Transport("the server could not read a retained file".into())
    })?;
    let Some((bytes, size_bytes)) = opened else {
        tracing::info!(file = %row.name, "expired, and no retained original");
        return Ok(None);
    };
    // The chat request that needs this already holds a slot towards Gemini: no second one, or
    // a full server could wait on itself.
    let req = gemini::UploadRequest { display_name: Some(row.display_name.clone()), mime_type: row.mime_type.clone(), size_bytes };
    let name = row.display_name.as_str();
    let file = state.gemini.upload_from(&req, &bytes).await.map_err(|e| from_gemini(e, Some(name)))?;
    let file = state.gemini.wait_active(file, &state.poll).await.map_err(|e| from_gemini(e, Some(name)))?;
    tracing::info!(old = %row.name, new = %file.name, bytes = size_bytes, "expired File uploaded again from its retained original");
    let new = FileRow {
        owner: row.owner.clone(),
        upstream: state.upstream_id.clone(),
        name: file.name,
        uri: file.uri,
        mime_type: row.mime_type.clone(),
        size_bytes,
        display_name: row.display_name.clone(),
        sha256: row.sha256.clone(),
        create_time: file.create_time,
        expiration_time: file.expiration_time,
        state: ACTIVE.into(),
        recorded_at_ms: super::upload::now_ms(),
    };
    if let Err(e) = state.registry.record(new.clone()).await {
        tracing::error!(error = %e, file = %new.name, "a re-upload could not be recorded");
        let _ = state.gemini.delete_file(&new.name).await;
        return Err(AppError::Transport("the server could not record a re-uploaded file".into()));
    }
    if let Err(e) = state.originals.touch(&row.sha256).await {
        tracing::warn!(error = %e, "a retained original's time could not be refreshed");
    }
    Ok(Some(new))
}

impl From<FileRow> for UploadedFile {
    fn from(row: FileRow) -> Self {
        UploadedFile {
            name: row.name,
            uri: row.uri,
            mime_type: row.mime_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            expiration_time: row.expiration_time,
            display_name: row.display_name,
        }
    }
}
