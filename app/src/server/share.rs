//! `share_*`: conversations shared by link (the service is [`parley_chat::share::Shares`]).
//! A person manages their own links only — the store finds them by the request's owner, so
//! another person's token is not found. With `PARLEY_SHARING=off` every call is not found.

use super::{state, ToAppError};
use crate::{
    error::AppError,
    share::{ShareRequest, SharedLink, Sharing},
};

/// The request's owner, when sharing is on.
fn owner() -> Result<(std::sync::Arc<super::ServerState>, parley_store::Owner), AppError> {
    let state = state()?;
    if state.sharing() == Sharing::Off {
        return Err(AppError::NotFound("sharing".into()));
    }
    Ok((state, super::principal()?.owner()))
}

/// See [`crate::api::share_create`].
pub async fn create(request: ShareRequest) -> Result<SharedLink, AppError> {
    let (state, owner) = owner()?;
    state.shares().share(&owner, request, None).await.map_err(ToAppError::to_app)
}

/// See [`crate::api::share_update`].
pub async fn update(token: String, request: ShareRequest) -> Result<SharedLink, AppError> {
    let (state, owner) = owner()?;
    state.shares().share(&owner, request, Some(token)).await.map_err(ToAppError::to_app)
}

/// See [`crate::api::share_list`].
pub async fn list() -> Result<Vec<SharedLink>, AppError> {
    let (state, owner) = owner()?;
    state.shares().list(&owner).await.map_err(ToAppError::to_app)
}

/// See [`crate::api::share_revoke`].
pub async fn revoke(token: String, conversation: Option<String>) -> Result<u64, AppError> {
    let (state, owner) = owner()?;
    let shares = state.shares();
    match conversation {
        Some(conversation) => {
            shares.revoke_conversation(&owner, &conversation).await.map_err(ToAppError::to_app)
        }
        None => shares.revoke(&owner, &token).await.map(|()| 1).map_err(ToAppError::to_app),
    }
}

/// See [`crate::api::share_continue`].
pub async fn continued(token: String) -> Result<String, AppError> {
    let state = state()?;
    match state.sharing() {
        Sharing::Off => return Err(AppError::NotFound("link".into())),
        Sharing::SignedIn if super::principal()?.account.is_none() => {
            return Err(AppError::SignInRequired)
        }
        _ => {}
    }
    state.shares().continued(&token).await.map_err(ToAppError::to_app)
}
