//! Retained originals: the entries of the bytes Parley keeps of each upload (the bytes
//! themselves are in `parley-files`' object store), by SHA-256, whom each is charged to, the
//! leases that keep one while a re-upload reads it, and which to evict. Tables `originals` and
//! `original_leases`.

use std::collections::{HashMap, HashSet};

use crate::{Store, StoreError};

/// A retained original as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// Size, bytes.
    pub size_bytes: u64,
    /// When it was stored, ms since the epoch.
    pub stored_at_ms: i64,
    /// Whose share of the budget it counts against: an opaque key of the client address that
    /// first stored it (a hash, never the address itself); empty for originals stored before
    /// addresses were recorded.
    pub charged_to: String,
}

impl Store {
    /// The retained original with content `sha256`, if recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn original(&self, sha256: &str) -> Result<Option<Original>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::original(db, sha256).await,
            Store::Postgres(db) => pg::original(db, sha256).await,
        }
    }

    /// Which of `sha256s` have a retained original.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn originals_among(
        &self,
        sha256s: Vec<String>,
    ) -> Result<HashSet<String>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::originals_among(db, sha256s).await,
            Store::Postgres(db) => pg::originals_among(db, sha256s).await,
        }
    }

    /// Records a retained original (its stored time is refreshed when it already exists; it
    /// stays charged to whoever stored it first).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn add_original(&self, sha256: &str, original: Original) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::add_original(db, sha256, original).await,
            Store::Postgres(db) => pg::add_original(db, sha256, original).await,
        }
    }

    /// Forgets a retained original unless it is leased ([`Store::lease_original`]) past
    /// `now_ms`; true when it was forgotten.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn remove_original(&self, sha256: &str, now_ms: i64) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::remove_original(db, sha256, now_ms).await,
            Store::Postgres(db) => pg::remove_original(db, sha256, now_ms).await,
        }
    }

    /// Leases the original `sha256` until `until_ms` (ms since the epoch): while it is being
    /// read for a re-upload, no eviction on any replica removes it. Returns the lease's id for
    /// [`Store::end_lease`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn lease_original(&self, sha256: &str, until_ms: i64) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(db) => lite::lease_original(db, sha256, until_ms).await,
            Store::Postgres(db) => pg::lease_original(db, sha256, until_ms).await,
        }
    }

    /// Ends the lease `id` (and forgets leases that ended before `now_ms`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn end_lease(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::end_lease(db, id, now_ms).await,
            Store::Postgres(db) => pg::end_lease(db, id, now_ms).await,
        }
    }

    /// The SHA-256 of every original leased past `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn leased_originals(&self, now_ms: i64) -> Result<HashSet<String>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::leased_originals(db, now_ms).await,
            Store::Postgres(db) => pg::leased_originals(db, now_ms).await,
        }
    }

    /// How many retained originals there are, and their bytes in all (for the metrics).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn originals_total(&self) -> Result<(u64, u64), StoreError> {
        match self {
            Store::Sqlite(db) => lite::originals_total(db).await,
            Store::Postgres(db) => pg::originals_total(db).await,
        }
    }

    /// Every retained original, oldest first (by stored time, then SHA-256).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn all_originals(&self) -> Result<Vec<(String, Original)>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::all_originals(db).await,
            Store::Postgres(db) => pg::all_originals(db).await,
        }
    }

    /// The originals to evict: those stored before `stored_before_ms`, then — while the rest
    /// pass `max_bytes` — the oldest original of whoever holds the most bytes (see
    /// [`evict_by_share`]); none leased past `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn originals_to_evict(
        &self,
        stored_before_ms: i64,
        max_bytes: u64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let all = self.all_originals().await?;
        let leased = self.leased_originals(now_ms).await?;
        tokio::task::spawn_blocking(move || {
            evict_by_share(all, stored_before_ms, max_bytes, &leased)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))
    }
}

