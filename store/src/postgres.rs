//! The PostgreSQL backend: one database shared by every `parley` replica, through pools of
//! connections (deadpool-postgres over tokio-postgres; TLS with rustls when the URL asks for it,
//! `sslmode=require`). The statements of each concept live in that concept's module.
//!
//! Migrations are versioned (table `parley_migrations`) and serialized: each start applies the
//! missing ones inside one transaction that first takes a transaction-scoped advisory lock, so
//! replicas starting together on an empty database apply each migration once — the second waits
//! for the first and finds nothing left to do. (sqlx's migrator does the same, but sqlx 0.9 cannot
//! share a build with rusqlite 0.40: both link SQLite.)

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::StoreError;

/// The advisory lock key that serializes migrations (any fixed 64-bit number, the same on
/// every replica).
const MIGRATION_LOCK: i64 = 0x7061_726c_6579_6d67; // "parleymg"

/// The schema, one migration per entry, in order. Never edit one that has shipped: add the
/// next.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE files (
        id BIGSERIAL PRIMARY KEY,
        owner TEXT NOT NULL,
        upstream TEXT NOT NULL,
        name TEXT NOT NULL,
        uri TEXT NOT NULL,
        mime_type TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        display_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        create_time TEXT,
        expiration_time TEXT,
        state TEXT NOT NULL,
        recorded_at_ms BIGINT NOT NULL,
        UNIQUE (owner, uri)
    );
    CREATE INDEX files_by_owner ON files (owner, recorded_at_ms);
    CREATE INDEX files_by_content ON files (owner, upstream, sha256);
    CREATE INDEX files_by_sha256 ON files (sha256);
    CREATE TABLE originals (
        sha256 TEXT PRIMARY KEY,
        size_bytes BIGINT NOT NULL,
        stored_at_ms BIGINT NOT NULL,
        charged_to TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX originals_by_age ON originals (stored_at_ms);",
    "CREATE TABLE rate_limits (
        key TEXT PRIMARY KEY,
        tat_ms BIGINT NOT NULL
    );
    CREATE INDEX rate_limits_by_time ON rate_limits (tat_ms);",
    "CREATE TABLE original_leases (
        id BIGSERIAL PRIMARY KEY,
        sha256 TEXT NOT NULL,
        until_ms BIGINT NOT NULL
    );
    CREATE INDEX original_leases_by_sha256 ON original_leases (sha256, until_ms);",
    "CREATE TABLE context_caches (
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        model TEXT NOT NULL,
        files_key TEXT NOT NULL,
        uris TEXT NOT NULL,
        tokens BIGINT NOT NULL,
        expire_ms BIGINT NOT NULL,
        PRIMARY KEY (owner, name)
    );
    CREATE INDEX context_caches_by_files ON context_caches (owner, model, files_key);",
    "CREATE TABLE exclusive_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until_ms BIGINT NOT NULL
    );",
    "ALTER TABLE context_caches ADD COLUMN charged_to TEXT NOT NULL DEFAULT '';
    CREATE INDEX context_caches_by_holder ON context_caches (charged_to, expire_ms);",
    crate::accounts::SCHEMA,
    crate::usage::SCHEMA,
    crate::conversations::SCHEMA,
    crate::shares::SCHEMA,
];

/// Connections in the pool for the concepts' queries, at most.
const POOL_SIZE: usize = 16;

/// Connections in the coordination pool (rate limits, exclusive turns), at most: each of its
/// statements is one short round trip, and no other query can hold them up.
const COORDINATION_POOL_SIZE: usize = 4;

