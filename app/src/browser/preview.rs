//! JPEG previews of images, made in the browser: fit inside 720×720, quality 0.7
//! (ChatSphere's format, `docs/export-format.md`). The original file is uploaded untouched.
//!
//! `createImageBitmap` decodes off the main thread in Chromium; the resize uses its
//! high-quality filter, and `OffscreenCanvas.convertToBlob` encodes the JPEG.

use base64::Engine;
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, ImageBitmap, ImageBitmapOptions, ImageEncodeOptions, OffscreenCanvas,
    OffscreenCanvasRenderingContext2d, ResizeQuality,
};

/// Longest side of a preview, pixels.
pub const MAX_SIDE: u32 = 720;
/// JPEG quality of a preview, 0–1.
pub const QUALITY: f64 = 0.7;

/// Whether a preview is attempted for this MIME type (images only; PDFs get none).
pub fn can_preview(mime_type: &str) -> bool {
    mime_type.starts_with("image/")
}

/// `(width, height)` scaled to fit `MAX_SIDE`×`MAX_SIDE`, never enlarged, at least 1×1.
pub fn fit(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height).max(1);
    if longest <= MAX_SIDE {
        return (width.max(1), height.max(1));
    }
    let scale = f64::from(MAX_SIDE) / f64::from(longest);
    let w = (f64::from(width) * scale).round().clamp(1.0, f64::from(MAX_SIDE)) as u32;
    let h = (f64::from(height) * scale).round().clamp(1.0, f64::from(MAX_SIDE)) as u32;
    (w, h)
}

/// A `data:image/jpeg;base64,…` URL of the preview.
///
/// # Errors
/// A readable sentence when the browser cannot decode or encode the image.
pub async fn jpeg_preview(file: &web_sys::File) -> Result<String, String> {
    inner(file).await.map_err(|e| e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

async fn inner(file: &web_sys::File) -> Result<String, JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let decoded: ImageBitmap =
        JsFuture::from(window.create_image_bitmap_with_blob(file)?).await?.dyn_into()?;
    let (w, h) = fit(decoded.width(), decoded.height());
    let options = ImageBitmapOptions::new();
    options.set_resize_width(w);
    options.set_resize_height(h);
    options.set_resize_quality(ResizeQuality::High);
    let resized: ImageBitmap = JsFuture::from(
        window
            .create_image_bitmap_with_image_bitmap_and_image_bitmap_options(&decoded, &options)?,
    )
    .await?
    .dyn_into()?;
    decoded.close();
    let canvas = OffscreenCanvas::new(w, h)?;
    let context: OffscreenCanvasRenderingContext2d =
        canvas.get_context("2d")?.ok_or("no 2d context")?.dyn_into()?;
    context.draw_image_with_image_bitmap(&resized, 0.0, 0.0)?;
    resized.close();
    let encode = ImageEncodeOptions::new();
    encode.set_type("image/jpeg");
    encode.set_quality(QUALITY);
    let blob: Blob =
        JsFuture::from(canvas.convert_to_blob_with_options(&encode)?).await?.dyn_into()?;
    let bytes = Uint8Array::new(&JsFuture::from(blob.array_buffer()).await?).to_vec();
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// A JPEG file named `name` holding the picture of `data_url` (`data:image/jpeg;base64,…`),
/// to upload a preview as a File of its own (a conversation continued from a shared link).
pub fn file_of(data_url: &str, name: &str) -> Option<web_sys::File> {
    let data = data_url.strip_prefix("data:image/jpeg;base64,")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes.as_slice()));
    let options = web_sys::FilePropertyBag::new();
    options.set_type("image/jpeg");
    let name = if name.to_ascii_lowercase().ends_with(".jpg") {
        name.to_string()
    } else {
        format!("{name}.jpg")
    };
    web_sys::File::new_with_u8_array_sequence_and_options(&parts, &name, &options).ok()
}
