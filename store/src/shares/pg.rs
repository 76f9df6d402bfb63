//! The PostgreSQL statements.

use tokio_postgres::Row;

use super::{Share, CARD, COLUMNS};
use crate::{postgres::PgDb, Owner, StoreError};

fn row(r: &Row) -> Share {
    Share {
        token: r.get(0),
        owner: r.get(1),
        conversation: r.get(2),
        title: r.get(3),
        snapshot: r.get(4),
        include_images: r.get(5),
        link_preview: r.get(6),
        created_ms: r.get(7),
        updated_ms: r.get(8),
        expires_ms: r.get(9),
        revoked_ms: r.get(10),
    }
}

pub(super) async fn put_share(
    db: &PgDb,
    share: Share,
    images: Vec<Vec<u8>>,
) -> Result<bool, StoreError> {
    let mut client = db.pool.get().await?;
    let tx = client.transaction().await?;
    let owner: Option<Owner> = tx
        .query_opt("SELECT owner FROM shares WHERE token = $1 FOR UPDATE", &[&share.token])
        .await?
        .map(|r| r.get(0));
    match owner {
        Some(owner) if owner != share.owner => return Ok(false),
        Some(_) => {
            tx.execute(
                "UPDATE shares SET title = $2, snapshot = $3, include_images = $4, \
                 link_preview = $5, updated_ms = $6, expires_ms = $7 WHERE token = $1",
                &[
                    &share.token,
                    &share.title,
                    &share.snapshot,
                    &share.include_images,
                    &share.link_preview,
                    &share.updated_ms,
                    &share.expires_ms,
                ],
            )
            .await?;
            tx.execute("DELETE FROM share_images WHERE token = $1", &[&share.token]).await?;
        }
        None => {
            tx.execute(
                &format!(
                    "INSERT INTO shares ({COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &share.token,
                    &share.owner,
                    &share.conversation,
                    &share.title,
                    &share.snapshot,
                    &share.include_images,
                    &share.link_preview,
                    &share.created_ms,
                    &share.updated_ms,
                    &share.expires_ms,
                    &share.revoked_ms,
                ],
            )
            .await?;
        }
    }
    let insert =
        tx.prepare("INSERT INTO share_images (token, n, jpeg) VALUES ($1, $2, $3)").await?;
    for (n, jpeg) in images.iter().enumerate() {
        tx.execute(&insert, &[&share.token, &(n as i64), jpeg]).await?;
    }
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn share(db: &PgDb, token: &str) -> Result<Option<Share>, StoreError> {
    let client = db.pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM shares WHERE token = $1");
    Ok(client.query_opt(&sql, &[&token]).await?.as_ref().map(row))
}

pub(super) async fn shares_of(db: &PgDb, owner: &Owner) -> Result<Vec<Share>, StoreError> {
    let client = db.pool.get().await?;
    let sql =
        format!("SELECT {COLUMNS} FROM shares WHERE owner = $1 ORDER BY created_ms DESC, token");
    Ok(client.query(&sql, &[&owner]).await?.iter().map(row).collect())
}

pub(super) async fn revoke(
    db: &PgDb,
    owner: &Owner,
    token: &str,
    conversation: Option<String>,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut client = db.pool.get().await?;
    let tx = client.transaction().await?;
    let tokens: Vec<String> = tx
        .query(
            "UPDATE shares SET revoked_ms = $4 WHERE owner = $1 AND revoked_ms IS NULL \
             AND (($2::TEXT IS NULL AND token = $3) OR conversation = $2) RETURNING token",
            &[&owner, &conversation, &token, &now_ms],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute("DELETE FROM share_images WHERE token = ANY($1)", &[&tokens]).await?;
    tx.commit().await?;
    Ok(tokens.len() as u64)
}

pub(super) async fn image(db: &PgDb, token: &str, n: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let client = db.pool.get().await?;
    let row = client
        .query_opt("SELECT jpeg FROM share_images WHERE token = $1 AND n = $2", &[&token, &n])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn put_card(
    db: &PgDb,
    token: &str,
    made_for_ms: i64,
    jpeg: Vec<u8>,
) -> Result<(), StoreError> {
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO share_images (token, n, jpeg) \
             SELECT token, $2, $3 FROM shares \
             WHERE token = $1 AND updated_ms = $4 AND revoked_ms IS NULL \
             ON CONFLICT (token, n) DO UPDATE SET jpeg = EXCLUDED.jpeg",
            &[&token, &CARD, &jpeg, &made_for_ms],
        )
        .await?;
    Ok(())
}

pub(super) async fn file_of_another(
    db: &PgDb,
    owner: &Owner,
    uri: &str,
) -> Result<bool, StoreError> {
    let client = db.pool.get().await?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM files WHERE uri = $1 AND owner <> $2)",
            &[&uri, &owner],
        )
        .await?;
    Ok(row.get(0))
}
