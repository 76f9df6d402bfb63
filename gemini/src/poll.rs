//! Waiting for a File to become `ACTIVE`.
//!
//! The schedule follows pollux's `upload_and_wait_active` (seed `000_b0a50dda6e661be3.txt`):
//! first poll after 2 s, delays ×1.5 up to 10 s, plus up to 0.2 s of jitter, never below
//! 10 ms, giving up after 120 s. The state in the finalize answer counts as the first check,
//! so a File that is `ACTIVE` at once costs no `files.get` at all.

use std::time::Duration;

use rand::Rng;

use crate::{
    client::Client,
    error::{Error, Result},
    types::{File, FileState},
};

/// Polling parameters. All durations are wall-clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// Delay before the first `files.get` (2 s).
    pub first_delay: Duration,
    /// Multiplier between delays (1.5).
    pub factor: f64,
    /// Cap on one delay (10 s).
    pub max_delay: Duration,
    /// Uniform random extra added to each delay, `0..jitter` (0.2 s; zero disables it).
    pub jitter: Duration,
    /// Total time allowed before [`Error::NotActiveInTime`] (120 s).
    pub timeout: Duration,
    /// Delete the File when it fails or times out, so nothing half-made lingers upstream.
    pub cleanup_on_failure: bool,
}

/// Floor of every delay, 10 ms (pollux clamps to 0.01 s).
pub const MIN_DELAY: Duration = Duration::from_millis(10);

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_secs(2),
            factor: 1.5,
            max_delay: Duration::from_secs(10),
            jitter: Duration::from_millis(200),
            timeout: Duration::from_secs(120),
            cleanup_on_failure: true,
        }
    }
}

impl PollPolicy {
    /// The delays before each poll, without jitter: `first, first·f, first·f², …` capped at
    /// `max_delay`, each at least [`MIN_DELAY`].
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        let factor = if self.factor.is_finite() && self.factor >= 1.0 { self.factor } else { 1.0 };
        std::iter::successors(Some(self.first_delay), move |d| Some(d.mul_f64(factor)))
            .map(|d| d.min(self.max_delay).max(MIN_DELAY))
    }

    fn jittered(&self, delay: Duration) -> Duration {
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
    /// On the first two, the File is deleted first when `policy.cleanup_on_failure`.
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
                let err = Error::NotActiveInTime { name: current.name.clone(), waited: now - started };
                return Err(self.cleanup(&current.name, policy, err).await);
            }
            let delay = policy.jittered(delays.next().unwrap_or(policy.max_delay));
            tokio::time::sleep(delay.min(deadline - now)).await;
            current = self.get_file(&current.name).await?;
        }
    }

    async fn cleanup(&self, name: &str, policy: &PollPolicy, err: Error) -> Error {
        if policy.cleanup_on_failure {
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
    fn default_schedule_matches_the_seed() {
        let secs: Vec<f64> = PollPolicy::default().delays().take(7).map(|d| d.as_secs_f64()).collect();
        assert_eq!(secs, vec![2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0]);
    }

    #[test]
    fn delays_never_drop_below_ten_ms() {
        let policy = PollPolicy { first_delay: Duration::ZERO, factor: 0.0, ..PollPolicy::default() };
        assert!(policy.delays().take(5).all(|d| d >= MIN_DELAY));
        let no_jitter = PollPolicy { jitter: Duration::ZERO, ..PollPolicy::default() };
        assert_eq!(no_jitter.jittered(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
