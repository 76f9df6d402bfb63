//! The ingest without HTTP: each way an upload ends, on both paths (relayed while it arrives,
//! and stored first), against the emulator, and what is left behind (Files upstream, staged
//! bytes, records).

use std::{sync::Mutex, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use parley_store::{Principal, SessionId, Store};
use sha2::Digest;

use super::*;
use crate::{originals::OriginalsUrl, ClientKey, Originals, RetainPolicy};

/// The caller's refusal in these tests.
#[derive(Debug, PartialEq)]
struct NoRoom;

/// Upload bytes left under the quota; slots always free.
struct Quota(Mutex<u64>);

impl Admission for Quota {
    type Refusal = NoRoom;
    type Slot = ();

    async fn take_bytes(&self, bytes: u64) -> Result<(), NoRoom> {
        let mut left = self.0.lock().unwrap();
        *left = left.checked_sub(bytes).ok_or(NoRoom)?;
        Ok(())
    }

    async fn slot(&self) -> Result<(), NoRoom> {
        Ok(())
    }
}

/// A lifecycle against a fresh emulator, with its originals in a temporary folder.
struct World {
    emulator: gemini_emulator::RunningEmulator,
    lifecycle: Lifecycle,
    owner: Owner,
    temp: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let config = gemini_emulator::EmulatorConfig {
            processing: Duration::from_millis(20),
            ..Default::default()
        };
        let emulator =
            gemini_emulator::spawn("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let key = gemini::ApiKey::new("test-key").unwrap();
        let base = emulator.base_url().parse().unwrap();
        let gemini = gemini::Client::new(gemini::ClientConfig::new(base, key)).unwrap();
        let store = Store::in_memory().unwrap();
        let temp = tempfile::tempdir().unwrap();
        let policy = RetainPolicy { retain_for: Duration::from_secs(3600), max_bytes: 1 << 30 };
        let url = OriginalsUrl::File(temp.path().join("originals"));
        let originals = Originals::at(&url, store.clone(), policy).unwrap();
        let poll = gemini::PollPolicy {
            poll: Duration::from_millis(10),
            jitter: Duration::ZERO,
            ..Default::default()
        };
        let lifecycle =
            Lifecycle::new(gemini, store, originals, "test".into(), Duration::from_secs(60), poll);
        let owner = Principal::anonymous(SessionId::random()).owner();
        World { emulator, lifecycle, owner, temp }
    }

    /// Ingests `pieces` (ending with `end_error` when given), relayed or stored first.
    async fn ingest(
        &self,
        relayed: bool,
        announced: Announced,
        pieces: Vec<Bytes>,
        end_error: Option<&'static str>,
        quota: u64,
    ) -> Result<Ingested, IngestError<NoRoom>> {
        let relay = RelayBudget::new(if relayed { 16 << 20 } else { 0 });
        let admission = Quota(Mutex::new(quota));
        let ingest = Ingest {
            owner: self.owner.clone(),
            file: announced,
            max_bytes: 1 << 30,
            admission: &admission,
            relay: &relay,
            from: ClientKey("127.0.0.1".into()),
        };
        let body = futures::stream::iter(pieces.into_iter().map(Ok))
            .chain(futures::stream::iter(end_error.map(Err)));
        self.lifecycle.ingest(ingest, body).await
    }

    /// Upload commands Gemini was sent that end an upload: (`finalize`s, `cancel`s).
    fn endings(&self) -> (usize, usize) {
        let log = self.emulator.emulator.request_log();
        let count = |word: &str| {
            log.iter()
                .filter(|r| r.upload_command.as_deref().is_some_and(|c| c.contains(word)))
                .count()
        };
        (count("finalize"), count("cancel"))
    }

    /// Files Gemini holds.
    async fn files_upstream(&self) -> usize {
        self.lifecycle.gemini().list_files(Some(100), None).await.unwrap().files.len()
    }

    /// Files recorded for the owner.
    async fn recorded(&self) -> usize {
        self.lifecycle.store().list(&self.owner, 100).await.unwrap().len()
    }

    /// Everything under the originals' folder (staged and kept).
    fn stored(&self) -> Vec<String> {
        walk(&self.temp.path().join("originals"))
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path.display().to_string()]
            }
        })
        .collect()
}

