//! The one table of the server functions the site answers, read by the rate limiter (which
//! limit each counts against) and the metrics (its route label). A path under
//! [`app::api::API_PREFIX`] that is not in the table is refused with 404 before anything else
//! runs: a server function added without a row here is never served without a limit, and a
//! test fails until it has one.

use app::api::{
    Chat, CheckFiles, DeleteUpload, FindUpload, ForgetCaches, GetSiteInfo, ListUploads,
    ShareContinue, ShareCreate, ShareList, ShareRevoke, ShareUpdate, SyncDelete, SyncDeleted,
    SyncEvents, SyncGet, SyncPull, SyncPush, UploadFile,
};
use leptos::server_fn::ServerFn;

/// Which rate limit a server function counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `PARLEY_RATE_CHAT` (a model's weight on top, taken by the chat itself).
    Chat,
    /// `PARLEY_RATE_UPLOAD`, and the upload-bytes quota.
    Upload,
    /// `PARLEY_RATE_FILES`: the Files view, the checks before an upload or an import, and
    /// shared links.
    Files,
    /// `PARLEY_RATE_SYNC`: a signed-in person's conversations between devices.
    Sync,
    /// `PARLEY_RATE_SHARE_VIEWS`: a shared link's page, previews and card, per address (not a
    /// server function: `/s/<token>…`).
    ShareViews,
    /// None: answered from memory, no upstream call and no database query.
    Unlimited,
}

/// A server function: its path (from its macro, never written here) and its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// `/api/…`, as `ServerFn::PATH` gives it; also its route label in the metrics.
    pub path: &'static str,
    /// The rate limit it counts against.
    pub limit: Limit,
}

/// Every server function the site answers.
pub const ENDPOINTS: [Endpoint; 19] = [
    Endpoint { path: GetSiteInfo::PATH, limit: Limit::Unlimited },
    Endpoint { path: Chat::PATH, limit: Limit::Chat },
    Endpoint { path: UploadFile::PATH, limit: Limit::Upload },
    Endpoint { path: FindUpload::PATH, limit: Limit::Files },
    Endpoint { path: CheckFiles::PATH, limit: Limit::Files },
    Endpoint { path: ListUploads::PATH, limit: Limit::Files },
    Endpoint { path: DeleteUpload::PATH, limit: Limit::Files },
    Endpoint { path: ForgetCaches::PATH, limit: Limit::Files },
    Endpoint { path: SyncPull::PATH, limit: Limit::Sync },
    Endpoint { path: SyncPush::PATH, limit: Limit::Sync },
    Endpoint { path: SyncDelete::PATH, limit: Limit::Sync },
    Endpoint { path: SyncGet::PATH, limit: Limit::Sync },
    Endpoint { path: SyncDeleted::PATH, limit: Limit::Sync },
    Endpoint { path: SyncEvents::PATH, limit: Limit::Sync },
    Endpoint { path: ShareCreate::PATH, limit: Limit::Files },
    Endpoint { path: ShareUpdate::PATH, limit: Limit::Files },
    Endpoint { path: ShareList::PATH, limit: Limit::Files },
    Endpoint { path: ShareRevoke::PATH, limit: Limit::Files },
    Endpoint { path: ShareContinue::PATH, limit: Limit::Files },
];

/// The server function at `path`, if it is one.
pub fn find(path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path)
}

/// True for a path under the server functions' prefix that is not in [`ENDPOINTS`].
pub fn is_unknown_function(path: &str) -> bool {
    path.starts_with(app::api::API_PREFIX) && find(path).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_server_function_is_in_the_table_and_nothing_else() {
        let registered: std::collections::BTreeSet<String> =
            leptos::server_fn::axum::server_fn_paths()
                .map(|(path, _method)| path.to_string())
                .filter(|path| path.starts_with(app::api::API_PREFIX))
                .collect();
        let listed: std::collections::BTreeSet<String> =
            ENDPOINTS.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(registered, listed);
        assert!(is_unknown_function("/api/whatever-a-visitor-types"));
        assert!(!is_unknown_function(Chat::PATH) && !is_unknown_function("/pkg/x.js"));
    }
}
