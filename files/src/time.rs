//! Time as the registry keeps it (ms since the Unix epoch) and Gemini gives it (RFC 3339).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// True when a File whose `expirationTime` is `expiration` (RFC 3339, as Gemini's File resource
/// gives it: <https://ai.google.dev/api/files#File>) should be treated as expired at `now`,
/// `margin` early. A File without a readable time never expires here.
pub fn is_expired(expiration: Option<&str>, margin: Duration, now: SystemTime) -> bool {
    expiration
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .is_some_and(|at| at <= now + margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_from_the_file_resource_with_a_margin() {
        let now = humantime::parse_rfc3339("2025-12-30T05:00:00Z").unwrap();
        let at = Some("2025-12-30T05:10:57.099754402Z");
        assert!(!is_expired(at, Duration::from_secs(60), now));
        assert!(is_expired(at, Duration::from_secs(660), now), "inside an 11 min margin");
        assert!(is_expired(Some("2025-12-29T05:00:00Z"), Duration::ZERO, now));
        assert!(!is_expired(None, Duration::from_secs(600), now));
        assert!(!is_expired(Some("soon"), Duration::ZERO, SystemTime::now()));
    }
}
