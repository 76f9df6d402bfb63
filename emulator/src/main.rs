//! `gemini-emulator`: serve the Gemini emulator on a socket.
//!
//! ```text
//! gemini-emulator --listen 127.0.0.1:8089 --processing-ms 300 --file-ttl-secs 172800
//! ```

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use gemini_emulator::{Emulator, EmulatorConfig};

/// A local emulator of the Gemini Files API and generateContent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "GEMINI_EMULATOR_LISTEN", default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Milliseconds a new File stays PROCESSING before it is ACTIVE.
    #[arg(long, default_value_t = 300)]
    processing_ms: u64,
    /// Seconds a File lives (Gemini: 48 h).
    #[arg(long, default_value_t = 48 * 3600)]
    file_ttl_secs: u64,
    /// Accept only this API key (otherwise any non-empty key is accepted).
    #[arg(long, env = "GEMINI_EMULATOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Milliseconds between two chunks of a streamed answer.
    #[arg(long, default_value_t = 40)]
    chunk_delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let config = EmulatorConfig {
        processing: Duration::from_millis(cli.processing_ms),
        file_ttl: Duration::from_secs(cli.file_ttl_secs),
        api_key: cli.api_key,
        chunk_delay: Duration::from_millis(cli.chunk_delay_ms),
    };
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "gemini emulator listening");
    axum::serve(listener, Emulator::new(config).router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
