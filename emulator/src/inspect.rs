//! What the emulator reports about a file's bytes: MIME type, size, SHA-256, and the pixel
//! size of images or the page count of PDFs. This is how an answer proves the exact bytes
//! arrived.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Facts about one file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The MIME type given at upload.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes (64 chars).
    pub sha256_hex: String,
    /// `3000×2000 px` for images, `3 pages` for PDFs, when the bytes parse.
    pub detail: Option<String>,
}

impl Description {
    /// Inspects `bytes`. Never fails: unparseable content just has no `detail`.
    pub fn of(mime_type: &str, bytes: &[u8]) -> Self {
        Description {
            mime_type: mime_type.to_string(),
            size_bytes: bytes.len() as u64,
            sha256_hex: hex::encode(Sha256::digest(bytes)),
            detail: detail(mime_type, bytes),
        }
    }

    /// `sha256Hash` as Gemini sends it: base64 of the hex digest text.
    pub fn sha256_hash_field(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sha256_hex.as_bytes())
    }

    /// One line for an answer, e.g.
    /// `image/jpeg, 1234567 bytes, SHA-256 0123456789ab, 3000×2000 px`.
    pub fn summary(&self) -> String {
        let mut line = format!("{}, {} bytes, SHA-256 {}", self.mime_type, self.size_bytes, &self.sha256_hex[..12]);
        if let Some(detail) = &self.detail {
            line.push_str(", ");
            line.push_str(detail);
        }
        line
    }
}

fn detail(mime_type: &str, bytes: &[u8]) -> Option<String> {
    if mime_type.starts_with("image/") {
        let size = imagesize::blob_size(bytes).ok()?;
        return Some(format!("{}×{} px", size.width, size.height));
    }
    if mime_type == "application/pdf" {
        let pages = lopdf::Document::load_mem(bytes).ok()?.get_pages().len();
        return Some(format!("{pages} page{}", if pages == 1 { "" } else { "s" }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_field_is_base64_of_hex() {
        let d = Description::of("text/plain", b"hello");
        assert_eq!(d.sha256_hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let decoded = base64::engine::general_purpose::STANDARD.decode(d.sha256_hash_field()).unwrap();
        assert_eq!(decoded, d.sha256_hex.as_bytes());
        assert_eq!(d.summary(), "text/plain, 5 bytes, SHA-256 2cf24dba5fb0");
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
}
