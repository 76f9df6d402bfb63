//! Test support, for Parley's crates and anyone testing a client against the emulator: an
//! emulator on a loopback port that answers at once, request-log filters, and a tiny MP4.

use std::time::Duration;

use crate::{EmulatorConfig, LoggedRequest, RunningEmulator};

/// The default configuration, but Files are `ACTIVE` at once and answers stream without
/// pauses: what most tests want.
pub fn instant() -> EmulatorConfig {
    EmulatorConfig {
        processing: Duration::ZERO,
        processing_by_prefix: Vec::new(),
        chunk_delay: Duration::ZERO,
        ..EmulatorConfig::default()
    }
}

/// An emulator with `config` on a free port of `127.0.0.1`.
///
/// # Panics
/// When no loopback port can be bound (a test cannot go on without it).
pub async fn spawn_local(config: EmulatorConfig) -> RunningEmulator {
    crate::spawn("127.0.0.1:0".parse().expect("a loopback address"), config)
        .await
        .expect("the emulator binds a loopback port")
}

/// The requests `emulator` logged whose method is `method` and whose path contains
/// `path_contains`, oldest first.
pub fn requests(
    emulator: &RunningEmulator,
    method: &str,
    path_contains: &str,
) -> Vec<LoggedRequest> {
    emulator
        .emulator
        .request_log()
        .into_iter()
        .filter(|r| r.method == method && r.path.contains(path_contains))
        .collect()
}

/// The smallest MP4 the emulator can describe: `ftyp` + `moov{mvhd v0}` with this `timescale`
/// (units a second) and `duration` (in those units), so `tiny_mp4(1000, 2500)` lasts 2.5 s.
pub fn tiny_mp4(timescale: u32, duration: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&timescale.to_be_bytes());
    mvhd[16..20].copy_from_slice(&duration.to_be_bytes());
    let boxed = |kind: &[u8; 4], payload: &[u8]| {
        let mut b = u32::try_from(payload.len() + 8).unwrap_or(u32::MAX).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    };
    let mut out = boxed(b"ftyp", b"isom\0\0\0\0isom");
    out.extend(boxed(b"moov", &boxed(b"mvhd", &mvhd)));
    out
}
