//! The PostgreSQL backend: one database shared by every `parley` replica, through a pool of
//! connections (deadpool-postgres over tokio-postgres; TLS with rustls when the URL asks for it,
//! `sslmode=require`).
//!
//! Migrations are versioned (table `parley_migrations`) and serialized: each start applies the
//! missing ones inside one transaction that first takes a transaction-scoped advisory lock, so
//! replicas starting together on an empty database apply each migration once — the second waits
//! for the first and finds nothing left to do. (sqlx's migrator does the same, but sqlx 0.9 cannot
//! share a build with rusqlite 0.40: both link SQLite.)

use std::{collections::HashMap, sync::Arc};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Row;

use super::{CacheRow, FileRow, FileState, Original, RegistryError};

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
];

/// How long an exclusive turn ([`Lease`]) lasts unless its holder renews it: the longest
/// another replica waits after a holder crashed, ms.
const LEASE_MS: i64 = 15_000;

/// How often a holder renews its lease (a third of [`LEASE_MS`]).
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// An exclusive turn across replicas: a row of `exclusive_leases` naming this holder until a
/// deadline on the database's clock. No connection is held while the turn lasts (the holder
/// calls Gemini meanwhile, for minutes at times): each statement — take, renew every
/// [`RENEW_EVERY`], give back — borrows a connection of the coordination pool for a moment.
/// A holder that dies stops renewing, and its turn passes to the next after [`LEASE_MS`].
/// [`Lease::release`] gives the turn back at once; dropped unreleased (a cancelled request),
/// it is given back by a task of its own.
pub struct Lease {
    pool: Pool,
    /// Hex SHA-256 of the turn's name.
    key: String,
    /// This holding's random token: only its holder can renew or release it.
    holder: String,
    renewing: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", &self.key[..12.min(self.key.len())])
    }
}

impl Lease {
    /// Gives the turn back (the next holder may take it at once). A failure is logged: the
    /// lease then ends by its deadline.
    pub async fn release(mut self) {
        if let Some(renewing) = self.renewing.take() {
            renewing.abort();
        }
        if let Err(e) = give_back(&self.pool, &self.key, &self.holder).await {
            tracing::warn!(error = %e, "an exclusive turn could not be given back; it ends by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(renewing) = self.renewing.take() else { return };
        renewing.abort();
        let (pool, key, holder) = (self.pool.clone(), self.key.clone(), self.holder.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = give_back(&pool, &key, &holder).await;
            });
        }
    }
}

/// Deletes the lease `key` if `holder` still has it.
async fn give_back(pool: &Pool, key: &str, holder: &str) -> Result<(), RegistryError> {
    let client = pool.get().await?;
    client
        .execute("DELETE FROM exclusive_leases WHERE name = $1 AND holder = $2", &[&key, &holder])
        .await?;
    Ok(())
}

/// Renews the lease `key` of `holder` every [`RENEW_EVERY`] until aborted (or until the lease
/// was lost: logged).
async fn renew(pool: Pool, key: String, holder: String) {
    let mut every = tokio::time::interval(RENEW_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let renewed = async {
            let client = pool.get().await?;
            let sql = "UPDATE exclusive_leases SET until_ms = \
                       (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3 \
                       WHERE name = $1 AND holder = $2";
            Ok::<_, RegistryError>(client.execute(sql, &[&key, &holder, &LEASE_MS]).await?)
        };
        match renewed.await {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!("an exclusive turn was lost (not renewed in time)");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "an exclusive turn could not be renewed"),
        }
    }
}

/// Connections in the registry's pool, at most.
const POOL_SIZE: usize = 16;

/// Connections in the coordination pool (rate limits, exclusive turns), at most: each of its
/// statements is one short round trip, and no registry query can hold them up.
const COORDINATION_POOL_SIZE: usize = 4;

const COLUMNS: &str = "owner, upstream, name, uri, mime_type, size_bytes, display_name, sha256, \
                       create_time, expiration_time, state, recorded_at_ms";

