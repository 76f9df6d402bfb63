//! Exclusive turns: work only one holder at a time may do across every replica (a re-upload of
//! one content, a session's context caches, eviction). On PostgreSQL each is a row of
//! `exclusive_leases` with a deadline; on SQLite (one process) there is nothing to hold.

use deadpool_postgres::Pool;

use crate::{postgres::PgDb, Store, StoreError};

/// Work only one holder at a time may do, across every replica sharing the store: a lease
/// row with a deadline on PostgreSQL ([`Lease`]: no connection is held while the
/// work runs, so a holder may call Gemini for minutes); on SQLite (one process) nothing to
/// hold — the callers' own in-process locks suffice. Held until [`Exclusive::release`] (or
/// dropped).
#[derive(Debug)]
pub enum Exclusive {
    /// SQLite: this process is the only one.
    Local,
    /// PostgreSQL: a lease, renewed while it is held.
    Postgres(Lease),
}

impl Exclusive {
    /// Lets the next holder in.
    pub async fn release(self) {
        if let Exclusive::Postgres(lease) = self {
            lease.release().await;
        }
    }
}

/// The lease key of `name`: its SHA-256 in hex (names hold session ids; keys do not show them).
fn lock_key(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

impl Store {
    /// Takes the exclusive turn `name` if nobody holds it (on PostgreSQL, across replicas);
    /// `None` when another holder has it (the caller skips the work).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn try_exclusive(&self, name: &str) -> Result<Option<Exclusive>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(Some(Exclusive::Local)),
            Store::Postgres(pg) => {
                Ok(pg.try_lease(&lock_key(name)).await?.map(Exclusive::Postgres))
            }
        }
    }

    /// Waits for the exclusive turn `name` (on PostgreSQL, across replicas) for at most
    /// `patience`.
    ///
    /// # Errors
    /// [`StoreError::LockTimeout`] after `patience`; [`StoreError`].
    pub async fn exclusive(
        &self,
        name: &str,
        patience: std::time::Duration,
    ) -> Result<Exclusive, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(Exclusive::Local),
            Store::Postgres(pg) => {
                Ok(Exclusive::Postgres(pg.lease(&lock_key(name), patience).await?))
            }
        }
    }

    /// Forgets exclusive turns whose holders died an hour ago or more (PostgreSQL; SQLite keeps
    /// none).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn tidy_leases(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(0),
            Store::Postgres(pg) => pg.tidy_leases().await,
        }
    }
}

/// How long an exclusive turn ([`Lease`]) lasts unless its holder renews it: the longest
/// another replica waits after a holder crashed, ms.
const LEASE_MS: i64 = 15_000;

/// How often a holder renews its lease (a third of [`LEASE_MS`]).
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// An exclusive turn across replicas: a row of `exclusive_leases` naming this holder until a
/// deadline on the database's clock. No connection is held while the turn lasts (the holder
/// calls Gemini meanwhile, for minutes at times): each statement — take, renew every
/// 5 s, give back — borrows a connection of the coordination pool for a moment.
/// A holder that dies stops renewing, and its turn passes to the next 15 s after its last renewal.
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
async fn give_back(pool: &Pool, key: &str, holder: &str) -> Result<(), StoreError> {
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
            Ok::<_, StoreError>(client.execute(sql, &[&key, &holder, &LEASE_MS]).await?)
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

impl PgDb {
    /// Takes the exclusive turn `key` (a hex digest, see [`lock_key`]) if nobody holds
    /// it — no lease row, or one past its deadline — in one statement on the database's clock;
    /// `None` when another holder has it. The returned [`Lease`] is renewed in the background
    /// until it is released or dropped.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    async fn try_lease(&self, key: &str) -> Result<Option<Lease>, StoreError> {
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
    /// [`StoreError::LockTimeout`] after `patience`; [`StoreError`] when the database
    /// fails.
    async fn lease(&self, key: &str, patience: std::time::Duration) -> Result<Lease, StoreError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            if let Some(lease) = self.try_lease(key).await? {
                return Ok(lease);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(StoreError::LockTimeout(patience));
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
    /// [`StoreError`].
    async fn tidy_leases(&self) -> Result<u64, StoreError> {
        let client = self.coordination.get().await?;
        Ok(client
            .execute(
                "DELETE FROM exclusive_leases WHERE until_ms < \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 3600000",
                &[],
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DatabaseUrl, Store, StoreError};

    #[tokio::test]
    async fn an_exclusive_turn_is_one_replicas_at_a_time() {
        let Some(url) = crate::postgres::testing::fresh_database("exclusive").await else { return };
        let url: DatabaseUrl = url.parse().unwrap();
        let (a, b) = (Store::connect(&url).await.unwrap(), Store::connect(&url).await.unwrap());
        let held = a.try_exclusive("evict").await.unwrap().expect("free");
        assert!(b.try_exclusive("evict").await.unwrap().is_none(), "A holds it");
        assert!(b.try_exclusive("other").await.unwrap().is_some(), "another name is free");
        let patience = std::time::Duration::from_millis(300);
        assert!(matches!(b.exclusive("evict", patience).await, Err(StoreError::LockTimeout(_))));
        held.release().await;
        let turn = b.exclusive("evict", patience).await.expect("released");
        // Dropped without release (a cancelled request): it is given back by itself.
        drop(turn);
        let again = a.exclusive("evict", std::time::Duration::from_secs(10)).await;
        assert!(again.is_ok(), "{again:?}");
        // A holder that died (no renewal, no release) loses its turn at its deadline.
        let Store::Postgres(pg) = &b else { panic!("not PostgreSQL") };
        assert!(b.try_exclusive("evict").await.unwrap().is_none(), "A holds it again");
        pg.end_leases_now().await;
        let taken = b.try_exclusive("evict").await.unwrap();
        assert!(taken.is_some(), "past its deadline, the turn passes on");
        again.unwrap().release().await;
        assert!(a.try_exclusive("evict").await.unwrap().is_none(), "A's late release left B's");
        taken.unwrap().release().await;
        // Holding turns costs no connection: more held at once than either pool has.
        let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
        let held = futures::future::join_all(names.iter().map(|n| a.exclusive(n, patience)));
        let held: Vec<_> = held.await.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            a.list(&crate::principal::owner("nobody"), 1).await.unwrap().len(),
            0,
            "the store still answers"
        );
        for turn in held {
            turn.release().await;
        }
        assert_eq!(a.tidy_leases().await.unwrap(), 0);
        // SQLite has one process: always its turn.
        let lite = Store::in_memory().unwrap();
        assert!(lite.try_exclusive("evict").await.unwrap().is_some());
    }
}
