//! Conversations shared by link: a snapshot of a conversation, taken when its owner shared it,
//! found by the link's token. Tables `shares` (one row per link: whose, of which conversation,
//! the snapshot as JSON, its options, when it was made, updated, expires and was revoked) and
//! `share_images` (the snapshot's image previews, JPEG, numbered from 0; and the link's
//! preview card, number [`CARD`], made on first request).
//!
//! The store keeps rows; what a snapshot may hold is decided by the caller (`parley-chat`'s
//! `share`). A link's token is its key: whoever holds it reads the snapshot, nobody else can
//! list it; its owner lists, updates and revokes their own links only.

mod lite;
mod pg;
#[cfg(test)]
mod tests;

use crate::{Owner, Store, StoreError};

/// The number under which a link's preview card is kept among its images.
pub const CARD: i64 = -1;

/// A shared link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The link's token (the path `/s/<token>`): its key.
    pub token: String,
    /// Whose it is.
    pub owner: Owner,
    /// The id of the conversation it is a snapshot of (its owner's own id for it).
    pub conversation: String,
    /// The conversation's title.
    pub title: String,
    /// The snapshot, as JSON text.
    pub snapshot: String,
    /// Whether its image previews are shown.
    pub include_images: bool,
    /// Whether its page carries a link preview (title and card) for other sites.
    pub link_preview: bool,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When its snapshot was last taken, ms since the epoch.
    pub updated_ms: i64,
    /// When it stops answering, ms since the epoch (`None`: never).
    pub expires_ms: Option<i64>,
    /// When its owner revoked it (or deleted the conversation), ms since the epoch.
    pub revoked_ms: Option<i64>,
}

impl Share {
    /// Whether it answers at `now_ms`: neither revoked nor expired.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|at| now_ms < at)
    }
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE shares (
    token TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    conversation TEXT NOT NULL,
    title TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    include_images BOOLEAN NOT NULL,
    link_preview BOOLEAN NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    revoked_ms BIGINT
);
CREATE INDEX shares_by_owner ON shares (owner, conversation);
CREATE TABLE share_images (
    token TEXT NOT NULL,
    n BIGINT NOT NULL,
    jpeg BYTEA NOT NULL,
    PRIMARY KEY (token, n)
);
CREATE INDEX files_by_uri ON files (uri);
";

const COLUMNS: &str = "token, owner, conversation, title, snapshot, include_images, \
    link_preview, created_ms, updated_ms, expires_ms, revoked_ms";

impl Store {
    /// Writes a link: makes it, or — when its token is `share.owner`'s already — replaces its
    /// snapshot, options, update time and expiry, and its images with `images` (JPEG, numbered
    /// from 0; the card is made again when next asked for). A token of another owner is left
    /// alone: false.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is written then.
    pub async fn put_share(&self, share: Share, images: Vec<Vec<u8>>) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::put_share(db, share, images).await,
            Store::Postgres(db) => pg::put_share(db, share, images).await,
        }
    }

    /// The link `token`, live or not, if it was ever made.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn share(&self, token: &str) -> Result<Option<Share>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::share(db, token).await,
            Store::Postgres(db) => pg::share(db, token).await,
        }
    }

    /// `owner`'s links, the latest made first (revoked ones too).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn shares_of(&self, owner: &Owner) -> Result<Vec<Share>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::shares_of(db, owner).await,
            Store::Postgres(db) => pg::shares_of(db, owner).await,
        }
    }

    /// Revokes `owner`'s links: the one of `token` (`conversation` `None`), or every link of
    /// `conversation` (`token` ignored), at `now_ms`, and drops their images. How many it
    /// revoked (0: none of `owner`'s, or revoked already).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_shares(
        &self,
        owner: &Owner,
        token: &str,
        conversation: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let conversation = conversation.map(str::to_string);
        match self {
            Store::Sqlite(db) => lite::revoke(db, owner, token, conversation, now_ms).await,
            Store::Postgres(db) => pg::revoke(db, owner, token, conversation, now_ms).await,
        }
    }

    /// Image `n` of the link `token` ([`CARD`]: its card), if kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn share_image(&self, token: &str, n: i64) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::image(db, token, n).await,
            Store::Postgres(db) => pg::image(db, token, n).await,
        }
    }

    /// Keeps the card of the link `token` (made on first request), unless the link was
    /// updated after `made_for_ms` (its snapshot's time when the card was made).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_share_card(
        &self,
        token: &str,
        made_for_ms: i64,
        jpeg: Vec<u8>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::put_card(db, token, made_for_ms, jpeg).await,
            Store::Postgres(db) => pg::put_card(db, token, made_for_ms, jpeg).await,
        }
    }

    /// Whether the File `uri` is recorded for anyone but `owner` (a File named in a snapshot
    /// must not be another's).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn file_of_another(&self, owner: &Owner, uri: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::file_of_another(db, owner, uri).await,
            Store::Postgres(db) => pg::file_of_another(db, owner, uri).await,
        }
    }
}