/// The PostgreSQL registry. Cheap to clone (the pools are shared).
///
/// Two pools: one for the registry's queries, one for coordination (the shared rate limits
/// and the exclusive turns). No connection of either is held across a call to Gemini, so the
/// pools' size bounds only concurrent statements, never how many requests can wait on Gemini.
#[derive(Clone)]
pub struct PgRegistry {
    pool: Pool,
    coordination: Pool,
}

impl std::fmt::Debug for PgRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgRegistry")
    }
}

/// TLS for `sslmode=prefer|require`: rustls with the Web PKI roots.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, RegistryError> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RegistryError::Url(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn file_row(r: &Row) -> Result<FileRow, RegistryError> {
    let state: String = r.try_get(10)?;
    Ok(FileRow {
        owner: r.try_get(0)?,
        upstream: r.try_get(1)?,
        name: r.try_get(2)?,
        uri: r.try_get(3)?,
        mime_type: r.try_get(4)?,
        size_bytes: r.try_get::<_, i64>(5)?.max(0) as u64,
        display_name: r.try_get(6)?,
        sha256: r.try_get(7)?,
        create_time: r.try_get(8)?,
        expiration_time: r.try_get(9)?,
        state: state.parse().map_err(RegistryError::Url)?,
        recorded_at_ms: r.try_get(11)?,
    })
}

fn original(r: &Row) -> Result<Original, RegistryError> {
    Ok(Original {
        size_bytes: r.try_get::<_, i64>(0)?.max(0) as u64,
        stored_at_ms: r.try_get(1)?,
        charged_to: r.try_get(2)?,
    })
}

/// Bytes as PostgreSQL's `BIGINT`.
const CACHE_COLUMNS: &str = "owner, name, model, files_key, uris, tokens, expire_ms, charged_to";

fn cache_row(r: &Row) -> CacheRow {
    let uris: String = r.get(4);
    CacheRow {
        owner: r.get(0),
        name: r.get(1),
        model: r.get(2),
        files_key: r.get(3),
        uris: uris.lines().map(str::to_string).collect(),
        tokens: r.get::<_, i64>(5).max(0) as u64,
        expire_ms: r.get(6),
        charged_to: r.get(7),
    }
}

fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgRegistry {
    /// Connects to `url` (a `postgres://` URL) and applies the missing migrations.
    ///
    /// # Errors
    /// [`RegistryError`] when the URL does not parse, the database cannot be reached, or a
    /// migration fails (nothing of it is applied then).
    pub async fn connect(url: &str) -> Result<Self, RegistryError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| RegistryError::Url(e.to_string()))?;
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
                .map_err(|e| RegistryError::Url(e.to_string()))
        };
        let (pool, coordination) = (pool(POOL_SIZE)?, pool(COORDINATION_POOL_SIZE)?);
        let registry = PgRegistry { pool, coordination };
        registry.migrate().await?;
        Ok(registry)
    }

    /// Applies the migrations not applied yet, under the migration lock.
    async fn migrate(&self) -> Result<(), RegistryError> {
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
            tracing::info!(version, "registry migration applied");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The migrations applied, in order (tests).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn applied_migrations(&self) -> Result<Vec<i32>, RegistryError> {
        let client = self.pool.get().await?;
        let rows =
            client.query("SELECT version FROM parley_migrations ORDER BY version", &[]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Takes `cells` from the rate limit `key`, shared by every replica: GCRA (the generic
    /// cell rate algorithm, as governor implements it in one process) with one cell every
    /// `emission_ms` and bursts of `burst` cells, on the database's clock, decided in one
    /// statement with the key's row locked (a second one, on refusal, reads the wait). `Ok(None)` when the cells are taken; `Ok(Some(ms))` with the wait when
    /// not (nothing is taken then); more cells than the burst never pass.
    ///
    /// # Errors
    /// [`RegistryError`] when the database fails (callers fall back to a per-process limit).
    pub async fn take_cells(
        &self,
        key: &str,
        emission_ms: i64,
        burst: u32,
        cells: u32,
    ) -> Result<Option<i64>, RegistryError> {
        if cells > burst {
            return Ok(Some(i64::from(cells) * emission_ms));
        }
        let increment = i64::from(cells).saturating_mul(emission_ms);
        let tolerance = i64::from(burst).saturating_mul(emission_ms);
        let client = self.coordination.get().await?;
        // One statement, the row locked by the upsert: a new key takes the cells (at most the
        // burst: checked above); an existing one moves its theoretical arrival time only when
        // the cells fit. `EXCLUDED.tat_ms - $2` is the database's now.
        let taken = client
            .query_opt(
                "INSERT INTO rate_limits AS r (key, tat_ms) \
                 VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $2) \
                 ON CONFLICT (key) DO UPDATE \
                 SET tat_ms = GREATEST(r.tat_ms, EXCLUDED.tat_ms - $2) + $2 \
                 WHERE GREATEST(r.tat_ms, EXCLUDED.tat_ms - $2) + $2 - $3 <= EXCLUDED.tat_ms - $2 \
                 RETURNING tat_ms",
                &[&key, &increment, &tolerance],
            )
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        // Refused: how long until the cells would fit.
        let row = client
            .query_one(
                "SELECT tat_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
                 FROM rate_limits WHERE key = $1",
                &[&key],
            )
            .await?;
        let (tat, now): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let allowed_at = tat.max(now).saturating_add(increment).saturating_sub(tolerance);
        Ok(Some((allowed_at - now).max(1)))
    }

    /// Forgets rate-limit keys whose cells have all been back for a day (the table stays
    /// small).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn tidy_rate_limits(&self) -> Result<u64, RegistryError> {
        let client = self.coordination.get().await?;
        Ok(client
            .execute(
                "DELETE FROM rate_limits WHERE tat_ms < \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 86400000",
                &[],
            )
            .await?)
    }

    pub(super) async fn ping(&self) -> Result<(), RegistryError> {
        self.pool.get().await?.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    pub(super) async fn record(&self, f: FileRow) -> Result<(), RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "INSERT INTO files ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (owner, uri) DO UPDATE SET upstream = EXCLUDED.upstream, name = EXCLUDED.name, \
             mime_type = EXCLUDED.mime_type, size_bytes = EXCLUDED.size_bytes, \
             display_name = EXCLUDED.display_name, sha256 = EXCLUDED.sha256, \
             create_time = EXCLUDED.create_time, expiration_time = EXCLUDED.expiration_time, \
             state = EXCLUDED.state, recorded_at_ms = EXCLUDED.recorded_at_ms"
        );
        client
            .execute(
                &sql,
                &[
                    &f.owner,
                    &f.upstream,
                    &f.name,
                    &f.uri,
                    &f.mime_type,
                    &bigint(f.size_bytes),
                    &f.display_name,
                    &f.sha256,
                    &f.create_time,
                    &f.expiration_time,
                    &f.state.as_str(),
                    &f.recorded_at_ms,
                ],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn find_many(
        &self,
        owner: &str,
        uris: Vec<String>,
    ) -> Result<HashMap<String, FileRow>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM files WHERE owner = $1 AND uri = ANY($2)");
        let rows = client.query(&sql, &[&owner, &uris]).await?;
        rows.iter().map(|r| file_row(r).map(|f| (f.uri.clone(), f))).collect()
    }

    pub(super) async fn active_copies(
        &self,
        owner: &str,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner = $1 AND upstream = $2 AND sha256 = $3 \
             AND state = 'ACTIVE' ORDER BY recorded_at_ms DESC, id DESC"
        );
        let rows = client.query(&sql, &[&owner, &upstream, &sha256]).await?;
        rows.iter().map(file_row).collect()
    }

    pub(super) async fn list(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<FileRow>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner = $1 ORDER BY recorded_at_ms DESC, id DESC LIMIT $2"
        );
        let rows = client.query(&sql, &[&owner, &bigint(limit as u64)]).await?;
        rows.iter().map(file_row).collect()
    }

    pub(super) async fn set_state(
        &self,
        owner: &str,
        uri: &str,
        state: FileState,
    ) -> Result<(), RegistryError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE files SET state = $3 WHERE owner = $1 AND uri = $2",
                &[&owner, &uri, &state.as_str()],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn remove(&self, owner: &str, uri: &str) -> Result<bool, RegistryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(found) = tx
            .query_opt("SELECT sha256 FROM files WHERE owner = $1 AND uri = $2", &[&owner, &uri])
            .await?
        else {
            return Ok(false);
        };
        let sha256: String = found.get(0);
        tx.execute("DELETE FROM files WHERE owner = $1 AND uri = $2", &[&owner, &uri]).await?;
        tx.execute(
            "DELETE FROM files WHERE owner = $1 AND sha256 = $2 AND state = 'REPLACED'",
            &[&owner, &sha256],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn record_cache(
        &self,
        cache: CacheRow,
        now_ms: i64,
    ) -> Result<(), RegistryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM context_caches WHERE owner = $1 AND expire_ms < $2",
            &[&cache.owner, &now_ms],
        )
        .await?;
        tx.execute(
            &format!(
                "INSERT INTO context_caches ({CACHE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (owner, name) DO UPDATE SET model = EXCLUDED.model, \
                 files_key = EXCLUDED.files_key, uris = EXCLUDED.uris, tokens = EXCLUDED.tokens, \
                 expire_ms = EXCLUDED.expire_ms, charged_to = EXCLUDED.charged_to"
            ),
            &[
                &cache.owner,
                &cache.name,
                &cache.model,
                &cache.files_key,
                &cache.uris.join("\n"),
                &bigint(cache.tokens),
                &cache.expire_ms,
                &cache.charged_to,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn find_cache(
        &self,
        owner: &str,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = $1 AND model = $2 \
             AND files_key = $3 ORDER BY expire_ms DESC LIMIT 1"
        );
        let row = client.query_opt(&sql, &[&owner, &model, &files_key]).await?;
        Ok(row.as_ref().map(cache_row))
    }

    pub(super) async fn caches_of(&self, owner: &str) -> Result<Vec<CacheRow>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = $1");
        let rows = client.query(&sql, &[&owner]).await?;
        Ok(rows.iter().map(cache_row).collect())
    }

    pub(super) async fn live_caches_charged_to(
        &self,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM context_caches WHERE charged_to = $1 AND expire_ms > $2",
                &[&charged_to, &now_ms],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
    }

    pub(super) async fn remove_cache(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<bool, RegistryError> {
        let client = self.pool.get().await?;
        let removed = client
            .execute("DELETE FROM context_caches WHERE owner = $1 AND name = $2", &[&owner, &name])
            .await?;
        Ok(removed > 0)
    }

    pub(super) async fn is_referenced(&self, sha256: &str) -> Result<bool, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1)", &[&sha256])
            .await?;
        Ok(row.get(0))
    }

    pub(super) async fn original(&self, sha256: &str) -> Result<Option<Original>, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT size_bytes, stored_at_ms, charged_to FROM originals WHERE sha256 = $1",
                &[&sha256],
            )
            .await?;
        row.as_ref().map(original).transpose()
    }

    pub(super) async fn originals_among(
        &self,
        sha256s: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT sha256 FROM originals WHERE sha256 = ANY($1)", &[&sha256s])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn add_original(
        &self,
        sha256: &str,
        o: Original,
    ) -> Result<(), RegistryError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO originals (sha256, size_bytes, stored_at_ms, charged_to) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sha256) DO UPDATE SET stored_at_ms = EXCLUDED.stored_at_ms",
                &[&sha256, &bigint(o.size_bytes), &o.stored_at_ms, &o.charged_to],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn remove_original(
        &self,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool, RegistryError> {
        let client = self.pool.get().await?;
        let removed = client
            .execute(
                "DELETE FROM originals WHERE sha256 = $1 AND NOT EXISTS \
                 (SELECT 1 FROM original_leases WHERE sha256 = $1 AND until_ms > $2)",
                &[&sha256, &now_ms],
            )
            .await?;
        Ok(removed > 0)
    }

    pub(super) async fn lease_original(
        &self,
        sha256: &str,
        until_ms: i64,
    ) -> Result<i64, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO original_leases (sha256, until_ms) VALUES ($1, $2) RETURNING id",
                &[&sha256, &until_ms],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    pub(super) async fn end_lease(&self, id: i64, now_ms: i64) -> Result<(), RegistryError> {
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM original_leases WHERE id = $1 OR until_ms <= $2", &[&id, &now_ms])
            .await?;
        Ok(())
    }

    pub(super) async fn leased_originals(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT DISTINCT sha256 FROM original_leases WHERE until_ms > $1", &[&now_ms])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Takes the exclusive turn `key` (a hex digest, see [`super::lock_key`]) if nobody holds
    /// it — no lease row, or one past its deadline — in one statement on the database's clock;
    /// `None` when another holder has it. The returned [`Lease`] is renewed in the background
    /// until it is released or dropped.
    ///
    /// # Errors
    /// [`RegistryError`] when the database fails.
    pub async fn try_lease(&self, key: &str) -> Result<Option<Lease>, RegistryError> {
        let holder = hex::encode(rand::random::<[u8; 16]>());
        let client = self.coordination.get().await?;
        let taken = client
            .query_opt(
                "INSERT INTO exclusive_leases AS l (name, holder, until_ms) \
                 VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms \
                 WHERE l.until_ms <= EXCLUDED.until_ms - $3 \
                 RETURNING holder",
                &[&key, &holder, &LEASE_MS],
            )
            .await?;
        drop(client);
        Ok(taken.map(|_| {
            let renewing =
                tokio::spawn(renew(self.coordination.clone(), key.to_string(), holder.clone()));
            Lease {
                pool: self.coordination.clone(),
                key: key.to_string(),
                holder,
                renewing: Some(renewing),
            }
        }))
    }

    /// Waits for the exclusive turn `key` — trying again after 50 ms, backing off to 1 s, no
    /// connection held while waiting — for at most `patience`.
    ///
    /// # Errors
    /// [`RegistryError::LockTimeout`] after `patience`; [`RegistryError`] when the database
    /// fails.
    pub async fn lease(
        &self,
        key: &str,
        patience: std::time::Duration,
    ) -> Result<Lease, RegistryError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            if let Some(lease) = self.try_lease(key).await? {
                return Ok(lease);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(RegistryError::LockTimeout(patience));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Moves every lease's deadline to now, as if their holders had died (tests).
    #[cfg(test)]
    pub(super) async fn end_leases_now(&self) {
        let client = self.coordination.get().await.unwrap();
        client.execute("UPDATE exclusive_leases SET until_ms = 0", &[]).await.unwrap();
    }

    /// Forgets leases whose deadline passed an hour ago (a holder that died gives none back).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn tidy_leases(&self) -> Result<u64, RegistryError> {
        let client = self.coordination.get().await?;
        Ok(client
            .execute(
                "DELETE FROM exclusive_leases WHERE until_ms < \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 3600000",
                &[],
            )
            .await?)
    }

    pub(super) async fn originals_total(&self) -> Result<(u64, u64), RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0)::BIGINT FROM originals", &[])
            .await?;
        let (count, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((count.max(0) as u64, bytes.max(0) as u64))
    }

    pub(super) async fn all_originals(&self) -> Result<Vec<(String, Original)>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT size_bytes, stored_at_ms, charged_to, sha256 FROM originals \
                 ORDER BY stored_at_ms, sha256",
                &[],
            )
            .await?;
        rows.iter().map(|r| Ok((r.try_get(3)?, original(r)?))).collect()
    }

    pub(super) async fn all_files(&self) -> Result<Vec<FileRow>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {COLUMNS} FROM files ORDER BY id"), &[]).await?;
        rows.iter().map(file_row).collect()
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
