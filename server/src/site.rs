//! The site's static files: hashed names found at start-up, and how long browsers keep each
//! file.
//!
//! `cargo leptos build` (with `hash-files` on) names the page's js, wasm and css
//! `parley.<hash>.<ext>` and writes the hashes to `hash.txt` beside the binary it builds;
//! Leptos reads that file on every render to name them in the page. A file whose name changes
//! with its content can be kept by browsers for good (`immutable`); everything else is
//! revalidated or kept briefly. Precompressed variants (`.br`, `.gz`, made by
//! `cargo leptos build --release --precompress`) are served by the file handler when the
//! browser accepts them.

use std::path::{Path, PathBuf};

use tower_http::compression::{
    predicate::{Predicate, SizeAbove},
    CompressionLayer, CompressionLevel,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Response, Uri},
};
use leptos::prelude::LeptosOptions;

/// `Cache-Control` of a file whose name carries its content's hash: a year, never revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of other static files (the vendored scripts, the hash worker): an hour.
pub const BRIEFLY: &str = "public, max-age=3600";

/// The hash file's name, as cargo-leptos writes it.
const HASH_FILE: &str = "hash.txt";

/// Turns Leptos's hashed names on when a hash file that matches the site is found: beside the
/// binary (where `cargo leptos build` puts it) or in the site root (where the Debian package
/// puts it). Without one, or when its js file is not in the site, plain names are used.
pub fn use_hashed_names(options: &mut LeptosOptions) {
    let beside_binary =
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(HASH_FILE)));
    let in_site = Path::new(options.site_root.as_ref()).join(HASH_FILE);
    let found = beside_binary.into_iter().chain([in_site]).find(|path| matches_site(path, options));
    options.hash_files = found.is_some();
    if let Some(path) = found {
        tracing::debug!(hash_file = %path.display(), "hashed asset names");
        options.hash_file = path.to_string_lossy().as_ref().into();
    }
}

/// Whether `hash_file` names a js file the site has.
fn matches_site(hash_file: &PathBuf, options: &LeptosOptions) -> bool {
    let Ok(hashes) = std::fs::read_to_string(hash_file) else { return false };
    let js = hashes.lines().find_map(|l| l.trim().strip_prefix("js:")).map(str::trim);
    js.is_some_and(|hash| {
        Path::new(options.site_root.as_ref())
            .join(options.site_pkg_dir.as_ref())
            .join(format!("{}.{hash}.js", options.output_name))
            .is_file()
    })
}

/// The static files and the not-found page (Leptos's handler), with `Cache-Control` on every
/// file served: [`IMMUTABLE`] for the hashed files under the package directory, [`BRIEFLY`]
/// for the rest.
pub async fn files(uri: Uri, State(options): State<LeptosOptions>, req: Request) -> Response<Body> {
    let hashed = options.hash_files
        && uri.path().starts_with(&format!("/{}/", options.site_pkg_dir))
        && uri.path().contains(&format!("/{}.", options.output_name));
    let serve = leptos_axum::file_and_error_handler::<LeptosOptions, _>(app::shell);
    let mut res = serve(uri, State(options), req).await;
    if res.status().is_success() {
        let policy = if hashed { IMMUTABLE } else { BRIEFLY };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    res
}

/// Smallest dynamic response compressed, bytes: below it the headers outweigh the gain.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// Brotli or gzip (as the browser accepts) for the dynamic answers it helps — HTML pages and
/// JSON answers of server functions over [`COMPRESS_ABOVE_BYTES`] — at the fastest level, so
/// that no request costs much CPU. Never the chat's answer stream (`application/octet-stream`:
/// a compressor would hold back its lines) nor static files (served precompressed, or not
/// at all: compressing them on every request would let a visitor spend the server's CPU).
pub fn compression() -> CompressionLayer<impl Predicate> {
    use axum::http::{Extensions, HeaderMap, StatusCode, Version};
    let dynamic = |_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"))
    };
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(SizeAbove::new(COMPRESS_ABOVE_BYTES).and(dynamic))
}
