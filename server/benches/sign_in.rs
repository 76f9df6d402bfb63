//! Sign-in: what a signed-in request costs over an anonymous one, and how many sign-ins one
//! replica completes a second. The `parley` binary (release build) on SQLite, with an OpenID
//! provider that answers at once (`end2end/oidc/hostile.mjs --mode good`: a valid RS256 ID
//! token, no login form), so that the figures are Parley's. Prints p50/p99 of `site_info`
//! anonymous and signed in (a signed-in request reads its sign-in row), and sign-ins per
//! second, 8 at a time (each: `/auth/login`, the provider, `/auth/callback` — a flow row
//! taken, the code exchanged, the token verified, the account and sign-in written).
//!
//! ```text
//! cargo bench -p parley --bench sign_in
//! ```

#[path = "support/mod.rs"]
mod support;

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use support::{free_port, parley, quantile, up, Killed};

const REQUESTS: usize = 2000;
const SIGN_INS: usize = 400;
const AT_ONCE: usize = 8;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One whole sign-in of `b` at `site`; true when it signed in.
async fn sign_in(b: &reqwest::Client, site: &str) -> bool {
    let mut url = format!("{site}/auth/login/bench");
    for _ in 0..4 {
        let Ok(res) = b.get(&url).send().await else { return false };
        let Some(to) = res.headers().get("location").and_then(|l| l.to_str().ok()) else {
            return false;
        };
        if url.contains("/auth/callback/") {
            return to == "/";
        }
        url = res.url().join(to).unwrap().to_string();
    }
    false
}

async fn site_info_round(what: &str, b: &reqwest::Client, site: &str) -> f64 {
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let res = b.post(format!("{site}/api/site_info")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let (p50, p99) = (quantile(&times, 0.5), quantile(&times, 0.99));
    println!("site_info {what:>10} ×{REQUESTS}  p50 {p50:>6.3} ms  p99 {p99:>6.3} ms");
    p50
}

#[tokio::main]
async fn main() {
    let end2end = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end");
    if !end2end.join("node_modules/jose").exists() {
        eprintln!("end2end/node_modules is missing (scripts/setup.sh): nothing to measure");
        return;
    }
    let (provider_port, site_port) = (free_port(), free_port());
    let provider = format!("http://127.0.0.1:{provider_port}");
    let site = format!("http://127.0.0.1:{site_port}");
    let _provider = Killed(
        Command::new("node")
            .args(["oidc/hostile.mjs", "--port", &provider_port.to_string(), "--mode", "good"])
            .current_dir(&end2end)
            .stdout(Stdio::null())
            .spawn()
            .expect("node starts"),
    );
    up(&format!("{provider}/jwks")).await;
    let data = tempfile::tempdir().unwrap();
    let _site = parley(
        site_port,
        data.path(),
        &["--gemini-api-key=", "--rate-files", "off", "--max-connections-per-address", "0"],
        &[
            ("PARLEY_PUBLIC_URL", &site),
            ("PARLEY_OIDC_PROVIDERS", "bench"),
            ("PARLEY_OIDC_BENCH_ISSUER", &provider),
            ("PARLEY_OIDC_BENCH_CLIENT_ID", "parley"),
            ("PARLEY_OIDC_BENCH_CLIENT_SECRET", "bench-secret"),
        ],
    )
    .await;

    let guest = client();
    let anonymous = site_info_round("anonymous", &guest, &site).await;
    let member = client();
    assert!(sign_in(&member, &site).await, "the bench's sign-in works");
    let signed_in = site_info_round("signed in", &member, &site).await;
    println!("a signed-in request costs {:+.3} ms at p50", signed_in - anonymous);

    let started = Instant::now();
    let mut done = 0;
    let mut failed = 0;
    let mut batch = tokio::task::JoinSet::new();
    let mut left = SIGN_INS;
    while left > 0 || !batch.is_empty() {
        while left > 0 && batch.len() < AT_ONCE {
            let site = site.clone();
            batch.spawn(async move { sign_in(&client(), &site).await });
            left -= 1;
        }
        if let Some(result) = batch.join_next().await {
            if result.unwrap_or(false) {
                done += 1;
            } else {
                failed += 1;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "sign-ins ×{SIGN_INS} ({AT_ONCE} at once): {:.0} a second, {failed} failed, wall {wall:.2} s",
        done as f64 / wall
    );
}
