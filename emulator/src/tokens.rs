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
//! Each count also goes to its modality ([`Modality`]: `TEXT` for texts and text-like files,
//! `IMAGE`, `VIDEO`, `AUDIO`, `DOCUMENT` for PDFs), which answers list as
//! `promptTokensDetails` (and `cacheTokensDetails` for a cache's part) in the enum's order,
//! an entry of 0 tokens without its `tokenCount`, as Gemini writes them ([`ByModality`]).
//!
//! `fileData` and `inlineData` parts count alike, by their MIME type and bytes. A
//! `thoughtSignature` counts nothing. A prompt is its `contents` plus its
//! `systemInstruction` plus the tokens of the cache it names. Answers count a token per word
//! (`candidatesTokenCount`), and thinking models report a fixed [`THOUGHTS`] (64) as
//! `thoughtsTokenCount`.

use serde_json::{json, Value};

use crate::inspect::Description;

/// What a count is of: Gemini's `Modality` enum (`generative_service.proto`), in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    /// Texts, and files read as text (`text/*`, JSON, …).
    Text = 0,
    /// Images.
    Image = 1,
    /// Videos.
    Video = 2,
    /// Audio.
    Audio = 3,
    /// PDFs.
    Document = 4,
}

impl Modality {
    const ALL: [Modality; 5] =
        [Modality::Text, Modality::Image, Modality::Video, Modality::Audio, Modality::Document];

    /// The enum value's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Text => "TEXT",
            Modality::Image => "IMAGE",
            Modality::Video => "VIDEO",
            Modality::Audio => "AUDIO",
            Modality::Document => "DOCUMENT",
        }
    }

    /// The modality of a file, by its MIME type.
    pub fn of(d: &Description) -> Modality {
        let mime = d.mime_type.as_str();
        if mime.starts_with("image/") {
            Modality::Image
        } else if mime == "application/pdf" {
            Modality::Document
        } else if mime.starts_with("audio/") {
            Modality::Audio
        } else if mime.starts_with("video/") {
            Modality::Video
        } else {
            Modality::Text
        }
    }
}

/// Tokens per modality; a modality with a part of its kind is listed even at 0 tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByModality([Option<u64>; 5]);

impl ByModality {
    /// Counts `tokens` more of `modality`.
    pub fn add(&mut self, modality: Modality, tokens: u64) {
        let slot = &mut self.0[modality as usize];
        *slot = Some(slot.unwrap_or(0).saturating_add(tokens));
    }

    /// The counts of both.
    pub fn merge(mut self, other: ByModality) -> ByModality {
        for m in Modality::ALL {
            if let Some(n) = other.0[m as usize] {
                self.add(m, n);
            }
        }
        self
    }

    /// The `[{"modality": "TEXT", "tokenCount": 9}, …]` list, in the enum's order; `None`
    /// when no part was counted.
    pub fn details(&self) -> Option<Value> {
        let list: Vec<Value> = Modality::ALL
            .iter()
            .filter_map(|m| {
                let n = self.0[*m as usize]?;
                Some(if n == 0 {
                    json!({"modality": m.name()})
                } else {
                    json!({"modality": m.name(), "tokenCount": n})
                })
            })
            .collect();
        (!list.is_empty()).then_some(Value::Array(list))
    }
}

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

    #[test]
    fn details_list_modalities_in_order_and_omit_zero_counts() {
        let mut by = ByModality::default();
        assert_eq!(by.details(), None);
        by.add(Modality::Document, 258);
        by.add(Modality::Text, 0);
        let more = {
            let mut m = ByModality::default();
            m.add(Modality::Text, 9);
            m
        };
        assert_eq!(
            by.details(),
            Some(
                serde_json::json!([{"modality": "TEXT"}, {"modality": "DOCUMENT", "tokenCount": 258}])
            )
        );
        assert_eq!(
            by.merge(more).details(),
            Some(
                serde_json::json!([{"modality": "TEXT", "tokenCount": 9}, {"modality": "DOCUMENT", "tokenCount": 258}])
            )
        );
    }
}
