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

/// Waits until `url` answers (30 s at most).
pub async fn up(url: &str) {
    for _ in 0..600 {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

/// A `parley` on 127.0.0.1:`port` keeping its data in `data`, with `args` and `envs`, quiet
/// (warnings only), once it answers `/healthz`.
pub async fn parley(
    port: u16,
    data: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Killed {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("LEPTOS_OUTPUT_NAME", "parley")
        .env("PARLEY_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("parley starts");
    let killed = Killed(child);
    up(&format!("http://127.0.0.1:{port}/healthz")).await;
    killed
}
