//! `check_files`: which File URIs can still be used (BC-17: an import must not turn live
//! files into `expired content` just because they are untracked).

use futures::{stream, StreamExt};

use super::{errors::from_gemini, state};
use crate::{
    error::AppError,
    model::{FileCheck, MAX_FILE_CHECKS},
};

/// See [`crate::api::check_files`]. Up to 8 `files.get` at a time.
pub async fn check_files(uris: Vec<String>) -> Result<Vec<FileCheck>, AppError> {
    if uris.len() > MAX_FILE_CHECKS {
        return Err(AppError::BadUpload(format!("at most {MAX_FILE_CHECKS} files can be checked at once")));
    }
    let state = state()?;
    let checks = stream::iter(uris)
        .map(|uri| {
            let gemini = state.gemini.clone();
            async move {
                match gemini.get_file(&uri).await {
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
