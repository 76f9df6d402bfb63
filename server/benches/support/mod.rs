//! What the benchmarks that run `parley` as a process share: a child killed when dropped, a
//! free port, a quantile of timings.

use std::{process::Child, time::Duration};

/// A child process, killed (and waited for) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `q` quantile (0–1, nearest rank) of `sorted` timings, ms.
pub fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((sorted.len().max(1) - 1) as f64 * q).round() as usize;
    sorted.get(rank).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}
