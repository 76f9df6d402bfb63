//! `gemini-emulator`: serve the Gemini emulator on a socket.
//!
//! ```text
//! gemini-emulator --listen 127.0.0.1:8089 --processing-ms 300 [--process-every-file] --file-ttl-secs 172800 \
//!     [--processing-for video/=3s] [--api-key K] [--gateway-key G --gateway-prefix /gemini] [--control]
//! ```

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use gemini_emulator::{Emulator, EmulatorConfig, GatewayConfig};

/// A local emulator of the Gemini Files API and generateContent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "GEMINI_EMULATOR_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Milliseconds a processed File stays PROCESSING before it is ACTIVE (videos, files of
    /// `--large-file-bytes` or more, every File with `--process-every-file`).
    #[arg(long, default_value_t = 300)]
    processing_ms: u64,
    /// Files of at least this many bytes are processed; smaller ones (but videos) are ACTIVE
    /// in the finalize answer, as on Gemini.
    #[arg(long, default_value_t = 64 << 20)]
    large_file_bytes: u64,
    /// Process every File, whatever its type and size (for tests of the PROCESSING wait).
    #[arg(long)]
    process_every_file: bool,
    /// Processing time for MIME types starting with PREFIX, as `PREFIX=DURATION`
    /// (humantime), e.g. `video/=3s`; repeatable. Default: `video/=3s`.
    #[arg(long = "processing-for", value_parser = parse_prefix_duration)]
    processing_for: Vec<(String, Duration)>,
    /// Seconds a File lives (Gemini: 48 h).
    #[arg(long, default_value_t = 48 * 3600)]
    file_ttl_secs: u64,
    /// Accept only this API key (otherwise any non-empty key is accepted).
    #[arg(long, env = "GEMINI_EMULATOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Milliseconds between two chunks of a streamed answer.
    #[arg(long, default_value_t = 40)]
    chunk_delay_ms: u64,
    /// Gateway mode: also serve everything under --gateway-prefix, guarded by this
    /// `Ocp-Apim-Subscription-Key`.
    #[arg(
        long,
        env = "GEMINI_EMULATOR_GATEWAY_KEY",
        hide_env_values = true,
        requires = "gateway_prefix"
    )]
    gateway_key: Option<String>,
    /// Path prefix of gateway mode, e.g. `/gemini`.
    #[arg(long, requires = "gateway_key", value_parser = parse_prefix)]
    gateway_prefix: Option<String>,
    /// Serve the test control surface under /_emulator (faults, clock, request log).
    #[arg(long)]
    control: bool,
}

fn parse_prefix_duration(text: &str) -> Result<(String, Duration), String> {
    let (prefix, duration) =
        text.split_once('=').ok_or("expected PREFIX=DURATION, e.g. video/=3s")?;
    let duration = humantime::parse_duration(duration).map_err(|e| e.to_string())?;
    Ok((prefix.to_string(), duration))
}

fn parse_prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() || trimmed.contains(['?', '#', '{', '}']) {
        return Err("expected a path prefix such as /gemini".into());
    }
    Ok(format!("/{trimmed}"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let defaults = EmulatorConfig::default();
    let config = EmulatorConfig {
        processing: Duration::from_millis(cli.processing_ms),
        processing_by_prefix: if cli.processing_for.is_empty() {
            defaults.processing_by_prefix
        } else {
            cli.processing_for
        },
        large_file_bytes: cli.large_file_bytes,
        process_every_file: cli.process_every_file,
        file_ttl: Duration::from_secs(cli.file_ttl_secs),
        api_key: cli.api_key,
        chunk_delay: Duration::from_millis(cli.chunk_delay_ms),
        gateway: cli
            .gateway_key
            .zip(cli.gateway_prefix)
            .map(|(key, prefix)| GatewayConfig { key, prefix }),
        control: cli.control,
    };
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        gateway = config.gateway.as_ref().map(|g| g.prefix.as_str()),
        control = config.control,
        "gemini emulator listening"
    );
    let router = Emulator::new(config).router();
    gemini_emulator::serve::serve(listener, router, stop()).await;
    Ok(())
}

/// Ctrl-C or SIGTERM (a container's stop, even as its PID 1).
async fn stop() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, () = terminate => {} }
}
