//! Conversations shared by link: the service over the store's [`parley_store::shares`].
//!
//! A link is made from what the sharer's page sends (an export of the conversation): the
//! server keeps only an allow-listed [`snapshot::Snapshot`] and the image previews, each
//! decoded within limits and encoded again as a new JPEG (no metadata survives). A conversation
//! that names a File recorded for someone else is refused: a share never unlocks another's
//! File, and no File URI or id is kept at all. Links are found by their token (256 random
//! bits); their owner lists, updates and revokes them, nobody else; a revoked or expired link
//! is gone ([`ChatError::Gone`]).

pub mod card;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use base64::Engine;
use parley_files::thumbnails;
use parley_protocol::{
    share::{is_token, ShareRequest, SharedLink},
    transcript::Transcript,
};
use parley_store::{shares::Share, Owner, Store};

use crate::{budget::Clock, ChatError};
use snapshot::Snapshot;

/// Longest side of a shared preview, pixels (the page's previews fit 720 × 720).
pub const PREVIEW_SIDE_PX: u32 = 720;

/// Widest or tallest preview a link takes, pixels: the page sends them at most 720 px; a
/// larger one (a client of its own, or a decompression bomb) is left out from its header.
pub const MAX_PREVIEW_SOURCE_PX: u32 = 2_048;

/// Most links one person keeps live at once.
pub const MAX_LINKS: usize = 200;

/// Links whose pictures (previews, a card) are made at once in the process.
pub const PICTURES_AT_ONCE: usize = 1;

/// Longest a link waits for its turn to make pictures before [`ChatError::Busy`].
pub const PICTURES_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The sharing service. Cheap to clone.
#[derive(Clone)]
pub struct Shares {
    store: Store,
    ttl_ms: Option<i64>,
    clock: Clock,
    /// Turns to make pictures ([`PICTURES_AT_ONCE`]).
    pictures: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shares").field("ttl_ms", &self.ttl_ms).finish_non_exhaustive()
    }
}

/// A live link's snapshot, for its page.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The link.
    pub link: SharedLink,
    /// What it shows.
    pub snapshot: Snapshot,
}

impl Shares {
    /// The service over `store`; links expire `ttl_ms` after they were last taken (`None`:
    /// never).
    pub fn new(store: Store, ttl_ms: Option<i64>, clock: Clock) -> Shares {
        let pictures = Arc::new(tokio::sync::Semaphore::new(PICTURES_AT_ONCE));
        Shares { store, ttl_ms, clock, pictures }
    }

