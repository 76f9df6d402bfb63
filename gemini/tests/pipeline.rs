//! [`gemini::Client::upload_pipelined`] against the emulator: chunks go out while the stream
//! is still arriving, a dropped chunk is resumed from the pieces kept, and a stream that fails
//! (also at its very end) never becomes a File — its session is cancelled.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use common::{bytes_of, client, emulator, sha_hex};
use futures::StreamExt;
use gemini::{Error, UploadRequest};
use gemini_emulator::testing::{instant, requests};
use gemini_emulator::{Fault, FaultKind, Route};

const MIB: usize = 1024 * 1024;

fn request(size: usize) -> UploadRequest {
    UploadRequest {
        display_name: Some("arriving.bin".into()),
        mime_type: "video/mp4".into(),
        size_bytes: size as u64,
    }
}

/// `data` in pieces of `piece` bytes, each after `pause`, the whole failing at its end with
/// `end_error` when given.
fn arriving(
    data: &[u8],
    piece: usize,
    pause: Duration,
    end_error: Option<&'static str>,
) -> impl futures::Stream<Item = Result<Bytes, String>> {
    let pieces: Vec<Bytes> = data.chunks(piece).map(Bytes::copy_from_slice).collect();
    let tail = end_error.map(|e| Err(e.to_string()));
    futures::stream::iter(pieces)
        .then(move |p| async move {
            tokio::time::sleep(pause).await;
            Ok(p)
        })
        .chain(futures::stream::iter(tail))
}

fn received_sha(file: &gemini::File) -> String {
    let hash = base64::engine::general_purpose::STANDARD
        .decode(file.sha256_hash.as_deref().unwrap())
        .unwrap();
    String::from_utf8(hash).unwrap()
}

/// A 20 MiB stream arriving over about 1 s: the first chunk's request is under way before
/// the stream has ended, and every byte arrives.
#[tokio::test]
async fn chunks_go_out_while_the_stream_arrives() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(20 * MIB, 3);
    let started = Instant::now();
    let stream = arriving(&data, 256 * 1024, Duration::from_millis(12), None);
    let watch = async {
        // When the first chunk has been taken whole, the stream is still far from its end.
        while requests(&emu, "POST", "upload").iter().all(|r| r.upload_offset.is_none()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    };
    let req = request(data.len());
    let (file, first_chunk_logged) = tokio::join!(gemini.upload_pipelined(&req, stream), watch);
    let file = file.unwrap();
    let total = started.elapsed();
    assert_eq!(received_sha(&file), sha_hex(&data));
    assert_eq!(file.size_bytes, data.len() as u64);
    assert!(
        first_chunk_logged < total * 3 / 4,
        "first chunk answered at {first_chunk_logged:?} of {total:?}: not pipelined"
    );
    let chunks = requests(&emu, "POST", "upload");
    let offsets: Vec<_> = chunks.iter().filter_map(|r| r.upload_offset).collect();
    assert_eq!(offsets, [0, 8 * MIB as u64, 16 * MIB as u64]);
}

/// A chunk whose connection drops mid-way is resumed from the kept pieces: byte-exact.
#[tokio::test]
async fn a_dropped_chunk_is_resumed_from_the_pieces_kept() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(20 * MIB, 9);
    emu.emulator.inject(Fault { route: Route::Chunk, kind: FaultKind::Drop, count: 1 });
    let stream = arriving(&data, 1_000_003, Duration::ZERO, None);
    let file = gemini.upload_pipelined(&request(data.len()), stream).await.unwrap();
    assert_eq!(received_sha(&file), sha_hex(&data), "byte-exact after a drop");
    let log = requests(&emu, "POST", "upload");
    assert_eq!(log.iter().filter(|r| r.fault.as_deref() == Some("drop")).count(), 1);
    assert_eq!(log.iter().filter(|r| r.upload_command.as_deref() == Some("query")).count(), 1);
}

/// A stream that fails at its very end (after every byte) is not finalized: the session is
/// cancelled and no File exists.
#[tokio::test]
async fn a_stream_failing_at_its_end_is_cancelled_not_finalized() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(12 * MIB, 4);
    let stream = arriving(&data, 512 * 1024, Duration::ZERO, Some("SHA-256 mismatch"));
    let err = gemini.upload_pipelined(&request(data.len()), stream).await.unwrap_err();
    assert!(matches!(&err, Error::Source(m) if m == "SHA-256 mismatch"), "{err:?}");
    let log = requests(&emu, "POST", "upload");
    assert!(log.iter().any(|r| r.upload_command.as_deref() == Some("cancel")), "cancelled");
    assert!(!log
        .iter()
        .any(|r| r.upload_command.as_deref().is_some_and(|c| c.contains("finalize"))));
    assert!(gemini.list_all_files().await.unwrap().is_empty(), "no File");
}

/// Longer or shorter than announced: refused, cancelled; one chunk or less: refused before any
/// upstream call.
#[tokio::test]
async fn a_stream_of_the_wrong_size_is_refused() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k1");
    let data = bytes_of(10 * MIB, 1);
    let short = arriving(&data[..9 * MIB], MIB, Duration::ZERO, None);
    let err = gemini.upload_pipelined(&request(data.len()), short).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { actual, .. } if actual == 9 * MIB as u64));
    let long = arriving(&data, MIB, Duration::ZERO, None);
    let err = gemini.upload_pipelined(&request(9 * MIB), long).await.unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
    let cancels = requests(&emu, "POST", "upload")
        .iter()
        .filter(|r| r.upload_command.as_deref() == Some("cancel"))
        .count();
    assert_eq!(cancels, 2);

    let before = requests(&emu, "POST", "upload").len();
    let small = arriving(b"hello", 2, Duration::ZERO, Some("refused"));
    assert!(gemini.upload_pipelined(&request(5), small).await.is_err());
    assert_eq!(requests(&emu, "POST", "upload").len(), before, "no upstream call at all");
    let small = arriving(b"hello", 2, Duration::ZERO, None);
    let file = gemini.upload_pipelined(&request(5), small).await.unwrap();
    assert_eq!(received_sha(&file), sha_hex(b"hello"));
}
