//! An imported conversation (export format 1.2): never a panic; what imports exports and
//! imports again to the same transcript.
#![no_main]

use parley_protocol::transcript::Transcript;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(transcript) = Transcript::from_export(text) {
        assert_eq!(Transcript::from_export(&transcript.to_export()), Ok(transcript));
    }
});