    /// Runs `work` (decoding and encoding pictures) on the blocking pool, at most
    /// [`PICTURES_AT_ONCE`] at a time in the process: a flood of links waits its turn and
    /// leaves the other cores to everyone else.
    ///
    /// # Errors
    /// [`ChatError::Busy`] after [`PICTURES_WAIT`] without a turn.
    async fn picture_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ChatError> {
        let turn = tokio::time::timeout(PICTURES_WAIT, self.pictures.clone().acquire_owned())
            .await
            .map_err(|_| ChatError::Busy)?
            .map_err(|e| ChatError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work()
        })
        .await
        .map_err(|e| ChatError::Internal(format!("the pictures: {e}")))
    }

    /// Shares a conversation: a new link, or — with `token`, one of `owner`'s links — a new
    /// snapshot under the same link.
    ///
    /// # Errors
    /// [`ChatError::BadRequest`] for an export that is not a conversation or has nothing to
    /// show; [`ChatError::NotFound`] for a File of someone else's in it, or a `token` not
    /// `owner`'s live link; [`ChatError::BadRequest`] past [`MAX_LINKS`]; [`ChatError::Store`].
    pub async fn share(
        &self,
        owner: &Owner,
        request: ShareRequest,
        token: Option<String>,
    ) -> Result<SharedLink, ChatError> {
        let transcript = Transcript::from_export(&request.export)
            .map_err(|e| ChatError::BadRequest(e.to_string()))?;
        let now_ms = (self.clock)();
        let built = snapshot::build(&transcript, &request.title, request.include_images, now_ms);
        if built.snapshot.messages.is_empty() {
            return Err(ChatError::BadRequest("the conversation has no message to share".into()));
        }
        for uri in &built.file_uris {
            if self.store.file_of_another(owner, uri).await? {
                return Err(ChatError::NotFound(format!("file {}", short(uri))));
            }
        }
        let existing = match &token {
            Some(token) => Some(self.live_of(owner, token).await?),
            None => None,
        };
        if existing.is_none() {
            let live =
                self.store.shares_of(owner).await?.iter().filter(|s| s.is_live(now_ms)).count();
            if live >= MAX_LINKS {
                return Err(ChatError::BadRequest(format!(
                    "at most {MAX_LINKS} links can be shared at once; revoke some first"
                )));
            }
        }
        let previews = built.previews;
        let images = self
            .picture_work(move || {
                previews
                    .iter()
                    .map(|bytes| {
                        thumbnails::fit_within(bytes, PREVIEW_SIDE_PX, MAX_PREVIEW_SOURCE_PX)
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        let share = Share {
            token: token.unwrap_or_else(new_token),
            owner: owner.clone(),
            conversation: request.conversation.chars().take(64).collect(),
            title: built.snapshot.title.clone(),
            snapshot: serde_json::to_string(&built.snapshot)
                .map_err(|e| ChatError::Internal(e.to_string()))?,
            include_images: request.include_images,
            link_preview: request.link_preview,
            created_ms: existing.as_ref().map_or(now_ms, |e| e.created_ms),
            updated_ms: now_ms,
            expires_ms: self.ttl_ms.map(|ttl| now_ms.saturating_add(ttl)),
            revoked_ms: None,
        };
        let link = link_of(&share);
        if !self.store.put_share(share, images).await? {
            return Err(ChatError::NotFound("link".into()));
        }
        Ok(link)
    }

    /// `owner`'s live links, the latest made first.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn list(&self, owner: &Owner) -> Result<Vec<SharedLink>, ChatError> {
        let now_ms = (self.clock)();
        let all = self.store.shares_of(owner).await?;
        Ok(all.iter().filter(|s| s.is_live(now_ms)).map(link_of).collect())
    }

    /// Revokes `owner`'s link `token`: it answers 410 from now on, on every replica.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when it is not `owner`'s live link; [`ChatError::Store`].
    pub async fn revoke(&self, owner: &Owner, token: &str) -> Result<(), ChatError> {
        let now_ms = (self.clock)();
        match self.store.revoke_shares(owner, token, None, now_ms).await? {
            0 => Err(ChatError::NotFound("link".into())),
            _ => Ok(()),
        }
    }

    /// Revokes every link of `owner`'s conversation `conversation` (it was deleted); how many.
    ///
    /// # Errors
    /// [`ChatError::Store`].
    pub async fn revoke_conversation(
        &self,
        owner: &Owner,
        conversation: &str,
    ) -> Result<u64, ChatError> {
        let now_ms = (self.clock)();
        Ok(self.store.revoke_shares(owner, "", Some(conversation), now_ms).await?)
    }

    /// The live link `token` and its snapshot.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] for a token never made; [`ChatError::Gone`] for one revoked or
    /// expired; [`ChatError::Store`].
    pub async fn open(&self, token: &str) -> Result<Opened, ChatError> {
        let share = self.live(token).await?;
        let snapshot = serde_json::from_str(&share.snapshot)
            .map_err(|e| ChatError::Internal(format!("a stored snapshot: {e}")))?;
        Ok(Opened { link: link_of(&share), snapshot })
    }

    /// Preview `n` of the live link `token` (JPEG), when its images are shown.
    ///
    /// # Errors
    /// As [`Shares::open`]; [`ChatError::NotFound`] for a preview it does not have.
    pub async fn image(&self, token: &str, n: usize) -> Result<Vec<u8>, ChatError> {
        let share = self.live(token).await?;
        let n = i64::try_from(n).map_err(|_| ChatError::NotFound("image".into()))?;
        let found = match share.include_images {
            true => self.store.share_image(token, n).await?,
            false => None,
        };
        found.filter(|jpeg| !jpeg.is_empty()).ok_or_else(|| ChatError::NotFound("image".into()))
    }

    /// The live link `token`'s card (JPEG, 1200 × 630; [`card`]), made on first request and
    /// kept, when it has a link preview.
    ///
    /// # Errors
    /// As [`Shares::open`]; [`ChatError::NotFound`] when it has no link preview.
    pub async fn card(&self, token: &str) -> Result<Vec<u8>, ChatError> {
        let share = self.live(token).await?;
        if !share.link_preview {
            return Err(ChatError::NotFound("picture".into()));
        }
        if let Some(kept) = self.store.share_image(token, parley_store::shares::CARD).await? {
            return Ok(kept);
        }
        let first =
            if share.include_images { self.store.share_image(token, 0).await? } else { None };
        let made = self.picture_work(move || card::make(first.as_deref())).await?;
        self.store.put_share_card(token, share.updated_ms, made.clone()).await?;
        Ok(made)
    }

    /// The conversation a viewer continues from the live link `token`: an export text
    /// ([`snapshot::continued`]).
    ///
    /// # Errors
    /// As [`Shares::open`].
    pub async fn continued(&self, token: &str) -> Result<String, ChatError> {
        let opened = self.open(token).await?;
        let mut images = Vec::new();
        if opened.link.include_images {
            let count = opened
                .snapshot
                .messages
                .iter()
                .flat_map(|m| &m.attachments)
                .filter_map(|a| a.image)
                .max()
                .map_or(0, |n| n + 1);
            for n in 0..count {
                images.push(self.store.share_image(token, n as i64).await?.unwrap_or_default());
            }
        }
        Ok(snapshot::continued(&opened.snapshot, &images))
    }

    async fn live(&self, token: &str) -> Result<Share, ChatError> {
        if !is_token(token) {
            return Err(ChatError::NotFound("link".into()));
        }
        let share =
            self.store.share(token).await?.ok_or_else(|| ChatError::NotFound("link".into()))?;
        if !share.is_live((self.clock)()) {
            return Err(ChatError::Gone("This link was revoked or has expired.".into()));
        }
        Ok(share)
    }

    async fn live_of(&self, owner: &Owner, token: &str) -> Result<Share, ChatError> {
        match self.live(token).await {
            Ok(share) if &share.owner == owner => Ok(share),
            _ => Err(ChatError::NotFound("link".into())),
        }
    }
}

/// A new link token: 256 random bits, base64url (43 characters).
fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A File URI shortened for a sentence (its id only).
fn short(uri: &str) -> String {
    parley_protocol::transcript::file_id_of(uri).unwrap_or("").chars().take(40).collect()
}

fn link_of(share: &Share) -> SharedLink {
    SharedLink {
        token: share.token.clone(),
        conversation: share.conversation.clone(),
        title: share.title.clone(),
        include_images: share.include_images,
        link_preview: share.link_preview,
        created_ms: share.created_ms,
        updated_ms: share.updated_ms,
        expires_ms: share.expires_ms,
    }
}
