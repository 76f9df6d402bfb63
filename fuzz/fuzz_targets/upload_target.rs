//! `x-goog-upload-url` as any header text: never a panic; a URL or a protocol error, and behind
//! a gateway always the gateway's own start URL with a query.
#![no_main]

use gemini::{upload_target, Mode};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, header)) = data.split_first() else { return };
    let Ok(header) = std::str::from_utf8(header) else { return };
    let gateway = flags & 1 == 1;
    let start = Url::parse(if gateway { "https://gw.azure-api.net/gemini/files" } else { "https://generativelanguage.googleapis.com/upload/v1beta/files" }).unwrap();
    match upload_target(&start, header, if gateway { Mode::Gateway } else { Mode::Direct }) {
        Ok(url) if gateway => {
            assert_eq!((url.scheme(), url.host_str(), url.path()), (start.scheme(), start.host_str(), start.path()));
            assert!(url.query().is_some_and(|q| !q.is_empty()), "{url}");
        }
        Ok(_) => {}
        Err(gemini::Error::Protocol(_)) => {}
        Err(other) => panic!("not a protocol error: {other:?}"),
    }
});
