//! Conversations shared by link (`docs/sharing.md`): what the page sends to share one
//! ([`ShareRequest`]) and what it is told of its links ([`SharedLink`]). The snapshot a link
//! shows is the server's own, built from an allow-list of the conversation's fields.

use serde::{Deserialize, Serialize};

/// A conversation to share (or share again under its link).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The conversation's id on this device (its links are found and revoked by it).
    pub conversation: String,
    /// Its title.
    pub title: String,
    /// The conversation as an export (format 1.2, [`crate::transcript`]): the server takes
    /// from it only what a shared page shows.
    pub export: String,
    /// Whether the image previews are shown (default on in the page).
    pub include_images: bool,
    /// Whether the page carries a link preview for other sites (title and picture; default
    /// off: generic tags).
    pub link_preview: bool,
}

/// One of the person's shared links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLink {
    /// The link's token: the page is `/s/<token>`.
    pub token: String,
    /// The conversation it is a snapshot of.
    pub conversation: String,
    /// The conversation's title.
    pub title: String,
    /// Whether its image previews are shown.
    pub include_images: bool,
    /// Whether its page carries a link preview.
    pub link_preview: bool,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When its snapshot was last taken, ms since the epoch.
    pub updated_ms: i64,
    /// When it stops answering, ms since the epoch (`None`: never).
    pub expires_ms: Option<i64>,
}

impl SharedLink {
    /// The link's path: `/s/<token>`.
    pub fn path(&self) -> String {
        format!("/s/{}", self.token)
    }
}

/// Whether `token` can be a link's token: 43 characters of base64url (256 random bits).
pub fn is_token(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who may open shared links (`PARLEY_SHARING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// No sharing: no `Share` button, and the routes refuse.
    Off,
    /// Anyone with the link.
    #[default]
    Link,
    /// Only signed-in people.
    SignedIn,
}

impl std::str::FromStr for Sharing {
    type Err = String;

    fn from_str(text: &str) -> Result<Sharing, String> {
        match text {
            "off" => Ok(Sharing::Off),
            "link" => Ok(Sharing::Link),
            "signed-in" => Ok(Sharing::SignedIn),
            other => Err(format!("“{other}”: expected off, link or signed-in")),
        }
    }
}
