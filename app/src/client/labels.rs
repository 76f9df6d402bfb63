//! What the page writes about things: a file's badge and family, a File's state and the time
//! to its expiry.

use super::state::now_ms;
use crate::model::FileState;

/// The family of a MIME type, for styling a file badge: `image`, `audio`, `video`, `pdf`,
/// `text` or `file`.
pub fn kind_of(mime_type: &str) -> &'static str {
    match mime_type.split('/').next().unwrap_or("") {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        "text" => "text",
        _ if mime_type == "application/pdf" => "pdf",
        _ => "file",
    }
}

/// A file badge's label: the name's extension, upper-cased, at most 4 characters
/// (`report.pdf` → `PDF`), else `FILE`.
pub fn badge_for(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| {
            !ext.is_empty() && ext.len() <= 4 && ext.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| "FILE".into())
}

/// How the Files view names where a File stands.
pub fn state_label(state: FileState) -> &'static str {
    match state {
        FileState::Active => "Ready",
        FileState::Expired => "Expired",
        FileState::Replaced => "Uploaded again",
    }
}

/// `in 47 h`, `in 12 min`, or `expired`.
pub fn time_to_expiry(expiration: Option<&str>, state: FileState) -> String {
    if state != FileState::Active {
        return "expired".into();
    }
    let Some(at) = expiration.and_then(parse_ms) else { return "—".into() };
    // Whole minutes as an integer: formatting a float would weigh about 14 KB in the wasm.
    let left_min = ((at - now_ms()) / 60_000.0).floor() as i64;
    match left_min {
        m if m <= 0 => "expired".into(),
        m if m < 120 => format!("in {m} min"),
        m => format!("in {} h", m / 60),
    }
}

/// Ms since the epoch of an RFC 3339 time (the browser parses it).
fn parse_ms(text: &str) -> Option<f64> {
    #[cfg(feature = "hydrate")]
    {
        let ms = js_sys::Date::parse(text);
        (!ms.is_nan()).then_some(ms)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges() {
        assert_eq!(badge_for("report.pdf"), "PDF");
        assert_eq!(badge_for("clip.webm"), "WEBM");
        assert_eq!(badge_for("archive.tar.gz"), "GZ");
        assert_eq!(badge_for("README"), "FILE");
        assert_eq!(badge_for("weird.extension"), "FILE");
        assert_eq!(kind_of("application/pdf"), "pdf");
        assert_eq!(kind_of("image/heic"), "image");
    }
}
