//! Context caches: the `cachedContents` resources each principal made for a conversation's
//! Files (<https://ai.google.dev/api/caching>) — for which model, holding which Files, until when,
//! charged to which client address. Table `context_caches`.

use crate::{Owner, Store, StoreError};

/// A `cachedContents` resource a session made for a conversation's Files
/// (<https://ai.google.dev/api/caching>): which, for which model, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRow {
    /// The browser session it was made for.
    pub owner: Owner,
    /// Gemini's resource name, `cachedContents/{id}`.
    pub name: String,
    /// The model id it was made for (a cache serves only its own model).
    pub model: String,
    /// Lowercase hex SHA-256 of its File URIs, sorted and newline-joined: the key it is found by.
    pub files_key: String,
    /// The File URIs it holds.
    pub uris: Vec<String>,
    /// Its tokens (`usageMetadata.totalTokenCount`).
    pub tokens: u64,
    /// When Gemini deletes it unless its TTL is extended, ms since the epoch.
    pub expire_ms: i64,
    /// Whose share of the live caches it counts against: an opaque key of the client address
    /// that made it ([`crate::holder_key`]); empty for caches recorded before addresses were.
    pub charged_to: String,
}

impl CacheRow {
    /// The key of a set of File URIs (see [`CacheRow::files_key`]).
    pub fn key_of(uris: &[String]) -> String {
        use sha2::Digest;
        let mut sorted: Vec<&str> = uris.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        hex::encode(sha2::Sha256::digest(sorted.join("\n").as_bytes()))
    }
}

impl Store {
    /// Records a `cachedContents` resource (replacing one of the same owner and name), and
    /// forgets `owner`'s caches that expired before `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_cache(&self, cache: CacheRow, now_ms: i64) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::record_cache(db, cache, now_ms).await,
            Store::Postgres(db) => pg::record_cache(db, cache, now_ms).await,
        }
    }

    /// `owner`'s cache for `model` holding exactly the Files of `files_key`, the
    /// latest-expiring one, if any (expired ones included: the caller checks `expire_ms`).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_cache(
        &self,
        owner: &Owner,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::find_cache(db, owner, model, files_key).await,
            Store::Postgres(db) => pg::find_cache(db, owner, model, files_key).await,
        }
    }

    /// Every cache recorded for `owner`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn caches_of(&self, owner: &Owner) -> Result<Vec<CacheRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::caches_of(db, owner).await,
            Store::Postgres(db) => pg::caches_of(db, owner).await,
        }
    }

    /// How many caches charged to `charged_to` (see [`CacheRow::charged_to`]) live past
    /// `now_ms`, whichever session made them.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn live_caches_charged_to(
        &self,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(db) => lite::live_caches_charged_to(db, charged_to, now_ms).await,
            Store::Postgres(db) => pg::live_caches_charged_to(db, charged_to, now_ms).await,
        }
    }

    /// Forgets `owner`'s cache `name`; false when there was none.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn remove_cache(&self, owner: &Owner, name: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::remove_cache(db, owner, name).await,
            Store::Postgres(db) => pg::remove_cache(db, owner, name).await,
        }
    }

    /// `owner`'s caches holding any of `uris`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn caches_holding(
        &self,
        owner: &Owner,
        uris: &[String],
    ) -> Result<Vec<CacheRow>, StoreError> {
        let all = self.caches_of(owner).await?;
        Ok(all.into_iter().filter(|c| c.uris.iter().any(|u| uris.contains(u))).collect())
    }
}

const CACHE_COLUMNS: &str = "owner, name, model, files_key, uris, tokens, expire_ms, charged_to";

/// The SQLite statements.
mod lite {
    use rusqlite::{params, OptionalExtension};

    use super::{CacheRow, CACHE_COLUMNS};
    use crate::{sqlite::SqliteDb, Owner, StoreError};

    fn cache_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CacheRow> {
        let uris: String = r.get(4)?;
        Ok(CacheRow {
            owner: r.get(0)?,
            name: r.get(1)?,
            model: r.get(2)?,
            files_key: r.get(3)?,
            uris: uris.lines().map(str::to_string).collect(),
            tokens: crate::sqlite::unsigned(r.get(5)?),
            expire_ms: r.get(6)?,
            charged_to: r.get(7)?,
        })
    }