/// Which of `originals` (oldest first) to evict: every one stored before `stored_before_ms`;
/// then, while the rest pass `max_bytes`, the oldest of the heaviest holder's — the holder
/// ([`Original::charged_to`]) whose originals add up to the most bytes, the one with the older
/// original among equals. So a visitor who fills the budget (with many cookies: holders are
/// addresses) evicts their own copies, not other people's. Originals in `leased` (being read)
/// are never chosen, but count towards the total. `O(n log n)`.
pub fn evict_by_share(
    originals: Vec<(String, Original)>,
    stored_before_ms: i64,
    max_bytes: u64,
    leased: &std::collections::HashSet<String>,
) -> Vec<String> {
    use std::{
        cmp::Reverse,
        collections::{BinaryHeap, VecDeque},
    };
    let mut evict = Vec::new();
    // Per holder: bytes held, and its originals (SHA-256, bytes, stored at), oldest first.
    type Holding = (u64, VecDeque<(String, u64, i64)>);
    let mut holders: HashMap<String, Holding> = HashMap::new();
    let mut total = 0u64;
    for (sha256, original) in originals {
        if leased.contains(&sha256) {
            total += original.size_bytes;
            continue;
        }
        if original.stored_at_ms < stored_before_ms {
            evict.push(sha256);
            continue;
        }
        total += original.size_bytes;
        let holder = holders.entry(original.charged_to).or_default();
        holder.0 += original.size_bytes;
        holder.1.push_back((sha256, original.size_bytes, original.stored_at_ms));
    }
    // (bytes held, older first, holder): the heaviest on top.
    let mut heaviest: BinaryHeap<(u64, Reverse<i64>, String)> = holders
        .iter()
        .map(|(key, (bytes, queue))| {
            (*bytes, Reverse(queue.front().map_or(i64::MAX, |o| o.2)), key.clone())
        })
        .collect();
    while total > max_bytes {
        let Some((_, _, key)) = heaviest.pop() else { break };
        let Some((bytes, queue)) = holders.get_mut(&key) else { continue };
        let Some((sha256, size, _)) = queue.pop_front() else { continue };
        total -= size;
        *bytes -= size;
        evict.push(sha256);
        if let Some(next) = queue.front() {
            heaviest.push((*bytes, Reverse(next.2), key));
        }
    }
    evict
}

/// The SQLite statements.
mod lite {
    use std::collections::HashSet;

    use rusqlite::{params, OptionalExtension};

    use super::Original;
    use crate::{sqlite::SqliteDb, StoreError};

    pub(super) async fn original(
        db: &SqliteDb,
        sha256: &str,
    ) -> Result<Option<Original>, StoreError> {
        let sha256 = sha256.to_string();
        db.with(move |c| {
            c.query_row(
                "SELECT size_bytes, stored_at_ms, charged_to FROM originals WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(Original {
                        size_bytes: r.get::<_, i64>(0)?.max(0) as u64,
                        stored_at_ms: r.get(1)?,
                        charged_to: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    pub(super) async fn originals_among(
        db: &SqliteDb,
        sha256s: Vec<String>,
    ) -> Result<HashSet<String>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT sha256 FROM originals WHERE sha256 IN (SELECT value FROM json_each(?1))",
            )?;
            let list = serde_json::to_string(&sha256s).unwrap_or_else(|_| "[]".into());
            let found = stmt.query_map(params![list], |r| r.get(0))?.collect();
            found
        })
        .await
    }

    pub(super) async fn add_original(
        db: &SqliteDb,
        sha256: &str,
        original: Original,
    ) -> Result<(), StoreError> {
        let sha256 = sha256.to_string();
        db.with(move |c| {
            c.execute(
                "INSERT INTO originals (sha256, size_bytes, stored_at_ms, charged_to) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (sha256) DO UPDATE SET stored_at_ms = excluded.stored_at_ms",
                params![sha256, original.size_bytes as i64, original.stored_at_ms, original.charged_to],
            )
            .map(drop)
        })
        .await
    }

    pub(super) async fn remove_original(
        db: &SqliteDb,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let sha256 = sha256.to_string();
        db.with(move |c| {
            c.execute(
                "DELETE FROM originals WHERE sha256 = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM original_leases WHERE sha256 = ?1 AND until_ms > ?2)",
                params![sha256, now_ms],
            )
            .map(|n| n > 0)
        })
        .await
    }

