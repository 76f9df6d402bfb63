//! Injected faults: the next N requests on a route misbehave the way Gemini, a gateway or a
//! network sometimes does. Armed through the control surface (`POST /_emulator/faults`) or
//! [`crate::Emulator::inject`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The resumable-upload `start`.
    #[serde(alias = "upload_start")]
    Start,
    /// Commands that carry bytes at the `x-goog-upload-url`: `upload`, `upload, finalize`,
    /// and a bare `finalize`.
    #[serde(alias = "upload", alias = "upload_chunk")]
    Chunk,
    /// `query` and `cancel` at the `x-goog-upload-url`.
    Query,
    /// `files.get`.
    #[serde(alias = "files.get")]
    Get,
    /// `files.list`.
    #[serde(alias = "files.list")]
    List,
    /// `files.delete`.
    #[serde(alias = "files.delete")]
    Delete,
    /// `generateContent` and `streamGenerateContent`.
    #[serde(alias = "generateContent", alias = "streamGenerateContent", alias = "stream")]
    Generate,
    /// `countTokens`.
    #[serde(alias = "countTokens")]
    CountTokens,
    /// `models.list` and `models.get`.
    #[serde(alias = "models.list", alias = "models.get")]
    Models,
    /// `cachedContents` create, get, list, patch and delete.
    #[serde(alias = "cachedContents")]
    Caches,
    /// Every route above.
    Any,
}

impl Route {
    fn covers(self, other: Route) -> bool {
        self == Route::Any || self == other
    }
}

/// What happens to a request hit by a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 `RESOURCE_EXHAUSTED` with Gemini's quota text, a `QuotaFailure`, and a
    /// `RetryInfo` carrying `retry_delay` (proto Duration text, e.g. `"1s"`, `"0.05s"`).
    #[serde(alias = "429", alias = "resource_exhausted")]
    RateLimited {
        /// Sent as `RetryInfo.retryDelay` and as the `Retry-After` header (rounded up).
        #[serde(default = "default_retry_delay", with = "humantime_serde")]
        retry_delay: Duration,
    },
    /// 500 `INTERNAL`.
    #[serde(alias = "500")]
    Internal,
    /// 503 `UNAVAILABLE` ("The model is overloaded…").
    #[serde(alias = "503")]
    Unavailable,
    /// The TCP connection is closed without an answer. On an upload chunk, half of the
    /// chunk's bytes are taken first (a network that died mid-transfer); on a streamed
    /// answer, two SSE chunks are sent first.
    #[serde(alias = "drop_connection")]
    Drop,
    /// The answer is held back for `hang_for` (default one hour), then given normally.
    Hang {
        /// How long to wait before answering.
        #[serde(default = "default_hang", with = "humantime_serde")]
        hang_for: Duration,
    },
    /// 403 `PERMISSION_DENIED` naming a File: `file` if given, else the first File of the
    /// request ("You do not have permission to access the File X or it may not exist.").
    #[serde(alias = "403", alias = "permission_denied")]
    Forbidden {
        /// The id to name; written as `files/{id}` when `prefixed`.
        #[serde(default)]
        file: Option<String>,
        /// Use the `files/abc` form of the message instead of the bare `abc`.
        #[serde(default)]
        prefixed: bool,
    },
    /// A 200 answer that breaks the protocol: a finalize with `{"file": {}}` (no name, no
    /// uri), or `{}` elsewhere.
    Malformed,
    /// `files.get` answers with `state` spelled as an SDK enum, `FileState.ACTIVE`.
    StateAlias,
    /// A streamed answer comes slowly: `chunk_delay` between its SSE chunks (default 1 s).
    SlowStream {
        /// Pause between chunks.
        #[serde(default = "default_slow", with = "humantime_serde")]
        chunk_delay: Duration,
    },
}

fn default_slow() -> Duration {
    Duration::from_secs(1)
}

fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}

fn default_hang() -> Duration {
    Duration::from_secs(3600)
}

mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// `90s`, `1m 30s`, `250ms` (humantime), or a proto Duration such as `0.05s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).or_else(|e| {
        text.strip_suffix('s')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("not a duration: {text:?} ({e})"))
    })
}

/// A proto Duration's JSON text: `1.5s`, `3s`, `0.05s` (millisecond precision).
pub fn proto_duration(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// An armed fault: `kind` for the next `count` requests on `route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The requests it applies to.
    pub route: Route,
    /// What happens to them.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests it hits (default 1).
    #[serde(default = "one", alias = "times")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The armed faults, in the order they were armed.
#[derive(Debug, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// Arms a fault.
    pub fn push(&mut self, fault: Fault) {
        if fault.count > 0 {
            self.0.push(fault);
        }
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The fault for the next request on `route`, if one is armed; spends one of its count.
    pub fn take(&mut self, route: Route) -> Option<FaultKind> {
        let at = self.0.iter().position(|f| f.route.covers(route))?;
        let fault = &mut self.0[at];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.0.remove(at);
        }
        Some(kind)
    }

    /// Faults still armed.
    pub fn armed(&self) -> &[Fault] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_documented_json() {
        let f: Fault = serde_json::from_str(
            r#"{"route":"generate","kind":"rate_limited","retry_delay":"0.05s","count":2}"#,
        )
        .unwrap();
        assert_eq!(f.kind, FaultKind::RateLimited { retry_delay: Duration::from_millis(50) });
        assert_eq!(f.count, 2);
        let f: Fault = serde_json::from_str(r#"{"route":"chunk","kind":"drop"}"#).unwrap();
        assert_eq!((f.kind, f.count), (FaultKind::Drop, 1));
        let f: Fault =
            serde_json::from_str(r#"{"route":"get","kind":"hang","hang_for":"2s"}"#).unwrap();
        assert_eq!(f.kind, FaultKind::Hang { hang_for: Duration::from_secs(2) });
        assert!(serde_json::from_str::<Fault>(r#"{"route":"nowhere","kind":"drop"}"#).is_err());
        let f: Fault =
            serde_json::from_str(r#"{"route":"files.get","kind":"503","times":3}"#).unwrap();
        assert_eq!((f.route, f.kind, f.count), (Route::Get, FaultKind::Unavailable, 3));
    }

    #[test]
    fn proto_durations_round_trip() {
        assert_eq!(proto_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(proto_duration(Duration::from_secs(15)), "15s");
        assert_eq!(parse_duration("0.05s"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("49h"), Ok(Duration::from_secs(49 * 3600)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn counts_run_down_in_order() {
        let mut faults = Faults::default();
        faults.push(Fault { route: Route::Chunk, kind: FaultKind::Drop, count: 2 });
        faults.push(Fault { route: Route::Any, kind: FaultKind::Internal, count: 1 });
        assert_eq!(faults.take(Route::Get), Some(FaultKind::Internal));
        assert_eq!(faults.take(Route::Chunk), Some(FaultKind::Drop));
        assert_eq!(faults.take(Route::Chunk), Some(FaultKind::Drop));
        assert_eq!(faults.take(Route::Chunk), None);
    }
}
