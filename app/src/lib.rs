//! # app — what the browser and the server share
//!
//! * [`model`], [`transcript`], [`account`], [`error::AppError`]: what browser and server exchange, from
//!   `parley-protocol` (re-exported here);
//! * [`api`]: the server functions (`site_info`, `upload_file`, `find_upload`, `chat`,
//!   `check_files`, `list_uploads`, `delete_upload`, `forget_caches`);
//! * [`markdown`]: answers rendered as HTML that carries nothing runnable (DOMPurify cleans it
//!   again in the browser);
//! * the page in three layers, the arrows running one way — `ui` (the Leptos components:
//!   [`App`], [`shell`]) → `client` (the page's state and what changes it) → `browser` (web
//!   APIs only, feature `hydrate`);
//! * `server` (feature `ssr`): the server functions' bodies.

#![recursion_limit = "256"]

pub mod api;
pub mod client;
pub mod markdown;
mod ui;

pub use parley_protocol::{account, error, model, share, sync, transcript};

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(feature = "ssr")]
pub mod server;

pub use ui::{shell, App};
