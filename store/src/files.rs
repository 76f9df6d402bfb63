//! Files: which principal uploaded which File, under which upstream identity (Files belong to
//! the key that uploaded them), its name, URI, type, size, SHA-256, the create and expiration
//! times Gemini gave, and where it stands. Table `files`.

use std::collections::HashMap;

use crate::{Owner, Store, StoreError};

/// One uploaded File as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The browser session that uploaded it.
    pub owner: Owner,
    /// Hash of the credential and base URL it was uploaded with.
    pub upstream: String,
    /// Gemini's resource name, `files/{id}`.
    pub name: String,
    /// The File's URI.
    pub uri: String,
    /// MIME type.
    pub mime_type: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// The person's file name.
    pub display_name: String,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// RFC 3339, from the File resource.
    pub create_time: Option<String>,
    /// RFC 3339, from the File resource.
    pub expiration_time: Option<String>,
    /// Where the File stands.
    pub state: FileState,
    /// When it was recorded, ms since the epoch.
    pub recorded_at_ms: i64,
}

/// Where a recorded File stands (kept in the `state` column as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileState {
    /// Gemini holds it (as far as the store knows: its `expirationTime` may have passed).
    Active,
    /// Gone upstream, or counted as gone (past its expiry margin), with nothing in its place.
    Expired,
    /// Gone, and re-uploaded under a new URI: the record with the same owner, upstream and
    /// SHA-256 that is [`FileState::Active`] stands in for it.
    Replaced,
}

impl FileState {
    /// The name kept in the store and shown to the page: `ACTIVE`, `EXPIRED`, `REPLACED`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Active => "ACTIVE",
            FileState::Expired => "EXPIRED",
            FileState::Replaced => "REPLACED",
        }
    }
}

impl std::str::FromStr for FileState {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "ACTIVE" => Ok(FileState::Active),
            "EXPIRED" => Ok(FileState::Expired),
            "REPLACED" => Ok(FileState::Replaced),
            other => Err(format!("unknown file state `{other}`")),
        }
    }
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Store {
    /// Records an upload (replacing an earlier record of the same owner and URI).
    ///
    /// # Errors
    /// [`StoreError`]; nothing is written then.
    pub async fn record(&self, file: FileRow) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::record(db, file).await,
            Store::Postgres(db) => pg::record(db, file).await,
        }
    }

    /// `owner`'s record of the File at `uri` (under whichever upstream identity uploaded it),
    /// if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find(&self, owner: &Owner, uri: &str) -> Result<Option<FileRow>, StoreError> {
        Ok(self.find_many(owner, vec![uri.to_string()]).await?.into_values().next())
    }

    /// `owner`'s newest record of the File named `name` (`files/{id}`), if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_named(
        &self,
        owner: &Owner,
        name: &str,
    ) -> Result<Option<FileRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::find_named(db, owner, name).await,
            Store::Postgres(db) => pg::find_named(db, owner, name).await,
        }
    }

    /// `owner`'s records of the Files at `uris`, by URI, in one query (the check before every
    /// chat request). URIs `owner` has no record of are absent.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn find_many(
        &self,
        owner: &Owner,
        uris: Vec<String>,
    ) -> Result<HashMap<String, FileRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::find_many(db, owner, uris).await,
            Store::Postgres(db) => pg::find_many(db, owner, uris).await,
        }
    }

    /// `owner`'s [`FileState::Active`] Files with this content under `upstream`, newest first:
    /// the candidates for dedup and for what an expired File was replaced by.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn active_copies(
        &self,
        owner: &Owner,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::active_copies(db, owner, upstream, sha256).await,
            Store::Postgres(db) => pg::active_copies(db, owner, upstream, sha256).await,
        }
    }

    /// `owner`'s newest `limit` Files, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list(&self, owner: &Owner, limit: usize) -> Result<Vec<FileRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::list(db, owner, limit).await,
            Store::Postgres(db) => pg::list(db, owner, limit).await,
        }
    }

    /// Sets the state of `owner`'s File at `uri`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_state(
        &self,
        owner: &Owner,
        uri: &str,
        state: FileState,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => lite::set_state(db, owner, uri, state).await,
            Store::Postgres(db) => pg::set_state(db, owner, uri, state).await,
        }
    }

    /// Forgets `owner`'s File at `uri`, and the [`FileState::Replaced`] Files it stood in for;
    /// false when there was none.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn remove(&self, owner: &Owner, uri: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::remove(db, owner, uri).await,
            Store::Postgres(db) => pg::remove(db, owner, uri).await,
        }
    }

    /// True when any record (of any owner) holds content `sha256`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn is_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(db) => lite::is_referenced(db, sha256).await,
            Store::Postgres(db) => pg::is_referenced(db, sha256).await,
        }
    }

    /// Every record (of every owner), in recording order: for copying one store into another.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn all_files(&self) -> Result<Vec<FileRow>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::all_files(db).await,
            Store::Postgres(db) => pg::all_files(db).await,
        }
    }
}

