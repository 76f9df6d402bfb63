//! What an upload claims, checked: its MIME type reduced to its essence, its display name made
//! safe, its bytes matched against the type it declares (magic bytes, with `infer`).

/// Longest accepted display name, characters (Gemini's `displayName` limit).
pub const MAX_NAME_CHARS: usize = 512;

/// The essence of a MIME type (`type/subtype`, lowercase, parameters dropped), when it is one:
/// RFC 6838 restricted names (letters, digits and `!#$&^_.+-`, 127 characters at most each).
/// Anything else — a NUL, a space, a missing `/` — is refused before it could reach a header.
pub fn essence(mime_type: &str) -> Option<String> {
    let essence = mime_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let name = |part: &str| {
        (1..=127).contains(&part.len())
            && part.as_bytes()[0].is_ascii_alphanumeric()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    (name(kind) && name(subtype)).then_some(essence)
}

/// The person's file name made safe to show and to give Gemini: control characters dropped,
/// whitespace trimmed, at most [`MAX_NAME_CHARS`] characters, `file` when nothing is left. It
/// is never used as a path (originals are stored by SHA-256).
pub fn display_name(raw: &str) -> String {
    let name: String = raw.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let name = name.trim();
    if name.is_empty() {
        "file".into()
    } else {
        name.to_string()
    }
}

/// Checks the declared MIME type against the content's magic bytes (`head`: the first bytes)
/// with the `infer` crate. Content without a known signature (text, CSV, Markdown, …) passes;
/// so does a related type of the same family (`image/jpg` for `image/jpeg`; audio and video
/// share containers such as MP4 and WebM).
///
/// # Errors
/// The detected MIME type when the content is plainly something else (an executable or a PDF
/// sent as `image/png`, a PNG sent as `text/plain`).
pub fn content_matches(declared: &str, head: &[u8]) -> Result<(), String> {
    let Some(kind) = infer::get(head) else { return Ok(()) };
    let detected = kind.mime_type();
    let family = |m: &str| m.split('/').next().unwrap_or_default().to_ascii_lowercase();
    let (declared_family, detected_family) = (family(declared), family(detected));
    let media = |f: &str| f == "audio" || f == "video";
    let related = detected.eq_ignore_ascii_case(declared)
        || (declared_family == detected_family && declared_family != "application")
        || (media(&declared_family) && media(&detected_family));
    if related {
        Ok(())
    } else {
        Err(detected.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    /// An ELF header's first bytes, padded to the 64 bytes of a real one.
    const ELF: &[u8; 64] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    #[test]
    fn declared_types_must_match_the_magic_bytes() {
        assert_eq!(content_matches("image/png", PNG), Ok(()));
        assert_eq!(
            content_matches("image/jpg", b"\xff\xd8\xff\xe0\0\x10JFIF"),
            Ok(()),
            "same family"
        );
        assert_eq!(content_matches("application/pdf", PDF), Ok(()));
        assert_eq!(content_matches("text/plain", b"just words, no signature"), Ok(()));
        assert_eq!(content_matches("text/csv", b""), Ok(()));
        assert_eq!(content_matches("image/png", PDF), Err("application/pdf".into()));
        assert_eq!(content_matches("application/pdf", PNG), Err("image/png".into()));
        assert_eq!(content_matches("text/plain", PNG), Err("image/png".into()));
        assert!(
            content_matches("image/jpeg", ELF.as_slice()).is_err(),
            "an executable sent as an image"
        );
        assert!(content_matches("application/pdf", ELF.as_slice()).is_err());
    }

    #[test]
    fn mime_types_are_checked_and_reduced_to_their_essence() {
        assert_eq!(essence("text/csv; charset=utf-8").as_deref(), Some("text/csv"));
        assert_eq!(essence(" Image/PNG ").as_deref(), Some("image/png"));
        assert_eq!(
            essence("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
                .as_deref()
                .map(str::len),
            Some(71)
        );
        for bad in [
            "\0",
            "text",
            "text/",
            "/plain",
            "text/pl ain",
            "text/plain\0",
            "te\nxt/plain",
            "",
            "a/b/c",
        ] {
            assert_eq!(essence(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_names_are_sanitised() {
        assert_eq!(display_name("  report.pdf "), "report.pdf");
        assert_eq!(display_name("a\u{0}b\r\nc\u{7f}.txt"), "abc.txt");
        assert_eq!(
            display_name("../../etc/passwd"),
            "../../etc/passwd",
            "kept as text: never a path"
        );
        assert_eq!(display_name("\u{1}\u{2}"), "file");
        assert_eq!(display_name(&"x".repeat(600)).chars().count(), MAX_NAME_CHARS);
    }
}
