//! What the emulator reports about a file's bytes: MIME type, size, SHA-256, and the pixel
//! size of images, the page count of PDFs or the duration of MP4/QuickTime videos. This is
//! how an answer proves the exact bytes arrived. The page count and the durations of videos
//! and WAV audio also make its token counts ([`crate::tokens`]).
//!
//! Bytes arrive chunk by chunk ([`Inspector::feed`]); only what a detail needs is kept (image
//! headers, PDFs and videos up to [`KEEP_BYTES`], the first [`AUDIO_HEADER_BYTES`] of audio,
//! nothing of text), so a 1 GiB upload costs the emulator at most that much memory.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Bytes of a file kept for parsing its detail (64 MiB). Larger files are hashed whole but
/// parsed from this prefix only (images still work; PDFs and videos get no detail).
pub const KEEP_BYTES: usize = 64 * 1024 * 1024;

/// Bytes of an audio file kept for its WAV header (64 KiB: `fmt ` and the start of `data`
/// come first, after at most a few small chunks).
pub const AUDIO_HEADER_BYTES: usize = 64 * 1024;

/// Facts about one file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The MIME type given at upload.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes (64 chars).
    pub sha256_hex: String,
    /// `3000×2000 px` for images, `3 pages` for PDFs, `2.5 s` for videos, when the bytes parse.
    pub detail: Option<String>,
    /// A video's duration, seconds, when its `mvhd` box parses.
    pub video_seconds: Option<f64>,
    /// A PDF's page count, when the whole PDF was kept and parses.
    pub pdf_pages: Option<usize>,
    /// A WAV file's duration, seconds (`data` size / byte rate), when its header parses.
    pub audio_seconds: Option<f64>,
}

/// Builds a [`Description`] from bytes fed in pieces.
pub struct Inspector {
    mime_type: String,
    size: u64,
    hasher: Sha256,
    kept: Vec<u8>,
}

impl Inspector {
    /// A new inspector for a file of this MIME type.
    pub fn new(mime_type: &str) -> Self {
        Inspector {
            mime_type: mime_type.to_string(),
            size: 0,
            hasher: Sha256::new(),
            kept: Vec::new(),
        }
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes worth keeping for [`Description::detail`]: image headers (1 MiB holds any
    /// EXIF block before the size), whole PDFs and videos up to [`KEEP_BYTES`], audio headers
    /// ([`AUDIO_HEADER_BYTES`]), nothing of other types (text): the emulator's memory stays
    /// flat however large they are.
    fn keep_limit(&self) -> usize {
        if self.mime_type.starts_with("image/") {
            1 << 20
        } else if self.mime_type == "application/pdf" || self.mime_type.starts_with("video/") {
            KEEP_BYTES
        } else if self.mime_type.starts_with("audio/") {
            AUDIO_HEADER_BYTES
        } else {
            0
        }
    }

    /// Takes the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.hasher.update(bytes);
        let room = self.keep_limit().saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// The description of everything fed.
    pub fn finish(self) -> Description {
        let complete = self.kept.len() as u64 == self.size;
        let video_seconds = (complete && self.mime_type.starts_with("video/"))
            .then(|| mp4_duration(&self.kept))
            .flatten();
        let pdf_pages = (complete && self.mime_type == "application/pdf")
            .then(|| Some(lopdf::Document::load_mem(&self.kept).ok()?.get_pages().len()))
            .flatten();
        let audio_seconds = self
            .mime_type
            .starts_with("audio/")
            .then(|| wav_duration(&self.kept, self.size))
            .flatten();
        let detail = detail(&self.mime_type, &self.kept, pdf_pages, video_seconds);
        Description {
            mime_type: self.mime_type,
            size_bytes: self.size,
            sha256_hex: hex::encode(self.hasher.finalize()),
            detail,
            video_seconds,
            pdf_pages,
            audio_seconds,
        }
    }
}

impl Description {
    /// Inspects `bytes` in one go. Never fails: unparseable content just has no `detail`.
    pub fn of(mime_type: &str, bytes: &[u8]) -> Self {
        let mut inspector = Inspector::new(mime_type);
        inspector.feed(bytes);
        inspector.finish()
    }

    /// `sha256Hash` as Gemini sends it: base64 of the hex digest text.
    pub fn sha256_hash_field(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sha256_hex.as_bytes())
    }

    /// One line for an answer, e.g.
    /// `image/jpeg, 1234567 bytes, SHA-256 0123456789ab, 3000×2000 px`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{}, {} bytes, SHA-256 {}",
            self.mime_type,
            self.size_bytes,
            &self.sha256_hex[..12]
        );
        if let Some(detail) = &self.detail {
            line.push_str(", ");
            line.push_str(detail);
        }
        line
    }
}

fn detail(
    mime_type: &str,
    bytes: &[u8],
    pdf_pages: Option<usize>,
    video_seconds: Option<f64>,
) -> Option<String> {
    if mime_type.starts_with("image/") {
        let size = imagesize::blob_size(bytes).ok()?;
        return Some(format!("{}×{} px", size.width, size.height));
    }
    if let Some(pages) = pdf_pages {
        return Some(format!("{pages} page{}", if pages == 1 { "" } else { "s" }));
    }
    video_seconds.map(|s| format!("{s:.1} s"))
}

