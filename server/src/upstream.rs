//! Which Gemini the server talks to: a gateway, Google directly, or the built-in emulator.

use app::model::UpstreamKind;
use gemini_emulator::{EmulatorConfig, RunningEmulator};
use rand::{distr::Alphanumeric, Rng};

use crate::{config::Config, error::ServerError};

/// A connected upstream. Holds the in-process emulator alive when there is one.
pub struct Upstream {
    /// The client to use.
    pub client: gemini::Client,
    /// What the page may say about it.
    pub kind: app::model::UpstreamKind,
    /// The built-in emulator, when no API key is configured.
    pub _emulator: Option<RunningEmulator>,
}

impl Upstream {
    /// A stable, secret-free identity of the credential and endpoint in use: the first 16
    /// hex digits of SHA-256(mode, base URL, key). Files belong to the key that uploaded
    /// them, so the registry keys them by this.
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let config = self.client.config();
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}\n{}\n", config.mode, config.base_url).as_bytes());
        hasher.update(config.api_key.expose().as_bytes());
        hex::encode(&hasher.finalize()[..8])
    }

    /// In order: the gateway when `PARLEY_GATEWAY_URL` and `PARLEY_GATEWAY_KEY` are set;
    /// Gemini at `config.base_url` with the configured key; without either, the emulator at
    /// `--emulator-url`, or at `GEMINI_BASE_URL` when it names one (not Google), else a new
    /// emulator on
    /// `--emulator-listen` with `--emulator-api-key` or a random key of its own.
    pub async fn connect(config: &Config) -> Result<Self, ServerError> {
        if let Some((url, key)) = config.gateway() {
            let host = url.host_str().unwrap_or("gateway").to_string();
            let client = client(config, gemini::ClientConfig::gateway(url, key))?;
            tracing::info!(gateway = %host, model = %config.model, "using Gemini through a gateway");
            return Ok(Upstream { client, kind: UpstreamKind::Gateway { host }, _emulator: None });
        }
        if let Some(key) = config.api_key() {
            let client = client(config, gemini::ClientConfig::new(config.base_url.clone(), key))?;
            tracing::info!(base_url = %config.base_url, model = %config.model, "using Gemini");
            return Ok(Upstream { client, kind: UpstreamKind::Google, _emulator: None });
        }
        let emulator_key =
            config.emulator_api_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if let Some(url) = config.shared_emulator() {
            // An emulator of its own elsewhere (one that replicas share): any key it accepts.
            let key = gemini::ApiKey::new(emulator_key.unwrap_or("parley")).expect("not blank");
            tracing::info!(emulator = %url, "no GEMINI_API_KEY: using the Gemini emulator there (Offline demo)");
            let client = client(config, gemini::ClientConfig::new(url, key))?;
            return Ok(Upstream { client, kind: UpstreamKind::Offline, _emulator: None });
        }
        let key = match emulator_key {
            Some(key) => key.to_string(),
            None => rand::rng().sample_iter(&Alphanumeric).map(char::from).take(32).collect(),
        };
        let emulator_config = EmulatorConfig {
            processing: config.emulator_processing,
            api_key: Some(key.clone()),
            control: config.emulator_control,
            ..EmulatorConfig::default()
        };
        let emulator = gemini_emulator::spawn(config.emulator_listen, emulator_config)
            .await
            .map_err(ServerError::Emulator)?;
        let base_url = emulator.base_url().parse().expect("the emulator's URL parses");
        let key = gemini::ApiKey::new(key).expect("a random key is not blank");
        let client = client(config, gemini::ClientConfig::new(base_url, key))?;
        tracing::info!(emulator = %emulator.base_url(), "no GEMINI_API_KEY: using the built-in Gemini emulator (Offline demo)");
        Ok(Upstream { client, kind: UpstreamKind::Offline, _emulator: Some(emulator) })
    }
}

/// A client for `upstream` with the configured read timeout and retries.
fn client(config: &Config, upstream: gemini::ClientConfig) -> Result<gemini::Client, ServerError> {
    let timeouts =
        gemini::Timeouts { read: config.upstream_read_timeout, ..upstream.timeouts.clone() };
    let retry =
        gemini::RetryPolicy { max_retries: config.upstream_retries, ..upstream.retry.clone() };
    Ok(gemini::Client::new(gemini::ClientConfig { timeouts, retry, ..upstream })?)
}