const COLUMNS: &str = "owner, upstream, name, uri, mime_type, size_bytes, display_name, sha256, \
                       create_time, expiration_time, state, recorded_at_ms";

/// The SQLite statements.
mod lite {
    use std::collections::HashMap;

    use rusqlite::{params, OptionalExtension};

    use super::{FileRow, FileState, COLUMNS};
    use crate::{sqlite::SqliteDb, Owner, StoreError};

    impl rusqlite::types::ToSql for FileState {
        fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
            Ok(self.as_str().into())
        }
    }

    impl rusqlite::types::FromSql for FileState {
        fn column_result(
            value: rusqlite::types::ValueRef<'_>,
        ) -> rusqlite::types::FromSqlResult<Self> {
            value
                .as_str()?
                .parse()
                .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
        }
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
        Ok(FileRow {
            owner: r.get(0)?,
            upstream: r.get(1)?,
            name: r.get(2)?,
            uri: r.get(3)?,
            mime_type: r.get(4)?,
            size_bytes: crate::sqlite::unsigned(r.get(5)?),
            display_name: r.get(6)?,
            sha256: r.get(7)?,
            create_time: r.get(8)?,
            expiration_time: r.get(9)?,
            state: r.get(10)?,
            recorded_at_ms: r.get(11)?,
        })
    }

    pub(super) async fn record(db: &SqliteDb, file: FileRow) -> Result<(), StoreError> {
        db.with(move |c| {
            c.execute(
                &format!("INSERT OR REPLACE INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    file.owner, file.upstream, file.name, file.uri, file.mime_type, file.size_bytes as i64,
                    file.display_name, file.sha256, file.create_time, file.expiration_time, file.state,
                    file.recorded_at_ms
                ],
            )
            .map(drop)
        })
        .await
    }

    pub(super) async fn find_named(
        db: &SqliteDb,
        owner: &Owner,
        name: &str,
    ) -> Result<Option<FileRow>, StoreError> {
        let (owner, name) = (owner.to_string(), name.to_string());
        db.with(move |c| {
            c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM files WHERE owner = ?1 AND name = ?2 \
                     ORDER BY recorded_at_ms DESC, id DESC LIMIT 1"
                ),
                params![owner, name],
                row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn find_many(
        db: &SqliteDb,
        owner: &Owner,
        uris: Vec<String>,
    ) -> Result<HashMap<String, FileRow>, StoreError> {
        let owner = owner.to_string();
        db.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 AND uri IN (SELECT value FROM json_each(?2))"
            ))?;
            let uris = serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into());
            let rows = stmt.query_map(params![owner, uris], row)?.map(|r| r.map(|r| (r.uri.clone(), r))).collect();
            rows
        })
        .await
    }

    pub(super) async fn active_copies(
        db: &SqliteDb,
        owner: &Owner,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, StoreError> {
        let (owner, upstream, sha256) =
            (owner.to_string(), upstream.to_string(), sha256.to_string());
        db.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 AND upstream = ?2 AND sha256 = ?3 AND state = 'ACTIVE' \
                 ORDER BY recorded_at_ms DESC, id DESC"
            ))?;
            let rows = stmt.query_map(params![owner, upstream, sha256], row)?.collect();
            rows
        })
        .await
    }

    pub(super) async fn list(
        db: &SqliteDb,
        owner: &Owner,
        limit: usize,
    ) -> Result<Vec<FileRow>, StoreError> {
        let owner = owner.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        db.with(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE owner = ?1 ORDER BY recorded_at_ms DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![owner, limit], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }

    pub(super) async fn set_state(
        db: &SqliteDb,
        owner: &Owner,
        uri: &str,
        state: FileState,
    ) -> Result<(), StoreError> {
        let (owner, uri) = (owner.to_string(), uri.to_string());
        db.with(move |c| {
            c.execute(
                "UPDATE files SET state = ?3 WHERE owner = ?1 AND uri = ?2",
                params![owner, uri, state],
            )
            .map(drop)
        })
        .await
    }

    pub(super) async fn remove(
        db: &SqliteDb,
        owner: &Owner,
        uri: &str,
    ) -> Result<bool, StoreError> {
        let (owner, uri) = (owner.to_string(), uri.to_string());
        db.with(move |c| {
            let tx = c.transaction()?;
            let sha256: Option<String> = tx
                .query_row(
                    "SELECT sha256 FROM files WHERE owner = ?1 AND uri = ?2",
                    params![owner, uri],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(sha256) = sha256 else { return Ok(false) };
            tx.execute("DELETE FROM files WHERE owner = ?1 AND uri = ?2", params![owner, uri])?;
            tx.execute(
                "DELETE FROM files WHERE owner = ?1 AND sha256 = ?2 AND state = 'REPLACED'",
                params![owner, sha256],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn is_referenced(db: &SqliteDb, sha256: &str) -> Result<bool, StoreError> {
        let sha256 = sha256.to_string();
        db.with(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = ?1)",
                params![sha256],
                |r| r.get(0),
            )
        })
        .await
    }

    pub(super) async fn all_files(db: &SqliteDb) -> Result<Vec<FileRow>, StoreError> {
        db.with(move |c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM files ORDER BY id"))?;
            let rows = stmt.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>();
            rows
        })
        .await
    }
}

/// The PostgreSQL statements.
mod pg {
    use std::collections::HashMap;

    use tokio_postgres::Row;

    use super::{FileRow, FileState, COLUMNS};
    use crate::{
        postgres::{bigint, PgDb},
        Owner, StoreError,
    };

    fn row(r: &Row) -> Result<FileRow, StoreError> {
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
            state: state.parse().map_err(StoreError::Corrupt)?,
            recorded_at_ms: r.try_get(11)?,
        })
    }

    pub(super) async fn record(db: &PgDb, f: FileRow) -> Result<(), StoreError> {
        let client = db.pool.get().await?;
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

    pub(super) async fn find_named(
        db: &PgDb,
        owner: &Owner,
        name: &str,
    ) -> Result<Option<FileRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner = $1 AND name = $2 \
             ORDER BY recorded_at_ms DESC, id DESC LIMIT 1"
        );
        client.query_opt(&sql, &[&owner, &name]).await?.as_ref().map(row).transpose()
    }

    pub(super) async fn find_many(
        db: &PgDb,
        owner: &Owner,
        uris: Vec<String>,
    ) -> Result<HashMap<String, FileRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM files WHERE owner = $1 AND uri = ANY($2)");
        let rows = client.query(&sql, &[&owner, &uris]).await?;
        rows.iter().map(|r| row(r).map(|f| (f.uri.clone(), f))).collect()
    }

    pub(super) async fn active_copies(
        db: &PgDb,
        owner: &Owner,
        upstream: &str,
        sha256: &str,
    ) -> Result<Vec<FileRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner = $1 AND upstream = $2 AND sha256 = $3 \
             AND state = 'ACTIVE' ORDER BY recorded_at_ms DESC, id DESC"
        );
        let rows = client.query(&sql, &[&owner, &upstream, &sha256]).await?;
        rows.iter().map(row).collect()
    }

    pub(super) async fn list(
        db: &PgDb,
        owner: &Owner,
        limit: usize,
    ) -> Result<Vec<FileRow>, StoreError> {
        let client = db.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner = $1 ORDER BY recorded_at_ms DESC, id DESC LIMIT $2"
        );
        let rows = client.query(&sql, &[&owner, &bigint(limit as u64)]).await?;
        rows.iter().map(row).collect()
    }

    pub(super) async fn set_state(
        db: &PgDb,
        owner: &Owner,
        uri: &str,
        state: FileState,
    ) -> Result<(), StoreError> {
        let client = db.pool.get().await?;
        client
            .execute(
                "UPDATE files SET state = $3 WHERE owner = $1 AND uri = $2",
                &[&owner, &uri, &state.as_str()],
            )
            .await?;
        Ok(())
    }

    pub(super) async fn remove(db: &PgDb, owner: &Owner, uri: &str) -> Result<bool, StoreError> {
        let mut client = db.pool.get().await?;
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

    pub(super) async fn is_referenced(db: &PgDb, sha256: &str) -> Result<bool, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_one("SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1)", &[&sha256])
            .await?;
        Ok(row.get(0))
    }

    pub(super) async fn all_files(db: &PgDb) -> Result<Vec<FileRow>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client.query(&format!("SELECT {COLUMNS} FROM files ORDER BY id"), &[]).await?;
        rows.iter().map(row).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::principal::owner;

    pub(crate) fn file(owner: &str, uri: &str) -> FileRow {
        FileRow {
            owner: crate::principal::owner(owner),
            upstream: "up".into(),
            name: "files/abc".into(),
            uri: uri.into(),
            mime_type: "text/plain".into(),
            size_bytes: 5,
            display_name: "a.txt".into(),
            sha256: "00".repeat(32),
            create_time: Some("2026-11-23T10:00:00Z".into()),
            expiration_time: Some("2026-11-25T10:00:00Z".into()),
            state: FileState::Active,
            recorded_at_ms: 1,
        }
    }

    /// What every backend must do with records.
    async fn records_belong_to_their_owner(store: &Store) {
        store.ping().await.unwrap();
        store.record(file("alice", "u1")).await.unwrap();
        assert_eq!(store.find(&owner("alice"), "u1").await.unwrap().unwrap().display_name, "a.txt");
        assert!(store.find(&owner("bob"), "u1").await.unwrap().is_none(), "another session");
        assert_eq!(
            store.active_copies(&owner("alice"), "up", &"00".repeat(32)).await.unwrap().len(),
            1
        );
        let other_key = store.active_copies(&owner("alice"), "other-key", &"00".repeat(32)).await;
        assert!(other_key.unwrap().is_empty(), "another upstream identity");
        assert!(
            store.active_copies(&owner("bob"), "up", &"00".repeat(32)).await.unwrap().is_empty(),
            "another session"
        );
        store.set_state(&owner("alice"), "u1", FileState::Expired).await.unwrap();
        assert_eq!(store.list(&owner("alice"), 10).await.unwrap()[0].state, FileState::Expired);
        assert!(store
            .active_copies(&owner("alice"), "up", &"00".repeat(32))
            .await
            .unwrap()
            .is_empty());
        // A re-upload replaces it; removing the new one removes the old one too.
        store.set_state(&owner("alice"), "u1", FileState::Replaced).await.unwrap();
        store.record(FileRow { recorded_at_ms: 2, ..file("alice", "u2") }).await.unwrap();
        let found = store
            .find_many(&owner("alice"), vec!["u1".into(), "u2".into(), "u3".into()])
            .await
            .unwrap();
        assert_eq!((found.len(), found["u1"].state), (2, FileState::Replaced));
        assert_eq!(
            store.list(&owner("alice"), 1).await.unwrap()[0].uri,
            "u2",
            "newest first, limited"
        );
        assert_eq!(store.all_files().await.unwrap().len(), 2);
        assert!(store.is_referenced(&"00".repeat(32)).await.unwrap());
        assert!(store.remove(&owner("alice"), "u2").await.unwrap());
        assert!(
            store.find(&owner("alice"), "u1").await.unwrap().is_none(),
            "the replaced record went with it"
        );
        assert!(!store.is_referenced(&"00".repeat(32)).await.unwrap());
        // Recording the same owner and URI again replaces the record.
        store.record(file("alice", "u1")).await.unwrap();
        store
            .record(FileRow { display_name: "b.txt".into(), ..file("alice", "u1") })
            .await
            .unwrap();
        assert_eq!(store.list(&owner("alice"), 10).await.unwrap().len(), 1);
        assert_eq!(store.find(&owner("alice"), "u1").await.unwrap().unwrap().display_name, "b.txt");
        assert!(store.remove(&owner("alice"), "u1").await.unwrap());
        assert!(!store.remove(&owner("alice"), "u1").await.unwrap());
        assert!(store.list(&owner("alice"), 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        records_belong_to_their_owner(&Store::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("files").await else { return };
        records_belong_to_their_owner(&Store::connect(&url.parse().unwrap()).await.unwrap()).await;
    }
}
