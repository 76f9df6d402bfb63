//! Waiting for a File to become `ACTIVE`.
//!
//! The schedule follows pollux's `upload_and_wait_active` (`docs/gemini-protocol.md`):
//! first poll after 2 s, delays ×1.5 up to 10 s, plus up to 0.2 s of jitter, never below
//! 10 ms, giving up after 120 s (`processing-timeout`, `poll-interval-clamped`). The state in the
//! finalize answer counts as the first check, so a File that is `ACTIVE` at once costs no
//! `files.get` at all.

use std::time::Duration;

use rand::Rng;

use crate::{
    client::Client,
    error::{Error, Result},
    types::{File, FileState},
};

/// Polling parameters, named and defaulted as pollux's `upload_and_wait_active` (`timeout_s=120.0,
/// poll_s=2.0, max_poll_s=10.0, backoff_factor=1.5, jitter_s=0.2, cleanup_on_timeout=False`;
/// `docs/gemini-protocol.md`). All durations are wall-clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// Total time allowed before [`Error::NotActiveInTime`] (120 s).
    pub timeout: Duration,
    /// Delay before the first `files.get` (2 s).
    pub poll: Duration,
    /// Cap on one delay (10 s).
    pub max_poll: Duration,
    /// Multiplier between delays (1.5); values below 1 count as 1.
    pub backoff_factor: f32,
    /// Uniform random extra added to each delay, `0..jitter` (0.2 s; zero disables it).
    pub jitter: Duration,
    /// Delete the File, exactly once, when it times out or reaches `FAILED`, so nothing
    /// half-made lingers upstream (false, as in the seed).
    pub cleanup_on_timeout: bool,
}

/// Floor of every delay, 10 ms (pollux clamps to 0.01 s).
pub const MIN_DELAY: Duration = Duration::from_millis(10);

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            timeout: Duration::from_secs(120),
            poll: Duration::from_secs(2),
            max_poll: Duration::from_secs(10),
            backoff_factor: 1.5,
            jitter: Duration::from_millis(200),
            cleanup_on_timeout: false,
        }
    }
}

impl PollPolicy {
    /// The delays before each poll, without jitter: `poll, poll·f, poll·f², …` capped at
    /// `max_poll`, each at least [`MIN_DELAY`] (a backon exponential schedule).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        let factor = if self.backoff_factor.is_finite() && self.backoff_factor >= 1.0 {
            self.backoff_factor
        } else {
            1.0
        };
        let schedule = backon::ExponentialBuilder::default()
            .with_min_delay(self.poll)
            .with_max_delay(self.max_poll.max(MIN_DELAY))
            .with_factor(factor)
            .without_max_times();
        backon::BackoffBuilder::build(schedule).map(|d| d.min(self.max_poll).max(MIN_DELAY))
    }

    /// `delay` plus a uniform `0..jitter`.
    pub fn jittered(&self, delay: Duration) -> Duration {
        if self.jitter.is_zero() {
            return delay;
        }
        delay + rand::rng().random_range(Duration::ZERO..self.jitter)
    }
}

impl Client {
    /// Polls `files.get` until `file` is `ACTIVE`, following `policy`.
    ///
    /// `file` is the File as last seen (usually the finalize answer): if it is already
    /// `ACTIVE` it is returned without a request.
    ///
    /// # Errors
    /// [`Error::UploadFailed`] when the File reaches `FAILED` (or another terminal state);
    /// [`Error::NotActiveInTime`] after `policy.timeout`; errors of [`Client::get_file`].
    /// On the first two, the File is deleted (once) first when `policy.cleanup_on_timeout`.
    pub async fn wait_active(&self, file: File, policy: &PollPolicy) -> Result<File> {
        let started = tokio::time::Instant::now();
        let deadline = started + policy.timeout;
        let mut delays = policy.delays();
        let mut current = file;
        loop {
            if current.state == FileState::Active {
                return Ok(current);
            }
            if current.state.is_terminal_failure() {
                let err = Error::UploadFailed {
                    name: current.name.clone(),
                    state: current.state.clone(),
                    details: current.error.as_ref().map(|e| e.message.clone()),
                };
                return Err(self.cleanup(&current.name, policy, err).await);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let err =
                    Error::NotActiveInTime { name: current.name.clone(), waited: now - started };
                return Err(self.cleanup(&current.name, policy, err).await);
            }
            let delay = policy.jittered(delays.next().unwrap_or(policy.max_poll));
            tokio::time::sleep(delay.min(deadline - now)).await;
            current = self.get_file(&current.name).await?;
        }
    }

    async fn cleanup(&self, name: &str, policy: &PollPolicy, err: Error) -> Error {
        if policy.cleanup_on_timeout {
            if let Err(e) = self.delete_file(name).await {
                tracing::warn!(file = name, error = %e, "could not delete a File that failed or timed out");
            }
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_matches_pollux() {
        let secs: Vec<f64> =
            PollPolicy::default().delays().take(7).map(|d| d.as_secs_f64()).collect();
        assert_eq!(secs, vec![2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0]);
    }

    #[test]
    fn delays_never_drop_below_ten_ms() {
        let policy = PollPolicy {
            poll: Duration::ZERO,
            backoff_factor: 0.0,
            max_poll: Duration::ZERO,
            ..PollPolicy::default()
        };
        assert!(policy.delays().take(5).all(|d| d >= MIN_DELAY));
        let no_jitter = PollPolicy { jitter: Duration::ZERO, ..PollPolicy::default() };
        assert_eq!(no_jitter.jittered(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
