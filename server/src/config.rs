//! Command-line flags, each with an environment fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;

use crate::error::ServerError;
use url::Url;

/// Parley: chat with Google Gemini about your files.
///
/// Without GEMINI_API_KEY the site runs on the built-in Gemini emulator ("Offline demo").
#[derive(Debug, Parser)]
#[command(name = "parley", version, about)]
pub struct Config {
    /// Signing in: OpenID Connect providers, a trusted proxy's header, who may sign in.
    #[command(flatten)]
    pub sign_in: crate::auth::SignInArgs,

    /// Budgets on the site's key: per anonymous session, per account, for the whole site.
    #[command(flatten)]
    pub budgets: crate::budgets::BudgetArgs,

    /// Address to serve the site on.
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Gemini API key; sent only as `x-goog-api-key`, never to the browser or the logs.
    /// Without one, the built-in emulator answers.
    #[arg(long = "gemini-api-key", env = "GEMINI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Gemini's base URL (a path prefix is kept).
    #[arg(
        long = "gemini-base-url",
        env = "GEMINI_BASE_URL",
        default_value = DEFAULT_BASE_URL
    )]
    pub base_url: Url,

    /// An API gateway in front of Gemini (Azure API Management), e.g.
    /// `https://<name>.azure-api.net/gemini`. With it (and --gateway-key) Parley talks only to
    /// the gateway: uploads start at `{url}/files`, everything else is under `{url}/v1beta`.
    #[arg(long = "gateway-url", env = "PARLEY_GATEWAY_URL", requires = "gateway_key")]
    pub gateway_url: Option<Url>,

    /// The gateway's subscription key, sent as `Ocp-Apim-Subscription-Key`; never to the
    /// browser or the logs.
    #[arg(
        long = "gateway-key",
        env = "PARLEY_GATEWAY_KEY",
        hide_env_values = true,
        requires = "gateway_url"
    )]
    pub gateway_key: Option<String>,

    /// Model that answers by default.
    #[arg(long, env = "PARLEY_MODEL", default_value = "gemini-2.5-flash")]
    pub model: String,

    /// Models a person may pick for a conversation, comma-separated (the `--model` is always
    /// one of them, first); empty: the `--model` alone. An entry may carry a weight after `*`,
    /// the chat requests one request with it counts as: `gemini-2.5-flash,gemini-2.5-pro*4`.
    #[arg(long, env = "PARLEY_MODELS", value_delimiter = ',', default_value = "")]
    pub models: Vec<parley_chat::models::ModelEntry>,

    /// Prompt tokens a request may send before its oldest turns are summarized: a count
    /// (`200000`) or a share of the model's `inputTokenLimit` (`80%`); `off` never summarizes.
    #[arg(long, env = "PARLEY_CONTEXT_BUDGET", default_value = "80%")]
    pub context_budget: parley_chat::models::ContextBudget,

    /// Context caching of a conversation's files: `off`, or `opt-in` (a "Cache files" switch
    /// per conversation).
    #[arg(long, env = "PARLEY_CONTEXT_CACHING", value_enum, default_value = "off")]
    pub context_caching: ContextCaching,

    /// How long a context cache lives after its last use (humantime); each use extends it.
    #[arg(long, env = "PARLEY_CONTEXT_CACHE_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub context_cache_ttl: Duration,

    /// Folder with the built site (`pkg/` with the wasm, JS and CSS); defaults to
    /// LEPTOS_SITE_ROOT, else `target/site`.
    #[arg(long, env = "PARLEY_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// How long an upload may stay PROCESSING before it is given up (humantime: `90s`, `5m`).
    #[arg(long, env = "PARLEY_UPLOAD_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub upload_timeout: Duration,

    /// How long a File of 64 MiB or more stays PROCESSING in the built-in emulator (humantime).
    /// As on Gemini, smaller documents, images and audio are ACTIVE in the finalize answer and
    /// videos process for 3 s.
    #[arg(long, env = "PARLEY_EMULATOR_PROCESSING", default_value = "300ms", value_parser = humantime::parse_duration)]
    pub emulator_processing: Duration,

    /// Folder for Parley's own data: the file registry (`parley.sqlite3`) and the retained
    /// originals (`originals/`).
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// A File counts as expired this long before its `expirationTime` (humantime), so that
    /// it is never sent just as Gemini deletes it.
    #[arg(long, env = "PARLEY_EXPIRY_MARGIN", default_value = "10m", value_parser = humantime::parse_duration)]
    pub expiry_margin: Duration,

    /// Where retained originals are kept: `file://PATH` (default `{data dir}/originals`) or
    /// `s3://bucket/prefix` on an S3-compatible store shared by replicas, configured by
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` (MinIO, Ceph,
    /// R2, …) and `AWS_ALLOW_HTTP`.
    #[arg(long, env = "PARLEY_ORIGINALS_URL")]
    pub originals_url: Option<String>,

    /// How long the original bytes of an upload are kept for re-uploading the File once Gemini
    /// has deleted it (humantime: `7d`, `12h`); `0` disables retention.
    #[arg(long, env = "PARLEY_RETAIN_FOR", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retain_for: Duration,

    /// Most bytes of originals kept in all (`10GiB`, `500MB`, or a number of bytes); the
    /// oldest are evicted first. `0` disables retention.
    #[arg(long, env = "PARLEY_RETAIN_MAX_BYTES", default_value = "10GiB", value_parser = parse_bytes)]
    pub retain_max_bytes: u64,

    /// Largest file a person may upload (`2GiB`, `100MB`, or bytes); never above Gemini's 2 GiB.
    /// Larger uploads are refused with 413 before their bytes are read.
    #[arg(long, env = "PARLEY_MAX_FILE_BYTES", default_value = "2GiB", value_parser = parse_bytes)]
    pub max_file_bytes: u64,

    /// Memory for uploads relayed to Gemini while they arrive (`256MiB`, or bytes; `0`: none):
    /// each holds one 8 MiB chunk until Gemini has it. An upload that finds none free is
    /// stored whole first and sent after, as fast for the person but not overlapped.
    #[arg(long, env = "PARLEY_RELAY_MEMORY", default_value = "256MiB", value_parser = parse_bytes)]
    pub relay_memory: u64,

    /// Where the file registry is: `sqlite://PATH` (default `{data dir}/parley.sqlite3`) or
    /// `postgres://user:pass@host:port/db` (`?sslmode=require` for TLS), which several replicas
    /// share. Falls back to `DATABASE_URL`. Never logged (it may hold a password).
    #[arg(long, env = "PARLEY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// How long to wait at start-up for a PostgreSQL database that cannot be reached yet (one
    /// started beside the site, say), trying again with backoff; meanwhile `/healthz` answers
    /// 200 and `/readyz` 503 `{"database": "waiting"}`. `0s`: give up at once.
    #[arg(long, env = "PARLEY_DATABASE_WAIT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub database_wait: Duration,

    /// The key that signs session cookies (at least 32 bytes); without it one is generated
    /// into `{data dir}/session.key`. Required with a PostgreSQL database: every replica must
    /// sign with the same key. Never logged.
    #[arg(long, env = "PARLEY_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,

    /// Chat requests a browser session may make (`30/min`, `5/s`, `100/h`, `off`); one client
    /// address may make four times as many. Past it: 429 with the wait.
    #[arg(long, env = "PARLEY_RATE_CHAT", default_value = "30/min")]
    pub rate_chat: crate::limits::Rate,

    /// Uploads a browser session may make (same form; an address four times as many).
    #[arg(long, env = "PARLEY_RATE_UPLOAD", default_value = "60/min")]
    pub rate_upload: crate::limits::Rate,

    /// Calls to the Files view's server functions (`check_files`, `list_uploads`,
    /// `delete_upload`) a browser session may make (same form; an address four times as many).
    #[arg(long, env = "PARLEY_RATE_FILES", default_value = "60/min")]
    pub rate_files: crate::limits::Rate,

    /// Calls to the sync server functions (`sync_pull`, `sync_push`, …: a signed-in person's
    /// conversations between devices) a browser session may make (same form; an address four
    /// times as many).
    #[arg(long, env = "PARLEY_RATE_SYNC", default_value = "600/min")]
    pub rate_sync: crate::limits::Rate,

    /// Requests for shared links (`/s/<token>`: the page, its previews, its card) a client
    /// address may make (same form); no session is involved.
    #[arg(long, env = "PARLEY_RATE_SHARE_VIEWS", default_value = "300/min")]
    pub rate_share_views: crate::limits::Rate,

    /// What a signed-in account's conversations may take on the server (`1GiB`, `500MB`):
    /// past it, new conversations and messages are refused with a sentence (the browser keeps
    /// them and syncs once there is room).
    #[arg(long, env = "PARLEY_STORAGE_PER_ACCOUNT", default_value = "1GiB", value_parser = parse_bytes)]
    pub storage_per_account: u64,

    /// Who may open a conversation shared by link: `link` (anyone with the link),
    /// `signed-in` (only signed-in people), or `off` (no `Share` button; the routes refuse).
    #[arg(long, env = "PARLEY_SHARING", default_value = "link")]
    pub sharing: app::share::Sharing,

    /// How long a shared link answers after it was last shared (humantime: `30d`, `12h`; `0`
    /// never expires).
    #[arg(long, env = "PARLEY_SHARE_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub share_ttl: std::time::Duration,

    /// Upload bytes a browser session may send per hour (`10GiB`, `500MB`; `0` for no quota);
    /// one client address may send four times as much. Bytes are counted as they arrive.
    #[arg(long, env = "PARLEY_UPLOAD_BYTES_PER_HOUR", default_value = "10GiB", value_parser = parse_bytes)]
    pub upload_bytes_per_hour: u64,

    /// Take the client address for rate limits from `X-Forwarded-For` (only behind a reverse
    /// proxy that sets it).
    #[arg(long, env = "PARLEY_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Calls to Gemini in flight at once (answers streaming, uploads processing); more wait up
    /// to --upstream-wait, then get 503.
    #[arg(long, env = "PARLEY_UPSTREAM_CONCURRENCY", default_value_t = 64)]
    pub upstream_concurrency: usize,

    /// Calls to Gemini one browser session may have in flight at once; more wait their turn.
    #[arg(long, env = "PARLEY_UPSTREAM_PER_SESSION", default_value_t = 8)]
    pub upstream_per_session: usize,

    /// Calls to Gemini one client address may have in flight at once; more wait their turn. A
    /// freed slot goes to the waiting address holding the fewest.
    #[arg(long, env = "PARLEY_UPSTREAM_PER_ADDRESS", default_value_t = 16)]
    pub upstream_per_address: usize,

    /// How long a request waits for a free slot towards Gemini before it is told the server is
    /// busy (503) (humantime).
    #[arg(long, env = "PARLEY_UPSTREAM_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_wait: Duration,

    /// Longest silence allowed within an answer from Gemini (a streamed answer included)
    /// before the call is retried or given up (humantime).
    #[arg(long, env = "PARLEY_UPSTREAM_READ_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub upstream_read_timeout: Duration,

    /// Retries of a call to Gemini that failed in a way that may pass (429, 5xx, a dropped
    /// connection, a timeout), after 1 s, 2 s, 4 s, … with jitter; `0` never retries.
    #[arg(long, env = "PARLEY_UPSTREAM_RETRIES", default_value_t = 4)]
    pub upstream_retries: usize,

    /// On SIGTERM / Ctrl-C, how long requests in flight (an answer streaming, an upload
    /// processing) may take to finish before they are cut off (humantime). No new request is
    /// taken meanwhile.
    #[arg(long, env = "PARLEY_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// How long a connection may take to send a request's headers, and how long an idle
    /// connection is kept open (humantime).
    #[arg(long, env = "PARLEY_HEADER_READ_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a response may wait for the client to read it before the connection is closed
    /// (humantime).
    #[arg(long, env = "PARLEY_WRITE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,

    /// Slowest a request body may arrive, per second (`1KiB`, `0` for no minimum), measured over
    /// windows of --header-read-timeout spent waiting for it; a slower body is cut off (408).
    #[arg(long, env = "PARLEY_MIN_BODY_RATE", default_value = "1KiB", value_parser = parse_rate_bytes)]
    pub min_body_rate: u64,

    /// Connections one client address may hold open at once (`0` for no cap). Not applied with
    /// --trust-proxy: every connection then comes from the proxy.
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: usize,

    /// Connections held open at once in all; `0` for as many as the open-descriptor limit
    /// allows (raised to its hard limit at start-up).
    #[arg(long, env = "PARLEY_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// A Gemini emulator elsewhere (`http://emulator:8090`), for the Offline demo: used instead
    /// of the built-in one only while no GEMINI_API_KEY (or gateway) is set — replicas share
    /// it, and setting a key later needs no other change.
    #[arg(long, env = "PARLEY_EMULATOR_URL")]
    pub emulator_url: Option<Url>,

    /// Address of the built-in emulator (a random loopback port by default).
    #[arg(long, env = "PARLEY_EMULATOR_LISTEN", default_value = "127.0.0.1:0")]
    pub emulator_listen: SocketAddr,

    /// The built-in emulator's API key, for other clients of it (an SDK pointed at
    /// --emulator-listen); random when unset. Never logged.
    #[arg(long, env = "PARLEY_EMULATOR_API_KEY", hide_env_values = true)]
    pub emulator_api_key: Option<String>,

    /// Serve the built-in emulator's test control surface (`/_emulator`: faults, clock,
    /// scripted answers, request log) at its address. For tests only: the request log holds
    /// what people sent.
    #[arg(long, env = "PARLEY_EMULATOR_CONTROL", default_value_t = false)]
    pub emulator_control: bool,

    /// Log format on stderr: `text` (human) or `json` (one object a line, with the request id
    /// of the request each line belongs to).
    #[arg(long, env = "PARLEY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::observe::LogFormat,

    /// Serve `GET /metrics` (Prometheus) on this address (e.g. `127.0.0.1:9464`, out of the
    /// public's reach). Without it, and without `--metrics-on-site`, there is no `/metrics`.
    #[arg(long, env = "PARLEY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Also serve `GET /metrics` on the site's own listener, to anyone who can reach the site.
    /// Off by default: some metrics (retained originals, their bytes) move when anyone uploads,
    /// which tells a visitor whether content was already there.
    #[arg(long, env = "PARLEY_METRICS_ON_SITE", default_value_t = false)]
    pub metrics_on_site: bool,

    /// A maintenance command instead of serving the site.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `parley`'s maintenance commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The file registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Accounts of people who signed in.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// What was spent on the site's key: tokens and dollars, from the ledger.
    Usage(UsageArgs),
    /// Asks the server at --listen for `/healthz` (a container's `HEALTHCHECK`): exit status
    /// 0 when it answers 200 within 3 s, else 1.
    Healthcheck,
}

