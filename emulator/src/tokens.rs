//! The emulator's token counts: deterministic, so that a test can predict them, and close
//! to Gemini's documented rates (<https://ai.google.dev/gemini-api/docs/tokens>: "about 4
//! characters" a token; images 258 tokens; video 263 and audio 32 tokens a second;
//! <https://ai.google.dev/gemini-api/docs/document-processing>: 258 tokens a PDF page).
//! `countTokens` answers them, `generateContent` reports them as `promptTokenCount`, and
//! `cachedContents.create` checks them against the model's minimum. The rules, also in
//! `docs/gemini-protocol.md` ("The emulator's token counts"):
//!
//! | part | tokens |
//! |---|---|
//! | `text` | its Unicode scalar values / 4, rounded up, per part |
//! | a thought (`thought: true`) | 0 (Gemini drops earlier turns' thoughts) |
//! | image | [`IMAGE`] (258) |
//! | PDF | [`PDF_PAGE`] (258) a page; one page when the page count cannot be read |
//! | audio | [`AUDIO_PER_SECOND`] (32) a second, rounded up; a file whose WAV header does not parse lasts its bytes / [`AUDIO_FALLBACK_BYTES_PER_SECOND`] (16,000) seconds, rounded up |
//! | video | [`VIDEO_PER_SECOND`] (263) a second, rounded up; a video whose `mvhd` does not parse lasts its bytes / [`VIDEO_FALLBACK_BYTES_PER_SECOND`] (250,000) seconds, rounded up |
//! | any other file (`text/plain`, JSON, …) | its bytes / 4, rounded up |
//!
//! `fileData` and `inlineData` parts count alike, by their MIME type and bytes. A
//! `thoughtSignature` counts nothing. A prompt is its `contents` plus its
//! `systemInstruction` plus the tokens of the cache it names. Answers count a token per word
//! (`candidatesTokenCount`), and thinking models report a fixed [`THOUGHTS`] (64) as
//! `thoughtsTokenCount`.

use crate::inspect::Description;

/// `thoughtsTokenCount` of every answer of a thinking model.
pub const THOUGHTS: u64 = 64;
/// Tokens of one image, whatever its size.
pub const IMAGE: u64 = 258;
/// Tokens of one PDF page.
pub const PDF_PAGE: u64 = 258;
/// Tokens of one second of audio.
pub const AUDIO_PER_SECOND: u64 = 32;
/// Tokens of one second of video.
pub const VIDEO_PER_SECOND: u64 = 263;
/// Bytes a second of audio whose duration cannot be read (128 kbit/s).
pub const AUDIO_FALLBACK_BYTES_PER_SECOND: u64 = 16_000;
/// Bytes a second of video whose duration cannot be read (2 Mbit/s).
pub const VIDEO_FALLBACK_BYTES_PER_SECOND: u64 = 250_000;

/// Tokens of a text: its Unicode scalar values / 4, rounded up (`""` is 0).
pub fn text(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Tokens of a file, by what [`crate::inspect`] found in its bytes.
pub fn file(d: &Description) -> u64 {
    let mime = d.mime_type.as_str();
    if mime.starts_with("image/") {
        IMAGE
    } else if mime == "application/pdf" {
        PDF_PAGE.saturating_mul(d.pdf_pages.map_or(1, |p| p as u64))
    } else if mime.starts_with("audio/") {
        let fallback = || d.size_bytes.div_ceil(AUDIO_FALLBACK_BYTES_PER_SECOND) as f64;
        per_second(d.audio_seconds.unwrap_or_else(fallback), AUDIO_PER_SECOND)
    } else if mime.starts_with("video/") {
        let fallback = || d.size_bytes.div_ceil(VIDEO_FALLBACK_BYTES_PER_SECOND) as f64;
        per_second(d.video_seconds.unwrap_or_else(fallback), VIDEO_PER_SECOND)
    } else {
        d.size_bytes.div_ceil(4)
    }
}

/// `seconds × rate`, rounded up (a float-to-integer cast saturates: no overflow, NaN is 0).
fn per_second(seconds: f64, rate: u64) -> u64 {
    (seconds.max(0.0) * rate as f64).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tiny_mp4, tiny_pdf, tiny_wav};

    #[test]
    fn text_is_a_quarter_of_its_characters_rounded_up() {
        assert_eq!(text(""), 0);
        assert_eq!(text("abc"), 1);
        assert_eq!(text("abcd"), 1);
        assert_eq!(text("abcde"), 2);
        assert_eq!(text("ééééé"), 2, "characters, not bytes");
    }

    #[test]
    fn files_count_by_kind() {
        let of = |mime: &str, bytes: &[u8]| file(&Description::of(mime, bytes));
        assert_eq!(of("image/png", b"not even a png"), IMAGE);
        assert_eq!(of("application/pdf", &tiny_pdf(3)), 3 * PDF_PAGE);
        assert_eq!(of("application/pdf", b"%PDF-broken"), PDF_PAGE);
        assert_eq!(of("audio/wav", &tiny_wav(8000, 20_000)), 80, "2.5 s × 32");
        assert_eq!(of("audio/mpeg", &[0u8; 16_001]), 2 * AUDIO_PER_SECOND, "2 s by its size");
        assert_eq!(of("video/mp4", &tiny_mp4(1000, 2500)), 658, "2.5 s × 263 = 657.5");
        assert_eq!(of("video/webm", &[0u8; 10]), VIDEO_PER_SECOND, "1 s by its size");
        assert_eq!(of("text/plain", b"hello"), 2);
        assert_eq!(of("text/plain", b""), 0);
    }
}
