//! Helpers shared by the client's tests against the emulator.
#![allow(dead_code)]

use std::time::Duration;

use gemini::{ApiKey, Client, ClientConfig, PollPolicy, RetryPolicy};
use gemini_emulator::{EmulatorConfig, RunningEmulator};
use sha2::{Digest, Sha256};

pub async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    gemini_emulator::testing::spawn_local(config).await
}

/// Retries with tiny delays, so that tests of retrying stay fast.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

pub fn config(emu: &RunningEmulator, key: &str) -> ClientConfig {
    let mut config = ClientConfig::new(emu.base_url().parse().unwrap(), ApiKey::new(key).unwrap());
    config.retry = quick_retries();
    config
}

pub fn client(emu: &RunningEmulator, key: &str) -> Client {
    Client::new(config(emu, key)).unwrap()
}

pub fn fast_polls() -> PollPolicy {
    PollPolicy {
        poll: Duration::from_millis(50),
        max_poll: Duration::from_millis(100),
        ..PollPolicy::default()
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed as u32) as u8 ^ seed)
        .collect()
}

pub fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file named `name` holding `bytes` in a directory of its own, removed on drop.
pub struct TempFile(pub std::path::PathBuf, tempfile::TempDir);

impl TempFile {
    pub fn new(name: &str, bytes: &[u8]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path, dir)
    }
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time such as
/// `2026-09-07T01:18:17.438678Z` (the fraction dropped), by the days-from-civil algorithm
/// (<https://howardhinnant.github.io/date_algorithms.html#days_from_civil>).
pub fn rfc3339_secs(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    assert!(text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}