    pub(super) async fn lease_original(
        db: &SqliteDb,
        sha256: &str,
        until_ms: i64,
    ) -> Result<i64, StoreError> {
        let sha256 = sha256.to_string();
        db.with(move |c| {
            c.execute(
                "INSERT INTO original_leases (sha256, until_ms) VALUES (?1, ?2)",
                params![sha256, until_ms],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    pub(super) async fn end_lease(db: &SqliteDb, id: i64, now_ms: i64) -> Result<(), StoreError> {
        db.with(move |c| {
            c.execute(
                "DELETE FROM original_leases WHERE id = ?1 OR until_ms <= ?2",
                params![id, now_ms],
            )
            .map(drop)
        })
        .await
    }

    pub(super) async fn leased_originals(
        db: &SqliteDb,
        now_ms: i64,
    ) -> Result<HashSet<String>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT sha256 FROM original_leases WHERE until_ms > ?1",
            )?;
            let found = stmt.query_map(params![now_ms], |r| r.get(0))?.collect();
            found
        })
        .await
    }

    pub(super) async fn originals_total(db: &SqliteDb) -> Result<(u64, u64), StoreError> {
        db.with(|c| {
            c.query_row("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM originals", [], |r| {
                Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64))
            })
        })
        .await
    }

    pub(super) async fn all_originals(
        db: &SqliteDb,
    ) -> Result<Vec<(String, Original)>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT sha256, size_bytes, stored_at_ms, charged_to FROM originals \
                 ORDER BY stored_at_ms, sha256",
            )?;
            let all = stmt
                .query_map([], |r| {
                    let original = Original {
                        size_bytes: r.get::<_, i64>(1)?.max(0) as u64,
                        stored_at_ms: r.get(2)?,
                        charged_to: r.get(3)?,
                    };
                    Ok((r.get::<_, String>(0)?, original))
                })?
                .collect::<rusqlite::Result<Vec<_>>>();
            all
        })
        .await
    }
}

/// The PostgreSQL statements.
mod pg {
    use std::collections::HashSet;

    use tokio_postgres::Row;

    use super::Original;
    use crate::{
        postgres::{bigint, PgDb},
        StoreError,
    };

    fn original_of(r: &Row) -> Result<Original, StoreError> {
        Ok(Original {
            size_bytes: r.try_get::<_, i64>(0)?.max(0) as u64,
            stored_at_ms: r.try_get(1)?,
            charged_to: r.try_get(2)?,
        })
    }

