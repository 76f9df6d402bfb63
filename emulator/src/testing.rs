//! Test support, for Parley's crates and anyone testing a client against the emulator: an
//! emulator on a loopback port that answers at once, request-log filters, and tiny MP4, WAV
//! and PDF files.

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

/// The smallest WAV the emulator can time: a RIFF/WAVE header for mono 16-bit PCM at
/// `sample_rate` (Hz) followed by `samples` silent samples, so `tiny_wav(8000, 20_000)` lasts
/// 2.5 s and is 40,044 bytes.
pub fn tiny_wav(sample_rate: u32, samples: u32) -> Vec<u8> {
    let data_len = samples.saturating_mul(2);
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&sample_rate.saturating_mul(2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}

/// A valid PDF of `pages` empty Letter-size pages (catalog, page tree, pages, and an exact
/// cross-reference table), as small as a PDF gets.
pub fn tiny_pdf(pages: usize) -> Vec<u8> {
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", i + 3)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")),
    ];
    objects.extend(
        (0..pages).map(|_| "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_string()),
    );
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
