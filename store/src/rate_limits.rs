//! Rate limits shared by replicas: GCRA rows (table `rate_limits`) on the database's clock,
//! so that a limit of four a minute is four across every replica. Only PostgreSQL has them: a
//! single server keeps its limits in its own memory.

use crate::{postgres::PgDb, Store, StoreError};

/// The shared rate limits of a PostgreSQL store ([`Store::shared_rate_limits`]). Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct SharedRateLimits(PgDb);

impl Store {
    /// The rate limits replicas share, when the store is shared (PostgreSQL); `None` on SQLite.
    pub fn shared_rate_limits(&self) -> Option<SharedRateLimits> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(db) => Some(SharedRateLimits(db.clone())),
        }
    }
}

impl SharedRateLimits {
    /// Takes `cells` from the rate limit `key`, shared by every replica: GCRA (the generic
    /// cell rate algorithm, as governor implements it in one process) with one cell every
    /// `emission_ms` and bursts of `burst` cells, on the database's clock, decided in one
    /// statement with the key's row locked (a second one, on refusal, reads the wait). `Ok(None)` when the cells are taken; `Ok(Some(ms))` with the wait when
    /// not (nothing is taken then); more cells than the burst never pass.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails (callers fall back to a per-process limit).
    pub async fn take_cells(
        &self,
        key: &str,
        emission_ms: i64,
        burst: u32,
        cells: u32,
    ) -> Result<Option<i64>, StoreError> {
        if cells > burst {
            return Ok(Some(i64::from(cells) * emission_ms));
        }
        let increment = i64::from(cells).saturating_mul(emission_ms);
        let tolerance = i64::from(burst).saturating_mul(emission_ms);
        let client = self.0.coordination.get().await?;
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
    /// [`StoreError`].
    pub async fn tidy_rate_limits(&self) -> Result<u64, StoreError> {
        let client = self.0.coordination.get().await?;
        Ok(client
            .execute(
                "DELETE FROM rate_limits WHERE tat_ms < \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 86400000",
                &[],
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn shared_rate_limits_follow_gcra() {
        let Some(url) = crate::postgres::testing::fresh_database("rates").await else { return };
        let pg = Store::connect(&url.parse().unwrap()).await.unwrap().shared_rate_limits().unwrap();
        // Three a minute (one cell every 20 s, bursts of three).
        for _ in 0..3 {
            assert_eq!(pg.take_cells("chat:s:alice", 20_000, 3, 1).await.unwrap(), None);
        }
        let wait = pg.take_cells("chat:s:alice", 20_000, 3, 1).await.unwrap().unwrap();
        assert!((19_000..=20_000).contains(&wait), "{wait} ms");
        assert_eq!(pg.take_cells("chat:s:bob", 20_000, 3, 1).await.unwrap(), None, "another key");
        assert!(
            pg.take_cells("chat:s:carol", 20_000, 3, 4).await.unwrap().is_some(),
            "over the burst"
        );
        assert_eq!(
            pg.take_cells("chat:s:carol", 20_000, 3, 3).await.unwrap(),
            None,
            "nothing was taken"
        );
        // Concurrent takes from many connections: exactly the burst passes.
        let takes = (0..10).map(|_| pg.take_cells("chat:s:dave", 60_000, 5, 1));
        let passed = futures::future::join_all(takes)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(None)))
            .count();
        assert_eq!(passed, 5);
        assert_eq!(pg.tidy_rate_limits().await.unwrap(), 0, "nothing old yet");
    }
}
