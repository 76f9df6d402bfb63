//! The 403 text ("You do not have permission to access the File X or it may not exist."):
//! never a panic; a file id found is a non-empty `[A-Za-z0-9-]` word of the message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &str| {
    let err = gemini::Error::Api { code: 403, status: "PERMISSION_DENIED".into(), message: message.into(), retry_after: None };
    if let Some(id) = err.inaccessible_file_id() {
        assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{id:?}");
        assert!(message.contains(id));
    }
});