/// `len` bytes of text, in pieces of 64 KiB.
fn text(len: usize) -> (Vec<u8>, Vec<Bytes>) {
    let data: Vec<u8> = (0..len).map(|i| b"parley ingest\n"[i % 14]).collect();
    let pieces = data.chunks(64 << 10).map(Bytes::copy_from_slice).collect();
    (data, pieces)
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn announced(size: usize, sha256: Option<String>) -> Announced {
    Announced {
        size_bytes: size as u64,
        mime_type: "text/plain".into(),
        name: "notes.txt".into(),
        sha256,
    }
}

/// Sizes that take one chunk, and more than one (whose relay overlaps the body).
const SIZES: [usize; 2] = [100 << 10, (8 << 20) + (300 << 10)];

#[tokio::test]
async fn an_upload_becomes_an_active_recorded_file_on_both_paths() {
    for relayed in [true, false] {
        for size in SIZES {
            let world = World::new().await;
            let (data, pieces) = text(size);
            let got = world
                .ingest(relayed, announced(size, Some(sha256(&data))), pieces, None, u64::MAX)
                .await;
            let Ok(Ingested::Uploaded(row)) = got else { panic!("{relayed} {size}: {got:?}") };
            assert_eq!((row.size_bytes, row.sha256.as_str()), (size as u64, &*sha256(&data)));
            assert_eq!(world.endings(), (1, 0));
            assert_eq!((world.files_upstream().await, world.recorded().await), (1, 1));
            assert_eq!(world.stored().len(), 1, "the original is kept, nothing staged");
        }
    }
}

#[tokio::test]
async fn bytes_not_as_declared_never_become_a_file() {
    for relayed in [true, false] {
        for size in SIZES {
            let world = World::new().await;
            let (_, pieces) = text(size);
            let wrong = sha256(b"something else");
            let got =
                world.ingest(relayed, announced(size, Some(wrong)), pieces, None, u64::MAX).await;
            assert!(matches!(got, Err(IngestError::NotAsDeclared)), "{relayed} {size}: {got:?}");
            assert_eq!(world.endings().0, 0, "no finalize");
            assert_eq!((world.files_upstream().await, world.recorded().await), (0, 0));
            assert!(world.stored().is_empty(), "{:?}", world.stored());
        }
    }
}

#[tokio::test]
async fn content_already_active_answers_with_that_file() {
    for relayed in [true, false] {
        for size in SIZES {
            let world = World::new().await;
            let (data, pieces) = text(size);
            let first =
                world.ingest(relayed, announced(size, None), pieces.clone(), None, u64::MAX);
            let Ok(Ingested::Uploaded(first)) = first.await else { panic!("first upload") };
            // Undeclared: only the whole body says it is the same content.
            let again = world.ingest(relayed, announced(size, None), pieces, None, u64::MAX).await;
            let Ok(Ingested::AlreadyActive(copy)) = again else {
                panic!("{relayed} {size}: {again:?}")
            };
            assert_eq!(copy.uri, first.uri);
            assert_eq!(world.endings().0, 1, "one finalize, the first upload's");
            assert_eq!((world.files_upstream().await, world.recorded().await), (1, 1));
            // Declared: nothing is read, and no upload is started.
            let started = world.emulator.emulator.request_log().len();
            let declared = announced(size, Some(sha256(&data)));
            let third = world.ingest(relayed, declared, Vec::new(), Some("unread"), 0).await;
            assert!(matches!(third, Ok(Ingested::AlreadyActive(_))), "{third:?}");
            assert_eq!(world.emulator.emulator.request_log().len(), started, "no call to Gemini");
        }
    }
}

#[tokio::test]
async fn a_refusal_body_failure_or_wrong_size_is_typed_and_leaves_nothing() {
    for relayed in [true, false] {
        for size in SIZES {
            let world = World::new().await;
            let (_, pieces) = text(size);
            type Case = (&'static str, Announced, Vec<Bytes>, Option<&'static str>, u64);
            let cases: Vec<Case> = vec![
                ("quota", announced(size, None), pieces.clone(), None, size as u64 / 2),
                ("body", announced(size, None), pieces.clone(), Some("connection reset"), u64::MAX),
                ("short", announced(size + 1, None), pieces.clone(), None, u64::MAX),
                ("long", announced(size - 1, None), pieces.clone(), None, u64::MAX),
            ];
            for (case, file, pieces, end_error, quota) in cases {
                let got = world.ingest(relayed, file, pieces, end_error, quota).await;
                let expected = match (case, &got) {
                    ("quota", Err(IngestError::Refused(NoRoom))) => true,
                    ("body", Err(IngestError::Body(why))) => why == "connection reset",
                    ("short", Err(IngestError::ShorterThanAnnounced { received, .. })) => {
                        *received == size as u64
                    }
                    ("long", Err(IngestError::LongerThanAnnounced { announced })) => {
                        *announced == size as u64 - 1
                    }
                    _ => false,
                };
                assert!(expected, "{case}, relayed {relayed}, {size} bytes: {got:?}");
            }
            assert_eq!(world.endings().0, 0, "no finalize");
            assert_eq!((world.files_upstream().await, world.recorded().await), (0, 0));
            assert!(world.stored().is_empty(), "{:?}", world.stored());
        }
    }
}

#[tokio::test]
async fn a_declared_type_the_bytes_contradict_is_refused_before_anything_is_sent() {
    let world = World::new().await;
    let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let file = Announced { mime_type: "application/pdf".into(), ..announced(png.len(), None) };
    let got = world.ingest(true, file, vec![png], None, u64::MAX).await;
    let Err(IngestError::ContentMismatch { detected, .. }) = got else { panic!("{got:?}") };
    assert_eq!(detected, "image/png");
    assert!(world.emulator.emulator.request_log().is_empty());
    assert!(world.stored().is_empty());
}

#[tokio::test]
async fn an_announced_size_over_the_limit_reads_nothing() {
    let world = World::new().await;
    let file = announced(usize::MAX >> 1, None);
    let got = world.ingest(false, file, Vec::new(), Some("unread"), 0).await;
    assert!(
        matches!(got, Err(IngestError::TooLarge { limit_bytes, .. }) if limit_bytes == 1 << 30)
    );
    assert!(world.emulator.emulator.request_log().is_empty());
}
