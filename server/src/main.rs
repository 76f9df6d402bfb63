//! `parley`: serves the Parley chat site.
//!
//! With `GEMINI_API_KEY` set it talks to Gemini at `GEMINI_BASE_URL`; without it, it starts
//! the built-in Gemini emulator on a loopback port and the page shows an `Offline demo`
//! banner. See `parley --help` for every option; `parley registry copy --from … --to …`
//! moves a registry into another database; `parley accounts list|disable|enable|delete`
//! manages the accounts of people who signed in; `parley usage` reports what was spent on the
//! site's key; `parley healthcheck` asks a running server for `/healthz` (containers).

use std::process::ExitCode;

use clap::Parser;
use parley::{
    config::{Command, RegistryCommand},
    error::ServerError,
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = parley::config::Config::parse();
    parley::observe::init_logging(config.log_format);
    let outcome = match config.command.take() {
        Some(Command::Registry(RegistryCommand::Copy { from, to })) => {
            parley::server::copy_registry(&from, &to).await.map(|copied| println!("{copied}"))
        }
        Some(Command::Accounts(command)) => parley::accounts::run(&config, command).await,
        Some(Command::Usage(args)) => parley::budgets::usage::run(&config, &args).await,
        Some(Command::Healthcheck) => parley::health::probe(config.listen).await,
        None => parley::server::run(config).await,
    };
    match outcome {
        Ok(()) | Err(ServerError::Stopped) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "parley stopped");
            eprintln!("parley: {e}");
            ExitCode::FAILURE
        }
    }
}