/// The PostgreSQL database. Cheap to clone (the pools are shared).
///
/// Two pools: one for the concepts' queries, one for coordination (the shared rate limits and
/// the exclusive turns). No connection of either is held across a call to Gemini, so the pools'
/// size bounds only concurrent statements, never how many requests can wait on Gemini.
#[derive(Clone)]
pub struct PgDb {
    pub(crate) pool: Pool,
    pub(crate) coordination: Pool,
    /// Where to connect (the sync listener's own connection).
    pub(crate) config: Arc<tokio_postgres::Config>,
    /// This process's followers of accounts' conversations.
    pub(crate) hub: Arc<crate::conversations::hub::Hub>,
    /// Set once the sync listener runs.
    listening: Arc<std::sync::OnceLock<()>>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgDb")
    }
}

/// TLS for `sslmode=prefer|require`: rustls with the Web PKI roots.
pub(crate) fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Url(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A `BIGINT` of bytes or tokens.
pub(crate) fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgDb {
    /// Connects to `url` (a `postgres://` URL) and applies the missing migrations.
    ///
    /// # Errors
    /// [`StoreError`] when the URL does not parse, the database cannot be reached, or a
    /// migration fails (nothing of it is applied then).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StoreError::Url(e.to_string()))?;
        let pool = |size| {
            let manager = Manager::from_config(
                config.clone(),
                tls()?,
                ManagerConfig { recycling_method: RecyclingMethod::Fast },
            );
            Pool::builder(manager)
                .max_size(size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(std::time::Duration::from_secs(10)))
                .create_timeout(Some(std::time::Duration::from_secs(10)))
                .build()
                .map_err(|e| StoreError::Url(e.to_string()))
        };
        let (pool, coordination) = (pool(POOL_SIZE)?, pool(COORDINATION_POOL_SIZE)?);
        let db = PgDb {
            pool,
            coordination,
            config: Arc::new(config),
            hub: Arc::default(),
            listening: Arc::default(),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations not applied yet, under the migration lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS parley_migrations (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
        let done: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM parley_migrations", &[])
            .await?
            .get(0);
        for (version, sql) in (1..).zip(MIGRATIONS) {
            if version <= done {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO parley_migrations (version) VALUES ($1)", &[&version]).await?;
            tracing::info!(version, "database migration applied");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The migrations applied, in order (tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn applied_migrations(&self) -> Result<Vec<i32>, StoreError> {
        let client = self.pool.get().await?;
        let rows =
            client.query("SELECT version FROM parley_migrations ORDER BY version", &[]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Starts, on the first call, the one connection that listens for other replicas' writes
    /// to conversations ([`crate::conversations::hub`]).
    pub(crate) fn listen(&self) {
        self.listening.get_or_init(|| {
            tokio::spawn(crate::conversations::listen_forever(self.clone()));
        });
    }

    /// Whether the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }
}

/// Test support: a fresh database on the PostgreSQL server named by
/// `PARLEY_TEST_DATABASE_URL` (`scripts/test.sh` starts one, sets it, and sets
/// `PARLEY_TEST_REQUIRE_SERVICES` so that a missing server fails instead of skipping).
#[cfg(test)]
pub(crate) mod testing {
    /// The URL of a new, empty database `parley_{name}_{random}` on the test server; `None`
    /// (with a note on stderr) when `PARLEY_TEST_DATABASE_URL` is not set.
    pub(crate) async fn fresh_database(name: &str) -> Option<String> {
        let Ok(admin) = std::env::var("PARLEY_TEST_DATABASE_URL") else {
            // scripts/test.sh always has a server: there, a missing one is a failure.
            assert!(
                std::env::var_os("PARLEY_TEST_REQUIRE_SERVICES").is_none(),
                "PARLEY_TEST_DATABASE_URL is not set"
            );
            eprintln!("PARLEY_TEST_DATABASE_URL is not set: the PostgreSQL case is skipped");
            return None;
        };
        let (client, connection) =
            tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let database = format!("parley_{name}_{:08x}", rand_suffix());
        client.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), ""), |(b, q)| (b, q));
        let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        Some(format!("{base}/{database}{query}"))
    }

    fn rand_suffix() -> u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    }
}
