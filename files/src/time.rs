//! Time as the registry keeps it (ms since the Unix epoch) and Gemini gives it (RFC 3339).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Now as RFC 3339 with whole seconds, e.g. `2026-12-01T17:05:09Z`.
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// RFC 3339 with whole seconds of `ms` since the Unix epoch (`None` before it).
pub fn rfc3339_of_ms(ms: i64) -> Option<String> {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
    Some(humantime::format_rfc3339_seconds(at).to_string())
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (Gemini's `expireTime`), if readable.
pub fn ms_of_rfc3339(time: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
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

    #[test]
    fn rfc3339_times_read_back() {
        assert_eq!(ms_of_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500));
        assert_eq!(ms_of_rfc3339("soon"), None);
        assert_eq!(rfc3339_of_ms(1_500).as_deref(), Some("1970-01-01T00:00:01Z"));
        assert!(ms_of_rfc3339(&rfc3339_now()).is_some_and(|ms| (ms - now_ms()).abs() < 2_000));
    }
}
