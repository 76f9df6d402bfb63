//! The session's Files: `check_files` (which URIs can still be used — BC-17: an import must
//! not turn live files into `expired content` just because they are untracked; and never
//! another session's), `list_uploads` and `delete_upload` for the Files view.

use futures::{stream, StreamExt};

use super::{
    errors::{from_gemini, registry_failed},
    is_expired,
    refresh::{refreshable, usable},
    registry::{ACTIVE, EXPIRED, REPLACED},
    session, state,
};
use crate::{
    error::AppError,
    model::{FileCheck, UploadRecord, MAX_FILE_CHECKS},
};

/// See [`crate::api::check_files`]. Up to 8 `files.get` at a time.
pub async fn check_files(uris: Vec<String>) -> Result<Vec<FileCheck>, AppError> {
    if uris.len() > MAX_FILE_CHECKS {
        return Err(AppError::BadUpload(format!("at most {MAX_FILE_CHECKS} files can be checked at once")));
    }
    let state = state()?;
    let owner = session()?;
    let now = std::time::SystemTime::now();
    let checks = stream::iter(uris)
        .map(|uri| {
            let state = state.clone();
            let owner = owner.clone();
            async move {
                // Only this session's Files, under this key, not expired by the registry's clock.
                let Some(row) = state.registry.find(&owner.0, &uri).await.map_err(registry_failed)? else {
                    return Ok(FileCheck { uri, live: false, expiration_time: None, mime_type: None });
                };
                if !usable(&state, &row, now) {
                    // Still usable when the server can stand a File in for it at the next request.
                    let live = refreshable(&state, &row, now).await?;
                    return Ok(FileCheck { uri, live, expiration_time: None, mime_type: Some(row.mime_type) });
                }
                match state.gemini.get_file(&uri).await {
                    Ok(file) => Ok(FileCheck {
                        live: file.state == gemini::FileState::Active,
                        expiration_time: file.expiration_time,
                        mime_type: Some(file.mime_type),
                        uri,
                    }),
                    Err(e) if e.inaccessible_file_id().is_some() => {
                        Ok(FileCheck { uri, live: false, expiration_time: None, mime_type: None })
                    }
                    Err(e) => Err(from_gemini(e, None)),
                }
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    checks.into_iter().collect()
}

/// See [`crate::api::list_uploads`].
pub async fn list_uploads() -> Result<Vec<UploadRecord>, AppError> {
    let state = state()?;
    let owner = session()?;
    let now = std::time::SystemTime::now();
    let rows: Vec<_> = state.registry.list(&owner.0).await.map_err(registry_failed)?.into_iter().filter(|r| r.state != REPLACED).collect();
    let retained = state.registry.originals_among(rows.iter().map(|r| r.sha256.clone()).collect()).await.map_err(registry_failed)?;
    let retaining = state.originals.policy().enabled();
    Ok(rows
        .into_iter()
        .map(|r| UploadRecord {
            state: if r.state == ACTIVE && is_expired(r.expiration_time.as_deref(), state.expiry_margin, now) {
                EXPIRED.into()
            } else {
                r.state
            },
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
    let owner = session()?;
    let Some(row) = state.registry.find(&owner.0, &uri).await.map_err(registry_failed)? else {
        return Err(AppError::FileUnavailable);
    };
    match state.gemini.delete_file(&row.name).await {
        Ok(()) => {}
        // Already gone upstream: forgetting it is all that is left.
        Err(e) if e.inaccessible_file_id().is_some() => {}
        Err(e) => return Err(from_gemini(e, Some(&row.display_name))),
    }
    state.registry.remove(&owner.0, &uri).await.map_err(registry_failed)?;
    if let Err(e) = state.originals.release(&row.sha256).await {
        tracing::warn!(error = %e, "a retained original could not be deleted");
    }
    tracing::info!(file = %row.name, "upload deleted");
    Ok(())
}
