//! Gemini's SSE body, as bytes from the network: never a panic, and however the body is split
//! into reads (the first byte picks the read size), the same chunks come out as from one read.
#![no_main]

use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

/// The parsed chunks as comparable text: each answer's text, or the error.
fn parse(pieces: Vec<Vec<u8>>) -> Vec<String> {
    let body = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::convert::Infallible>));
    let chunks = gemini::sse_chunks(body, |never| match never {});
    futures::executor::block_on(chunks.collect::<Vec<_>>())
        .into_iter()
        .map(|chunk| match chunk {
            Ok(response) => format!("ok {:?}", response.text()),
            Err(e) => format!("err {e}"),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, body)) = data.split_first() else { return };
    let whole = parse(vec![body.to_vec()]);
    let split = parse(body.chunks(usize::from(size % 16) + 1).map(<[u8]>::to_vec).collect());
    assert_eq!(whole, split, "the same body split into reads parsed differently");
});
