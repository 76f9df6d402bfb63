//! Thumbnails of images for the Files view, made on the server from the retained original
//! with the `image` crate: a JPEG fitting [`SIDE_PX`]², made once and kept beside the original
//! ([`crate::Originals::thumbnail`]).
//!
//! Decoding is bounded before it starts: `image::Limits` refuses a picture wider or taller
//! than [`MAX_SIDE_PX`] or needing more than [`MAX_DECODE_BYTES`] — read from its header, so a
//! decompression bomb (a few KB claiming 100,000 × 100,000 pixels) is refused, not rendered —
//! and originals over [`MAX_SOURCE_BYTES`] are not read at all. At most [`AT_ONCE`] decode at
//! a time, on the blocking pool.

/// Longest side of a thumbnail, pixels.
pub const SIDE_PX: u32 = 256;

/// Largest original a thumbnail is made of, bytes (50 MiB).
pub const MAX_SOURCE_BYTES: u64 = 50 << 20;

/// Widest or tallest picture decoded, pixels.
pub const MAX_SIDE_PX: u32 = 12_000;

/// Most memory one decode may take, bytes (256 MiB: a 12,000 × 5,000 RGBA picture).
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Thumbnails made at once (each may hold [`MAX_DECODE_BYTES`]).
pub const AT_ONCE: usize = 2;

/// JPEG quality of a thumbnail (of 100).
const QUALITY: u8 = 80;

/// Why no thumbnail could be made of some bytes.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// Not a picture the decoder reads (or a damaged one).
    #[error("the image could not be read: {0}")]
    Unreadable(String),
    /// Past the decoding limits (a decompression bomb, or just too big).
    #[error("the image is too large to make a thumbnail of: {0}")]
    TooLarge(String),
}

/// A JPEG of `bytes` (a PNG, JPEG, GIF or WebP picture) fitting [`SIDE_PX`]², its aspect kept.
///
/// # Errors
/// [`ThumbnailError`]; nothing past the limits is decoded.
pub fn make(bytes: &[u8]) -> Result<Vec<u8>, ThumbnailError> {
    fit(bytes, SIDE_PX)
}

/// A JPEG of `bytes` (a PNG, JPEG, GIF or WebP picture) fitting `side_px`², its aspect kept
/// (never enlarged): a new picture, so nothing of the original's metadata (EXIF, location)
/// comes along.
///
/// # Errors
/// [`ThumbnailError`]; nothing past the limits is decoded.
pub fn fit(bytes: &[u8], side_px: u32) -> Result<Vec<u8>, ThumbnailError> {
    fit_within(bytes, side_px, MAX_SIDE_PX)
}

/// [`fit`], for a picture no wider or taller than `max_source_px` (decoding it may then take
/// at most 4 × `max_source_px`² bytes): a larger one is refused from its header.
///
/// # Errors
/// [`ThumbnailError`]; nothing past the limits is decoded.
pub fn fit_within(
    bytes: &[u8],
    side_px: u32,
    max_source_px: u32,
) -> Result<Vec<u8>, ThumbnailError> {
    let max_source_px = max_source_px.min(MAX_SIDE_PX);
    let most = (4 * u64::from(max_source_px) * u64::from(max_source_px)).min(MAX_DECODE_BYTES);
    let picture = decode_within(bytes, max_source_px, most)?;
    let small = if picture.width() > side_px || picture.height() > side_px {
        picture.thumbnail(side_px, side_px)
    } else {
        picture
    };
    jpeg(&small.into_rgb8())
}

/// `bytes` decoded within the limits ([`MAX_SIDE_PX`], [`MAX_DECODE_BYTES`]).
///
/// # Errors
/// [`ThumbnailError`]; nothing past the limits is decoded.
pub fn decode(bytes: &[u8]) -> Result<image::DynamicImage, ThumbnailError> {
    decode_within(bytes, MAX_SIDE_PX, MAX_DECODE_BYTES)
}

/// `bytes` decoded if no side is over `max_side_px` and decoding takes at most `max_bytes`.
fn decode_within(
    bytes: &[u8],
    max_side_px: u32,
    max_bytes: u64,
) -> Result<image::DynamicImage, ThumbnailError> {
    let unreadable = |e: std::io::Error| ThumbnailError::Unreadable(e.to_string());
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(unreadable)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side_px);
    limits.max_image_height = Some(max_side_px);
    limits.max_alloc = Some(max_bytes);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(limit) => ThumbnailError::TooLarge(limit.to_string()),
        other => ThumbnailError::Unreadable(other.to_string()),
    })
}

/// `picture` as a JPEG of quality 80.
///
/// # Errors
/// [`ThumbnailError::Unreadable`] when the encoder fails.
pub fn jpeg(picture: &image::RgbImage) -> Result<Vec<u8>, ThumbnailError> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(picture)
        .map_err(|e| ThumbnailError::Unreadable(e.to_string()))?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn a_picture_becomes_a_small_jpeg_of_its_shape() {
        let jpeg = make(&png(1200, 600)).unwrap();
        let thumbnail = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (256, 128));
        assert!(jpeg.len() < 30_000, "{} bytes", jpeg.len());
    }

    #[test]
    fn fit_within_refuses_a_source_past_its_bound() {
        assert!(fit_within(&png(600, 400), 720, 2048).is_ok());
        let refused = fit_within(&png(2100, 100), 720, 2048);
        assert!(matches!(refused, Err(ThumbnailError::TooLarge(_))), "{refused:?}");
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_decoded() {
        // A real PNG header claiming 100,000 × 100,000 pixels (40 GB decoded), and its IDAT
        // cut short: a few hundred bytes.
        let mut bomb = png(8, 8);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(make(&bomb), Err(ThumbnailError::TooLarge(_))), "{:?}", make(&bomb));
        assert!(matches!(make(b"%PDF-1.7 not a picture"), Err(ThumbnailError::Unreadable(_))));
    }

    /// The CRC-32 of a PNG chunk (ISO 3309), to keep the bomb's header well-formed.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
