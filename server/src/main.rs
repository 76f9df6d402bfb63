//! `parley`: serves the Parley chat site.
//!
//! With `GEMINI_API_KEY` set it talks to Gemini at `GEMINI_BASE_URL`; without it, it starts
//! the built-in Gemini emulator on a loopback port and the page shows an `Offline demo`
//! banner. See `parley --help` for every option.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = parley::config::Config::parse();
    match parley::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "parley stopped");
            eprintln!("parley: {e}");
            ExitCode::FAILURE
        }
    }
}