/// `parley usage [--since 7d] [--by day|model|account] [--json]`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// How far back, from the start of today (UTC): `7d`, `30d`, `24h`.
    #[arg(long, default_value = "7d")]
    pub since: humantime::Duration,
    /// How the ledger is summed.
    #[arg(long, value_enum, default_value = "day")]
    pub by: UsageBy,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How `parley usage` sums the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UsageBy {
    /// The whole site, per UTC day.
    Day,
    /// The whole site, per model.
    Model,
    /// Per signed-in account, the most spent first.
    Account,
}

/// `parley accounts …`: each takes effect on every replica at its next request.
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Lists every account: id, email, issuer, when it was made and last signed in, its live
    /// sign-ins, and whether it is disabled or an operator.
    List,
    /// Ends the account's sign-ins and refuses new ones.
    Disable {
        /// The account's email (when only one account has it) or id.
        account: String,
    },
    /// Lets a disabled account sign in again.
    Enable {
        /// The account's email (when only one account has it) or id.
        account: String,
    },
    /// Deletes the account: its Files on Gemini, their retained originals, its context caches,
    /// its sign-ins and its records.
    Delete {
        /// The account's email (when only one account has it) or id.
        account: String,
    },
}

/// `parley registry …`.
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Copies every File record and every retained original's entry of one registry into
    /// another — a single server's SQLite into the PostgreSQL its replicas will share — and
    /// says how many. Running it again changes nothing more. The originals' bytes are not
    /// copied: their keys (`sha256/ab/<sha256>`) are the same in every store, so any sync tool
    /// moves them (`aws s3 sync data/originals s3://bucket/prefix`).
    Copy {
        /// The registry to read: `sqlite://PATH` or `postgres://…`.
        #[arg(long)]
        from: String,
        /// The registry to write (created and migrated if needed).
        #[arg(long)]
        to: String,
    },
}

