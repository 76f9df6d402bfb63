//! `parley`: the axum server of the Parley chat site, as a library (the `parley` binary in
//! `main.rs` only parses the configuration and calls [`server::run`]).
//!
//! Around the application shared with the browser (`app`), it owns everything that is one
//! process's concern: the configuration ([`config`]), accepting connections with their
//! timeouts and caps ([`listen`]), signing in ([`auth`]) and the accounts it makes ([`accounts`]), budgets on the site's key as
//! operators see them (`/admin`, `parley usage`: [`budgets`]), the guards every request passes ([`guard`], [`session`],
//! [`limits`], composed in [`middleware`]; which server functions there are and what limits
//! them, [`endpoints`]), which Gemini answers ([`upstream`]), the Files view's thumbnails
//! ([`thumbnails`]), conversations shared by link as anyone sees them ([`share`]), metrics,
//! request ids and log format ([`observe`]), and the router
//! ([`server`]).

pub mod accounts;
pub mod auth;
pub mod budgets;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod guard;
pub mod health;
pub mod limits;
pub mod listen;
pub mod middleware;
pub mod observe;
pub mod server;
pub mod session;
pub mod share;
pub mod site;
pub mod thumbnails;
pub mod upstream;
pub mod waiting;
