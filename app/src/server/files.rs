//! The session's Files: `check_files` (which URIs can still be used — BC-17: an import must
//! not turn live files into `expired content` just because they are untracked; and never
//! another session's), `list_uploads` and `delete_upload` for the Files view.

use futures::{stream, StreamExt};

use super::{errors::from_gemini, is_expired, registry::RegistryError, session, state};
use crate::{
    error::AppError,
    model::{FileCheck, UploadRecord, MAX_FILE_CHECKS},
};

fn registry_failed(e: RegistryError) -> AppError {
    tracing::error!(error = %e, "the file registry failed");
    AppError::Transport("the server's file registry is unavailable".into())
}

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
                let row = state.registry.find(&owner.0, &state.upstream_id, &uri).await.map_err(registry_failed)?;
                let ours = row.is_some_and(|r| r.state != "EXPIRED" && !is_expired(r.expiration_time.as_deref(), state.expiry_margin, now));
                if !ours {
                    return Ok(FileCheck { uri, live: false, expiration_time: None, mime_type: None });
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
    let rows = state.registry.list(&owner.0).await.map_err(registry_failed)?;
    Ok(rows
        .into_iter()
        .map(|r| UploadRecord {
            state: if r.state == "ACTIVE" && is_expired(r.expiration_time.as_deref(), state.expiry_margin, now) {
                "EXPIRED".into()
            } else {
                r.state
            },
            display_name: r.display_name,
            uri: r.uri,
            mime_type: r.mime_type,
            size_bytes: r.size_bytes,
            expiration_time: r.expiration_time,
            retained: false,
        })
        .collect())
}

/// See [`crate::api::delete_upload`].
pub async fn delete_upload(uri: String) -> Result<(), AppError> {
    let state = state()?;
    let owner = session()?;
    let Some(row) = state.registry.find(&owner.0, &state.upstream_id, &uri).await.map_err(registry_failed)? else {
        return Err(AppError::FileUnavailable);
    };
    match state.gemini.delete_file(&row.name).await {
        Ok(()) => {}
        // Already gone upstream: forgetting it is all that is left.
        Err(e) if e.inaccessible_file_id().is_some() => {}
        Err(e) => return Err(from_gemini(e, Some(&row.display_name))),
    }
    state.registry.remove(&owner.0, &uri).await.map_err(registry_failed)?;
    tracing::info!(file = %row.name, "upload deleted");
    Ok(())
}