/// Bytes per second: a byte count, optionally followed by `/s` (`1KiB`, `1KiB/s`).
fn parse_rate_bytes(text: &str) -> Result<u64, String> {
    parse_bytes(text.trim().trim_end_matches("/s"))
}

/// Gemini's address.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// A byte count: a plain number of bytes, or with a unit (`10GiB`, `500 MB`).
fn parse_bytes(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("not a byte size: {e}"))
}

/// `PARLEY_CONTEXT_CACHING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextCaching {
    /// Never cache.
    Off,
    /// Offer "Cache files" per conversation, off until switched on.
    OptIn,
}

impl Config {
    /// The context-caching policy, `None` when off.
    pub fn caching(&self) -> Option<parley_chat::caching::CachePolicy> {
        (self.context_caching == ContextCaching::OptIn)
            .then(|| parley_chat::caching::CachePolicy::new(self.context_cache_ttl))
    }

    /// The rate limits and quotas, from `--rate-chat`, `--rate-upload`, `--rate-files` and
    /// `--upload-bytes-per-hour`.
    pub fn limits(&self) -> crate::limits::LimitsConfig {
        crate::limits::LimitsConfig {
            chat: self.rate_chat,
            upload: self.rate_upload,
            files: self.rate_files,
            sync: self.rate_sync,
            share_views: self.rate_share_views,
            upload_bytes_per_hour: self.upload_bytes_per_hour,
        }
    }