    pub(super) async fn record_cache(
        db: &SqliteDb,
        cache: CacheRow,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        db.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM context_caches WHERE owner = ?1 AND expire_ms < ?2",
                params![cache.owner, now_ms],
            )?;
            tx.execute(
                &format!("INSERT OR REPLACE INTO context_caches ({CACHE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    cache.owner, cache.name, cache.model, cache.files_key, cache.uris.join("\n"),
                    cache.tokens as i64, cache.expire_ms, cache.charged_to
                ],
            )?;
            tx.commit()
        })
        .await
    }

    pub(super) async fn find_cache(
        db: &SqliteDb,
        owner: &Owner,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, StoreError> {
        let (owner, model, key) = (owner.to_string(), model.to_string(), files_key.to_string());
        db.with(move |c| {
            c.query_row(
                &format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = ?1 AND model = ?2 AND files_key = ?3 ORDER BY expire_ms DESC LIMIT 1"),
                params![owner, model, key],
                cache_row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn caches_of(
        db: &SqliteDb,
        owner: &Owner,
    ) -> Result<Vec<CacheRow>, StoreError> {
        let owner = owner.to_string();
        db.with(move |c| {
            let mut stmt =
                c.prepare(&format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = ?1"))?;
            let rows = stmt.query_map(params![owner], cache_row)?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn live_caches_charged_to(
        db: &SqliteDb,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let charged_to = charged_to.to_string();
        db.with(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM context_caches WHERE charged_to = ?1 AND expire_ms > ?2",
                params![charged_to, now_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
        })
        .await
    }

    pub(super) async fn remove_cache(
        db: &SqliteDb,
        owner: &Owner,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (owner, name) = (owner.to_string(), name.to_string());
        db.with(move |c| {
            c.execute(
                "DELETE FROM context_caches WHERE owner = ?1 AND name = ?2",
                params![owner, name],
            )
            .map(|n| n > 0)
        })
        .await
    }
}

/// The PostgreSQL statements.
mod pg {
    use tokio_postgres::Row;

    use super::{CacheRow, CACHE_COLUMNS};
    use crate::{
        postgres::{bigint, PgDb},
        Owner, StoreError,
    };

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

    pub(super) async fn record_cache(
        db: &PgDb,
        cache: CacheRow,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = db.pool.get().await?;
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
        db: &PgDb,
        owner: &Owner,
        model: &str,
        files_key: &str,
    ) -> Result<Option<CacheRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!(
            "SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = $1 AND model = $2 \
             AND files_key = $3 ORDER BY expire_ms DESC LIMIT 1"
        );
        let row = client.query_opt(&sql, &[&owner, &model, &files_key]).await?;
        Ok(row.as_ref().map(cache_row))
    }

    pub(super) async fn caches_of(db: &PgDb, owner: &Owner) -> Result<Vec<CacheRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!("SELECT {CACHE_COLUMNS} FROM context_caches WHERE owner = $1");
        let rows = client.query(&sql, &[&owner]).await?;
        Ok(rows.iter().map(cache_row).collect())
    }

    pub(super) async fn live_caches_charged_to(
        db: &PgDb,
        charged_to: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM context_caches WHERE charged_to = $1 AND expire_ms > $2",
                &[&charged_to, &now_ms],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
    }

    pub(super) async fn remove_cache(
        db: &PgDb,
        owner: &Owner,
        name: &str,
    ) -> Result<bool, StoreError> {
        let client = db.pool.get().await?;
        let removed = client
            .execute("DELETE FROM context_caches WHERE owner = $1 AND name = $2", &[&owner, &name])
            .await?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::owner;

    /// What every backend must do with `cachedContents` records.
    async fn caches_belong_to_their_owner(store: &Store) {
        let uris = vec!["u2".to_string(), "u1".to_string()];
        let cache = |name: &str, expire_ms| CacheRow {
            owner: owner("alice"),
            name: name.into(),
            model: "gemini-2.5-flash".into(),
            files_key: CacheRow::key_of(&uris),
            uris: uris.clone(),
            tokens: 30_000,
            expire_ms,
            charged_to: "addr".into(),
        };
        store.record_cache(cache("cachedContents/old", 5), 0).await.unwrap();
        store.record_cache(cache("cachedContents/new", 50), 0).await.unwrap();
        let key = CacheRow::key_of(&["u1".to_string(), "u2".to_string(), "u1".to_string()]);
        assert_eq!(key, cache("x", 0).files_key, "the key ignores order and repeats");
        let found = store.find_cache(&owner("alice"), "gemini-2.5-flash", &key).await.unwrap();
        assert_eq!(found, Some(cache("cachedContents/new", 50)), "the latest-expiring one");
        assert!(store.find_cache(&owner("bob"), "gemini-2.5-flash", &key).await.unwrap().is_none());
        assert!(store.find_cache(&owner("alice"), "gemini-2.5-pro", &key).await.unwrap().is_none());
        assert_eq!(store.caches_holding(&owner("alice"), &["u1".into()]).await.unwrap().len(), 2);
        assert!(store.caches_holding(&owner("alice"), &["u3".into()]).await.unwrap().is_empty());
        assert!(store.caches_holding(&owner("bob"), &["u1".into()]).await.unwrap().is_empty());
        // Recording at time 10 forgets the one that expired at 5.
        store.record_cache(cache("cachedContents/new", 60), 10).await.unwrap();
        assert_eq!(store.caches_holding(&owner("alice"), &["u1".into()]).await.unwrap().len(), 1);
        assert!(!store.remove_cache(&owner("bob"), "cachedContents/new").await.unwrap());
        assert_eq!(store.live_caches_charged_to("addr", 10).await.unwrap(), 1);
        assert_eq!(store.live_caches_charged_to("addr", 60).await.unwrap(), 0, "expired");
        assert_eq!(store.live_caches_charged_to("other", 10).await.unwrap(), 0);
        assert!(store.remove_cache(&owner("alice"), "cachedContents/new").await.unwrap());
        assert!(store
            .find_cache(&owner("alice"), "gemini-2.5-flash", &key)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        caches_belong_to_their_owner(&Store::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("caches").await else { return };
        caches_belong_to_their_owner(&Store::connect(&url.parse().unwrap()).await.unwrap()).await;
    }
}
