//! A shared link's picture for other sites' link previews (OpenGraph `og:image`): 1200 × 630
//! pixels, JPEG, made with the `image` crate from the snapshot's first preview, fitted on
//! Parley's colours — or, without one, a plain Parley card. No text is drawn (no font to ship):
//! the title travels in the page's tags.

use image::{imageops, Rgb, RgbImage};
use parley_files::thumbnails;

/// The card's width, pixels (what OpenGraph consumers show best).
pub const WIDTH: u32 = 1200;

/// The card's height, pixels.
pub const HEIGHT: u32 = 630;

/// The margin around the picture, pixels.
const MARGIN: u32 = 40;

/// The card, made from `preview` (a picture's bytes) when it decodes within the limits.
pub fn make(preview: Option<&[u8]>) -> Vec<u8> {
    // Parley's indigo, lighter towards the bottom right.
    let mut card = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let t = (x + y) as f32 / (WIDTH + HEIGHT) as f32;
        let mix = |from: f32, to: f32| (from + (to - from) * t) as u8;
        Rgb([mix(67.0, 129.0), mix(56.0, 140.0), mix(202.0, 248.0)])
    });
    match preview.and_then(|bytes| thumbnails::decode(bytes).ok()) {
        Some(picture) => {
            let fitted = picture
                .resize(WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN, imageops::FilterType::Triangle)
                .into_rgb8();
            let x = (WIDTH - fitted.width()) / 2;
            let y = (HEIGHT - fitted.height()) / 2;
            imageops::overlay(&mut card, &fitted, i64::from(x), i64::from(y));
        }
        None => {
            // Three lines of a chat, as the mark.
            for (n, width) in [(0u32, 520u32), (1, 680), (2, 420)] {
                let top = 215 + n * 70;
                let left = if n == 1 { WIDTH - 300 - width } else { 300 };
                for y in top..top + 44 {
                    for x in left..left + width {
                        card.put_pixel(x, y, Rgb([255, 255, 255]));
                    }
                }
            }
        }
    }
    thumbnails::jpeg(&card).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_is_1200_by_630_with_or_without_a_picture() {
        let photo = {
            let picture = RgbImage::from_pixel(720, 480, Rgb([200, 30, 30]));
            let mut bytes = std::io::Cursor::new(Vec::new());
            picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
            bytes.into_inner()
        };
        for preview in [Some(&photo[..]), None, Some(&b"not a picture"[..])] {
            let card = image::load_from_memory(&make(preview)).unwrap();
            assert_eq!((card.width(), card.height()), (WIDTH, HEIGHT));
        }
        let with = image::load_from_memory(&make(Some(&photo))).unwrap().into_rgb8();
        let middle = with.get_pixel(WIDTH / 2, HEIGHT / 2);
        assert!(middle[0] > 150 && middle[1] < 80, "the photo in the middle: {middle:?}");
    }
}