    /// How connections are bounded, for a process allowed `descriptors` open descriptors.
    pub fn connection_limits(&self, descriptors: u64) -> crate::listen::ConnectionLimits {
        crate::listen::ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            write_timeout: self.write_timeout,
            per_address: if self.trust_proxy { 0 } else { self.max_connections_per_address },
            total: match self.max_connections {
                0 => crate::listen::connections_for(descriptors),
                n => n,
            },
        }
    }

    /// The slots towards Gemini and how they are shared.
    pub fn slot_caps(&self) -> parley_chat::slots::SlotCaps {
        parley_chat::slots::SlotCaps {
            total: self.upstream_concurrency,
            per_session: self.upstream_per_session,
            per_address: self.upstream_per_address,
        }
    }

    /// What to retain of uploads, from `--retain-for` and `--retain-max-bytes`.
    pub fn retain_policy(&self) -> parley_files::RetainPolicy {
        parley_files::RetainPolicy { retain_for: self.retain_for, max_bytes: self.retain_max_bytes }
    }

    /// The registry's database: `--database-url`, else `DATABASE_URL`, else
    /// `sqlite://{data dir}/parley.sqlite3`.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a URL that is neither `sqlite://` nor `postgres://`.
    pub fn database(&self) -> Result<parley_store::DatabaseUrl, ServerError> {
        let url = self
            .database_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty()));
        match url {
            Some(url) => url.parse().map_err(|e| {
                ServerError::Config(format!("PARLEY_DATABASE_URL (or DATABASE_URL): {e}"))
            }),
            None => Ok(parley_store::DatabaseUrl::Sqlite(self.data_dir.join("parley.sqlite3"))),
        }
    }

    /// Where retained originals are kept: `--originals-url`, else `file://{data dir}/originals`.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a URL that is neither `file://` nor `s3://`.
    pub fn originals(&self) -> Result<parley_files::originals::OriginalsUrl, ServerError> {
        match self.originals_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                url.parse().map_err(|e| ServerError::Config(format!("PARLEY_ORIGINALS_URL: {e}")))
            }
            None => {
                Ok(parley_files::originals::OriginalsUrl::File(self.data_dir.join("originals")))
            }
        }
    }

    /// True when `GEMINI_BASE_URL` names somewhere other than Google (an emulator, say).
    pub fn custom_base_url(&self) -> bool {
        self.base_url.as_str().trim_end_matches('/') != DEFAULT_BASE_URL
    }

    /// The emulator elsewhere that the Offline demo talks to, when there is no key: the
    /// `--emulator-url`, else `GEMINI_BASE_URL` when it names somewhere other than Google.
    pub fn shared_emulator(&self) -> Option<Url> {
        self.emulator_url.clone().or_else(|| self.custom_base_url().then(|| self.base_url.clone()))
    }

    /// Refuses what cannot work: with a shared (PostgreSQL) database, sessions signed by a
    /// key of this process only (every replica must share `PARLEY_SESSION_SECRET`), and the
    /// built-in emulator (each replica would have its own Files), unless `--emulator-url` (or
    /// `GEMINI_BASE_URL`) names one emulator they share.
    ///
    /// # Errors
    /// [`ServerError::Config`] saying what to set.
    pub fn check(&self) -> Result<(), ServerError> {
        if let Some(heavy) =
            self.models.iter().find(|m| self.rate_chat.count > 0 && m.weight > self.rate_chat.count)
        {
            return Err(ServerError::Config(format!(
                "PARLEY_MODELS gives {} the weight {}, more chat requests than PARLEY_RATE_CHAT \
                 allows a session at once ({}): it could never be used",
                heavy.id, heavy.weight, self.rate_chat.count
            )));
        }
        let originals = self.originals()?;
        if !self.database()?.is_shared() {
            return Ok(());
        }
        if !originals.is_shared() {
            tracing::warn!(
                "a shared database with originals on a local folder: each replica keeps its own \
                 (set PARLEY_ORIGINALS_URL=s3://… so that any replica can upload an expired File again)"
            );
        }
        if self.session_secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(ServerError::Config(
                "PARLEY_SESSION_SECRET is required with a PostgreSQL database (PARLEY_DATABASE_URL): \
                 every replica must sign sessions with the same key"
                    .into(),
            ));
        }
        if self.api_key().is_none() && self.gateway().is_none() && self.shared_emulator().is_none()
        {
            return Err(ServerError::Config(
                "the built-in Gemini emulator (no GEMINI_API_KEY) cannot be shared by replicas of a \
                 PostgreSQL database: set GEMINI_API_KEY, or PARLEY_EMULATOR_URL to one emulator \
                 they share"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The API key, if a non-blank one is configured.
    pub fn api_key(&self) -> Option<gemini::ApiKey> {
        self.api_key.as_deref().and_then(gemini::ApiKey::new)
    }

    /// The gateway and its subscription key, when both are configured (a blank key counts as
    /// none).
    pub fn gateway(&self) -> Option<(Url, gemini::ApiKey)> {
        let key = self.gateway_key.as_deref().and_then(gemini::ApiKey::new)?;
        Some((self.gateway_url.clone()?, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_durations() {
        let c = Config::try_parse_from(["parley", "--upload-timeout", "90s"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.upload_timeout, Duration::from_secs(90));
        assert_eq!(c.model, "gemini-2.5-flash");
        assert!(c.models.iter().all(|m| m.id.is_empty()), "{:?}", c.models);
        assert_eq!(c.context_caching, ContextCaching::Off);
        let c = Config::try_parse_from([
            "parley",
            "--models",
            "gemini-2.5-pro*4,gemini-2.5-flash-lite",
            "--context-budget",
            "20000",
            "--context-caching",
            "opt-in",
        ])
        .unwrap();
        let models: Vec<(&str, u32)> = c.models.iter().map(|m| (m.id.as_str(), m.weight)).collect();
        assert_eq!(models, [("gemini-2.5-pro", 4), ("gemini-2.5-flash-lite", 1)]);
        assert!(Config::try_parse_from(["parley", "--models", "gemini-2.5-pro*lots"]).is_err());
        let too_heavy = Config::try_parse_from([
            "parley",
            "--models",
            "gemini-2.5-pro*40",
            "--rate-chat",
            "30/min",
        ])
        .unwrap();
        assert!(
            matches!(too_heavy.check(), Err(ServerError::Config(why)) if why.contains("gemini-2.5-pro"))
        );
        assert_eq!(c.context_budget, parley_chat::models::ContextBudget::Tokens(20_000));
        assert!(c.caching().is_some());
        assert!(Config::try_parse_from(["parley", "--context-budget", "lots"]).is_err());
        assert_eq!(
            (c.upstream_wait, c.shutdown_grace),
            (Duration::from_secs(30), Duration::from_secs(30))
        );
        assert!(Config::try_parse_from(["parley", "--upload-timeout", "soon"]).is_err());
    }

    #[test]
    fn the_gateway_needs_url_and_key() {
        let c = Config::try_parse_from([
            "parley",
            "--gateway-url",
            "https://gw.azure-api.net/gemini",
            "--gateway-key",
            "k",
        ])
        .unwrap();
        let (url, key) = c.gateway().unwrap();
        assert_eq!((url.as_str(), key.expose()), ("https://gw.azure-api.net/gemini", "k"));
        assert!(Config::try_parse_from([
            "parley",
            "--gateway-url",
            "https://gw.azure-api.net/gemini"
        ])
        .is_err());
        assert!(Config::try_parse_from(["parley", "--gateway-key", "k"]).is_err());
    }

    #[test]
    fn retention_has_a_duration_and_a_byte_budget() {
        let c = Config::try_parse_from(["parley"]).unwrap();
        assert_eq!(c.retain_for, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.retain_max_bytes, 10 << 30);
        assert!(c.retain_policy().enabled());
        let c =
            Config::try_parse_from(["parley", "--retain-for", "0", "--retain-max-bytes", "500MB"])
                .unwrap();
        assert_eq!(c.retain_max_bytes, 500_000_000);
        assert!(!c.retain_policy().enabled());
        let c = Config::try_parse_from(["parley", "--retain-max-bytes", "0"]).unwrap();
        assert!(!c.retain_policy().enabled());
        assert!(Config::try_parse_from(["parley", "--retain-max-bytes", "lots"]).is_err());
        assert!(Config::try_parse_from(["parley", "--retain-for", "a while"]).is_err());
    }

    #[test]
    fn the_upload_limit_is_a_byte_size() {
        assert_eq!(Config::try_parse_from(["parley"]).unwrap().max_file_bytes, 2 << 30);
        assert_eq!(
            Config::try_parse_from(["parley", "--max-file-bytes", "100MB"]).unwrap().max_file_bytes,
            100_000_000
        );
        assert_eq!(
            Config::try_parse_from(["parley", "--max-file-bytes", "1024"]).unwrap().max_file_bytes,
            1024
        );
    }

    #[test]
    fn connection_limits_have_defaults_and_a_proxy_lifts_the_per_address_cap() {
        let c = Config::try_parse_from(["parley"]).unwrap();
        assert_eq!(
            (c.header_read_timeout, c.write_timeout, c.min_body_rate),
            (Duration::from_secs(20), Duration::from_secs(60), 1024)
        );
        let limits = c.connection_limits(1024);
        assert_eq!((limits.per_address, limits.total), (64, 384));
        let c = Config::try_parse_from([
            "parley",
            "--trust-proxy",
            "--max-connections",
            "10",
            "--min-body-rate",
            "2KiB/s",
        ])
        .unwrap();
        assert_eq!(
            (
                c.connection_limits(1024).per_address,
                c.connection_limits(1024).total,
                c.min_body_rate
            ),
            (0, 10, 2048)
        );
    }

    #[test]
    fn a_shared_database_needs_one_session_secret_and_no_private_emulator() {
        let pg = ["--database-url", "postgres://parley:pw@db:5432/parley"];
        let parse = |extra: &[&str]| {
            let argv: Vec<&str> =
                ["parley"].iter().chain(pg.iter()).chain(extra.iter()).copied().collect();
            Config::try_parse_from(argv).unwrap()
        };
        let secret = ["--session-secret", "0123456789abcdef0123456789abcdef"];
        let no_secret = parse(&["--gemini-api-key", "k"]).check().unwrap_err().to_string();
        assert!(no_secret.contains("PARLEY_SESSION_SECRET"), "{no_secret}");
        let offline =
            parse(&[&secret[..], &["--gemini-api-key="]].concat()).check().unwrap_err().to_string();
        assert!(offline.contains("PARLEY_EMULATOR_URL"), "{offline}");
        let shared_emulator =
            [&secret[..], &["--gemini-api-key=", "--gemini-base-url", "http://emulator:8089"]]
                .concat();
        assert!(parse(&shared_emulator).check().is_ok());
        // The emulator named apart from GEMINI_BASE_URL: used only while there is no key.
        let demo = parse(&[&secret[..], &["--emulator-url", "http://emulator:8090"]].concat());
        assert!(demo.check().is_ok());
        assert_eq!(demo.shared_emulator().unwrap().as_str(), "http://emulator:8090/");
        assert!(parse(&["--gemini-api-key=k"]).shared_emulator().is_none());
        assert!(parse(&[&secret[..], &["--gemini-api-key", "k"]].concat()).check().is_ok());
        assert!(parse(&[]).database().unwrap().is_shared());
        // The embedded default needs none of it.
        let alone = Config::try_parse_from(["parley", "--data-dir", "/srv/parley"]).unwrap();
        assert!(alone.check().is_ok());
        assert_eq!(
            alone.database().unwrap(),
            parley_store::DatabaseUrl::Sqlite("/srv/parley/parley.sqlite3".into())
        );
        let bad = Config::try_parse_from(["parley", "--database-url", "mysql://db"]).unwrap();
        assert!(bad.database().is_err());
    }

    #[test]
    fn a_blank_key_means_offline() {
        let c = Config::try_parse_from(["parley", "--gemini-api-key", "  "]).unwrap();
        assert!(c.api_key().is_none());
    }
}