/// The duration of a RIFF/WAVE file, seconds: the `data` chunk's size over the `fmt ` chunk's
/// byte rate (<http://soundfile.sapp.org/doc/WaveFormat/>; sizes little-endian). `header` is
/// the start of the file, `total` its whole size: a `data` size past the end of the file (a
/// stream's placeholder such as `0xFFFFFFFF`) is cut to what is there.
fn wav_duration(header: &[u8], total: u64) -> Option<f64> {
    if header.get(0..4)? != b"RIFF" || header.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    let mut byte_rate = None;
    while let Some(chunk) = header.get(at..at.checked_add(8)?) {
        let size = le(&chunk[4..8]);
        let body = at + 8;
        match &chunk[0..4] {
            b"fmt " => byte_rate = Some(le(header.get(body + 8..body + 12)?)),
            b"data" => {
                let rate = byte_rate.filter(|&r| r > 0)?;
                let present = total.saturating_sub(body as u64);
                return Some(size.min(present) as f64 / rate as f64);
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = body.checked_add(usize::try_from(size + (size & 1)).ok()?)?;
    }
    None
}

fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The duration of an MP4/QuickTime file from its `moov/mvhd` box, seconds
/// (ISO/IEC 14496-12 §8.2.2: version 0 has 32-bit times, version 1 64-bit).
fn mp4_duration(bytes: &[u8]) -> Option<f64> {
    let moov = find_box(bytes, b"moov")?;
    let mvhd = find_box(moov, b"mvhd")?;
    let (timescale, duration) = match *mvhd.first()? {
        0 => (be(mvhd.get(12..16)?), be(mvhd.get(16..20)?)),
        1 => (be(mvhd.get(20..24)?), be(mvhd.get(24..32)?)),
        _ => return None,
    };
    (timescale > 0).then(|| duration as f64 / timescale as f64)
}

/// The payload of the first box of type `kind` among the boxes laid out in `bytes`.
fn find_box<'a>(mut bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    while bytes.len() >= 8 {
        let size = be(&bytes[0..4]);
        let (header, size) = match size {
            1 => (16, be(bytes.get(8..16)?)),
            0 => (8, bytes.len() as u64),
            n => (8, n),
        };
        let size = usize::try_from(size).ok().filter(|&s| s >= header && s <= bytes.len())?;
        if &bytes[4..8] == kind {
            return Some(&bytes[header..size]);
        }
        bytes = &bytes[size..];
    }
    None
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_field_is_base64_of_hex() {
        let d = Description::of("text/plain", b"hello");
        assert_eq!(
            d.sha256_hex,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(d.sha256_hash_field()).unwrap();
        assert_eq!(decoded, d.sha256_hex.as_bytes());
        assert_eq!(d.summary(), "text/plain, 5 bytes, SHA-256 2cf24dba5fb0");
    }

    #[test]
    fn fed_in_pieces_equals_fed_whole() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut inspector = Inspector::new("application/octet-stream");
        for piece in bytes.chunks(997) {
            inspector.feed(piece);
        }
        assert_eq!(inspector.finish(), Description::of("application/octet-stream", &bytes));
    }

    #[test]
    fn png_dimensions_are_read() {
        // 1×1 PNG.
        let png = base64::engine::general_purpose::STANDARD
            .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
            .unwrap();
        assert_eq!(Description::of("image/png", &png).detail.as_deref(), Some("1×1 px"));
        assert_eq!(Description::of("image/png", b"not a png").detail, None);
    }

    #[test]
    fn wav_duration_comes_from_the_header() {
        let wav = crate::testing::tiny_wav(8000, 20_000);
        assert_eq!(Description::of("audio/wav", &wav).audio_seconds, Some(2.5));
        // A placeholder size past the end counts what is there.
        let mut streamed = wav.clone();
        streamed[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Description::of("audio/x-wav", &streamed).audio_seconds, Some(2.5));
        assert_eq!(Description::of("audio/mpeg", b"ID3 not a wav").audio_seconds, None);
        assert_eq!(Description::of("audio/wav", &wav[..30]).audio_seconds, None);
    }

    #[test]
    fn pdf_pages_are_counted() {
        let pdf = crate::testing::tiny_pdf(3);
        let d = Description::of("application/pdf", &pdf);
        assert_eq!(d.pdf_pages, Some(3));
        assert_eq!(d.detail.as_deref(), Some("3 pages"));
        assert_eq!(Description::of("application/pdf", b"%PDF-garbage").pdf_pages, None);
    }

    #[test]
    fn mp4_duration_comes_from_mvhd() {
        let mp4 = crate::testing::tiny_mp4(1000, 2500);
        let d = Description::of("video/mp4", &mp4);
        assert_eq!(d.video_seconds, Some(2.5));
        assert_eq!(d.detail.as_deref(), Some("2.5 s"));
        assert_eq!(Description::of("video/mp4", b"garbage").video_seconds, None);
    }
}
