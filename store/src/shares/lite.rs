//! The SQLite statements.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{Share, CARD, COLUMNS};
use crate::{sqlite::SqliteDb, Owner, StoreError};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Share> {
    Ok(Share {
        token: r.get(0)?,
        owner: r.get(1)?,
        conversation: r.get(2)?,
        title: r.get(3)?,
        snapshot: r.get(4)?,
        include_images: r.get(5)?,
        link_preview: r.get(6)?,
        created_ms: r.get(7)?,
        updated_ms: r.get(8)?,
        expires_ms: r.get(9)?,
        revoked_ms: r.get(10)?,
    })
}

fn owner_of(tx: &Transaction<'_>, token: &str) -> rusqlite::Result<Option<Owner>> {
    tx.query_row("SELECT owner FROM shares WHERE token = ?1", [token], |r| r.get(0)).optional()
}

pub(super) async fn put_share(
    db: &SqliteDb,
    share: Share,
    images: Vec<Vec<u8>>,
) -> Result<bool, StoreError> {
    db.with(move |c| {
        let tx = c.transaction()?;
        match owner_of(&tx, &share.token)? {
            Some(owner) if owner != share.owner => return Ok(false),
            Some(_) => {
                tx.execute(
                    "UPDATE shares SET title = ?2, snapshot = ?3, include_images = ?4, \
                     link_preview = ?5, updated_ms = ?6, expires_ms = ?7 WHERE token = ?1",
                    params![
                        share.token,
                        share.title,
                        share.snapshot,
                        share.include_images,
                        share.link_preview,
                        share.updated_ms,
                        share.expires_ms
                    ],
                )?;
                tx.execute("DELETE FROM share_images WHERE token = ?1", [&share.token])?;
            }
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO shares ({COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        share.token,
                        share.owner,
                        share.conversation,
                        share.title,
                        share.snapshot,
                        share.include_images,
                        share.link_preview,
                        share.created_ms,
                        share.updated_ms,
                        share.expires_ms,
                        share.revoked_ms
                    ],
                )?;
            }
        }
        let mut insert =
            tx.prepare_cached("INSERT INTO share_images (token, n, jpeg) VALUES (?1, ?2, ?3)")?;
        for (n, jpeg) in images.iter().enumerate() {
            insert.execute(params![share.token, n as i64, jpeg])?;
        }
        drop(insert);
        tx.commit()?;
        Ok(true)
    })
    .await
}

pub(super) async fn share(db: &SqliteDb, token: &str) -> Result<Option<Share>, StoreError> {
    let token = token.to_string();
    db.with(move |c| {
        c.query_row(&format!("SELECT {COLUMNS} FROM shares WHERE token = ?1"), [token], row)
            .optional()
    })
    .await
}

pub(super) async fn shares_of(db: &SqliteDb, owner: &Owner) -> Result<Vec<Share>, StoreError> {
    let owner = owner.clone();
    db.with(move |c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM shares WHERE owner = ?1 ORDER BY created_ms DESC, token"
        ))?;
        let rows = stmt.query_map(params![owner], row)?;
        rows.collect()
    })
    .await
}

pub(super) async fn revoke(
    db: &SqliteDb,
    owner: &Owner,
    token: &str,
    conversation: Option<String>,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let (owner, token) = (owner.clone(), token.to_string());
    db.with(move |c| {
        let tx = c.transaction()?;
        let tokens: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT token FROM shares WHERE owner = ?1 AND revoked_ms IS NULL \
                 AND ((?2 IS NULL AND token = ?3) OR conversation = ?2)",
            )?;
            let rows = stmt.query_map(params![owner, conversation, token], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for token in &tokens {
            tx.execute(
                "UPDATE shares SET revoked_ms = ?2 WHERE token = ?1",
                params![token, now_ms],
            )?;
            tx.execute("DELETE FROM share_images WHERE token = ?1", [token])?;
        }
        tx.commit()?;
        Ok(tokens.len() as u64)
    })
    .await
}

pub(super) async fn image(
    db: &SqliteDb,
    token: &str,
    n: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let token = token.to_string();
    db.with(move |c| {
        c.query_row(
            "SELECT jpeg FROM share_images WHERE token = ?1 AND n = ?2",
            params![token, n],
            |r| r.get(0),
        )
        .optional()
    })
    .await
}

pub(super) async fn put_card(
    db: &SqliteDb,
    token: &str,
    made_for_ms: i64,
    jpeg: Vec<u8>,
) -> Result<(), StoreError> {
    let token = token.to_string();
    db.with(move |c| {
        c.execute(
            "INSERT OR REPLACE INTO share_images (token, n, jpeg) \
             SELECT token, ?2, ?3 FROM shares \
             WHERE token = ?1 AND updated_ms = ?4 AND revoked_ms IS NULL",
            params![token, CARD, jpeg, made_for_ms],
        )
        .map(|_| ())
    })
    .await
}

pub(super) async fn file_of_another(
    db: &SqliteDb,
    owner: &Owner,
    uri: &str,
) -> Result<bool, StoreError> {
    let (owner, uri) = (owner.clone(), uri.to_string());
    db.with(move |c| {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM files WHERE uri = ?1 AND owner <> ?2)",
            params![uri, owner],
            |r| r.get(0),
        )
    })
    .await
}