    pub(super) async fn original(db: &PgDb, sha256: &str) -> Result<Option<Original>, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT size_bytes, stored_at_ms, charged_to FROM originals WHERE sha256 = $1",
                &[&sha256],
            )
            .await?;
        row.as_ref().map(original_of).transpose()
    }

    pub(super) async fn originals_among(
        db: &PgDb,
        sha256s: Vec<String>,
    ) -> Result<HashSet<String>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client
            .query("SELECT sha256 FROM originals WHERE sha256 = ANY($1)", &[&sha256s])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn add_original(
        db: &PgDb,
        sha256: &str,
        o: Original,
    ) -> Result<(), StoreError> {
        let client = db.pool.get().await?;
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
        db: &PgDb,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = db.pool.get().await?;
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
        db: &PgDb,
        sha256: &str,
        until_ms: i64,
    ) -> Result<i64, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO original_leases (sha256, until_ms) VALUES ($1, $2) RETURNING id",
                &[&sha256, &until_ms],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    pub(super) async fn end_lease(db: &PgDb, id: i64, now_ms: i64) -> Result<(), StoreError> {
        let client = db.pool.get().await?;
        client
            .execute("DELETE FROM original_leases WHERE id = $1 OR until_ms <= $2", &[&id, &now_ms])
            .await?;
        Ok(())
    }

    pub(super) async fn leased_originals(
        db: &PgDb,
        now_ms: i64,
    ) -> Result<HashSet<String>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client
            .query("SELECT DISTINCT sha256 FROM original_leases WHERE until_ms > $1", &[&now_ms])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub(super) async fn originals_total(db: &PgDb) -> Result<(u64, u64), StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_one("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0)::BIGINT FROM originals", &[])
            .await?;
        let (count, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((count.max(0) as u64, bytes.max(0) as u64))
    }

    pub(super) async fn all_originals(db: &PgDb) -> Result<Vec<(String, Original)>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client
            .query(
                "SELECT size_bytes, stored_at_ms, charged_to, sha256 FROM originals \
                 ORDER BY stored_at_ms, sha256",
                &[],
            )
            .await?;
        rows.iter().map(|r| Ok((r.try_get(3)?, original_of(r)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every backend must do with retained originals.
    async fn originals_are_evicted_oldest_first(store: &Store) {
        for (sha, size, at) in [("a", 40, 1), ("b", 40, 2), ("c", 40, 3)] {
            let original = Original { size_bytes: size, stored_at_ms: at, charged_to: "x".into() };
            store.add_original(sha, original).await.unwrap();
        }
        assert_eq!(store.originals_total().await.unwrap(), (3, 120));
        assert!(store.originals_to_evict(0, 120, 0).await.unwrap().is_empty());
        assert_eq!(store.originals_to_evict(0, 100, 0).await.unwrap(), vec!["a"], "over budget");
        assert_eq!(store.originals_to_evict(3, 1000, 0).await.unwrap(), vec!["a", "b"], "too old");
        assert_eq!(store.originals_to_evict(0, 0, 0).await.unwrap(), vec!["a", "b", "c"]);
        // A leased original (being read for a re-upload) is neither chosen nor removed.
        let lease = store.lease_original("a", 100).await.unwrap();
        assert_eq!(store.originals_to_evict(0, 0, 50).await.unwrap(), vec!["b", "c"]);
        assert!(!store.remove_original("a", 50).await.unwrap(), "leased");
        assert_eq!(store.originals_to_evict(0, 0, 100).await.unwrap(), vec!["a", "b", "c"]);
        store.end_lease(lease, 50).await.unwrap();
        assert!(store.leased_originals(0).await.unwrap().is_empty());
        // Stored again: a new time, still charged to the first holder.
        let again = Original { size_bytes: 40, stored_at_ms: 9, charged_to: "y".into() };
        store.add_original("a", again).await.unwrap();
        let a = store.original("a").await.unwrap().unwrap();
        assert_eq!((a.stored_at_ms, a.charged_to.as_str()), (9, "x"));
        assert!(store.remove_original("a", 50).await.unwrap());
        assert!(store.original("a").await.unwrap().is_none());
        assert_eq!(store.original("b").await.unwrap().unwrap().size_bytes, 40);
        let among = store.originals_among(vec!["a".into(), "c".into()]).await.unwrap();
        assert_eq!(among.into_iter().collect::<Vec<_>>(), vec!["c".to_string()]);
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        originals_are_evicted_oldest_first(&Store::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("originals").await else { return };
        originals_are_evicted_oldest_first(&Store::connect(&url.parse().unwrap()).await.unwrap())
            .await;
    }

    #[test]
    fn the_heaviest_holder_is_evicted_first() {
        let original = |at: i64, size: u64, holder: &str| Original {
            size_bytes: size,
            stored_at_ms: at,
            charged_to: holder.into(),
        };
        // One visitor's original, then six of a flood from another address: a 5-unit budget.
        let mut all = vec![("victim".to_string(), original(1, 1, "v"))];
        all.extend((0..6).map(|i| (format!("flood{i}"), original(2 + i, 1, "f"))));
        let none = std::collections::HashSet::new();
        assert_eq!(
            evict_by_share(all.clone(), 0, 5, &none),
            vec!["flood0", "flood1"],
            "the flood evicts its own"
        );
        assert_eq!(
            evict_by_share(all.clone(), 3, 5, &none),
            vec!["victim", "flood0"],
            "age still comes first"
        );
        let leased = std::collections::HashSet::from(["flood0".to_string()]);
        assert_eq!(
            evict_by_share(all.clone(), 0, 5, &leased),
            vec!["flood1", "flood2"],
            "a leased original stays, and still counts"
        );
        // Equal shares: the older goes first.
        let even =
            vec![("a".to_string(), original(1, 2, "p")), ("b".to_string(), original(2, 2, "q"))];
        assert_eq!(evict_by_share(even, 0, 3, &none), vec!["a"]);
        assert!(evict_by_share(all, 0, 100, &none).is_empty());
    }
}
