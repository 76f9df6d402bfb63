//! The PostgreSQL statements, and the one connection per process that listens for other
//! replicas' writes.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Row};

use super::{
    changes, hub::CHANNEL, Conversation, Decision, Listed, Message, Pulled, Written, COLUMNS,
    PULL_ROWS,
};
use crate::{
    postgres::{bigint, PgDb},
    principal::AccountId,
    sqlite::unsigned,
    StoreError,
};

/// A conversation row (no messages) and its stored bytes.
fn head(r: &Row) -> (Conversation, u64) {
    (
        Conversation {
            id: r.get(0),
            revision: r.get(1),
            changed: r.get(2),
            title: r.get(3),
            meta: r.get(4),
            created_ms: r.get(5),
            updated_ms: r.get(6),
            deleted_ms: r.get(7),
            purged: r.get(8),
            messages: Vec::new(),
        },
        unsigned(r.get(9)),
    )
}

fn listed((c, bytes): (Conversation, u64)) -> Listed {
    Listed {
        id: c.id,
        revision: c.revision,
        changed: c.changed,
        title: c.title,
        updated_ms: c.updated_ms,
        deleted_ms: c.deleted_ms,
        bytes,
    }
}

pub(super) async fn account_state(
    client: &impl GenericClient,
    account: &str,
) -> Result<(i64, u64), StoreError> {
    let row = client
        .query_opt("SELECT cursor, bytes FROM sync_accounts WHERE account = $1", &[&account])
        .await?;
    Ok(row.map_or((0, 0), |r| (r.get(0), unsigned(r.get(1)))))
}

async fn head_of(
    client: &impl GenericClient,
    account: &str,
    id: &str,
) -> Result<Option<(Conversation, u64)>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM conversations WHERE account = $1 AND id = $2");
    Ok(client.query_opt(&sql, &[&account, &id]).await?.as_ref().map(head))
}

pub(super) async fn conversation(
    client: &impl GenericClient,
    account: &str,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let Some((mut conversation, _)) = head_of(client, account, id).await? else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT id, revision, body FROM conversation_messages \
             WHERE account = $1 AND conversation = $2 ORDER BY position",
            &[&account, &id],
        )
        .await?;
    conversation.messages =
        rows.iter().map(|r| Message { id: r.get(0), revision: r.get(1), body: r.get(2) }).collect();
    Ok(Some(conversation))
}

async fn save_account(
    client: &impl GenericClient,
    account: &str,
    cursor: i64,
    bytes: u64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO sync_accounts (account, cursor, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (account) DO UPDATE SET cursor = excluded.cursor, bytes = excluded.bytes",
            &[&account, &cursor, &bigint(bytes)],
        )
        .await?;
    // Delivered to every listening replica when the transaction commits, never before.
    client.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("{account} {cursor}")]).await?;
    Ok(())
}

/// Takes `account`'s turn until the transaction ends.
async fn lock_account(client: &impl GenericClient, account: &str) -> Result<(), StoreError> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('parley:sync\n' || $1, 0))",
            &[&account],
        )
        .await?;
    Ok(())
}

pub(super) async fn write<T>(
    db: &PgDb,
    account: &AccountId,
    id: &str,
    decide: impl FnOnce(Option<&Conversation>, u64) -> Decision<T>,
) -> Result<Written<T>, StoreError> {
    let account = account.as_str();
    let mut client = db.pool.get().await?;
    let tx = client.transaction().await?;
    lock_account(&tx, account).await?;
    let (mut cursor, mut bytes) = account_state(&tx, account).await?;
    let stored = conversation(&tx, account, id).await?;
    let (list, outcome) = match decide(stored.as_ref(), bytes) {
        Decision::Keep(outcome) => return Ok(Written { outcome, cursor, bytes }),
        Decision::Write(list, outcome) => (list, outcome),
    };
    for mut new in list {
        let before = if new.id == id {
            stored.as_ref()
        } else {
            tx.execute(
                "DELETE FROM conversation_messages WHERE account = $1 AND conversation = $2",
                &[&account, &new.id],
            )
            .await?;
            None
        };
        let old_bytes = match before {
            Some(stored) => stored.bytes(),
            None => head_of(&tx, account, &new.id).await?.map_or(0, |(_, b)| b),
        };
        cursor += 1;
        new.changed = cursor;
        let new_bytes = new.bytes();
        tx.execute(
            &format!(
                "INSERT INTO conversations (account, {COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (account, id) DO UPDATE SET revision = excluded.revision, \
                 changed = excluded.changed, title = excluded.title, meta = excluded.meta, \
                 created_ms = excluded.created_ms, updated_ms = excluded.updated_ms, \
                 deleted_ms = excluded.deleted_ms, purged = excluded.purged, \
                 bytes = excluded.bytes"
            ),
            &[
                &account,
                &new.id,
                &new.revision,
                &new.changed,
                &new.title,
                &new.meta,
                &new.created_ms,
                &new.updated_ms,
                &new.deleted_ms,
                &new.purged,
                &bigint(new_bytes),
            ],
        )
        .await?;
        let changes = changes(before, &new);
        if !changes.removed.is_empty() {
            tx.execute(
                "DELETE FROM conversation_messages \
                 WHERE account = $1 AND conversation = $2 AND id = ANY($3)",
                &[&account, &new.id, &changes.removed],
            )
            .await?;
        }
        if !changes.upserts.is_empty() {
            let ids: Vec<&str> = changes.upserts.iter().map(|(_, m)| m.id.as_str()).collect();
            let positions: Vec<i64> = changes.upserts.iter().map(|(p, _)| *p).collect();
            let revisions: Vec<i64> = changes.upserts.iter().map(|(_, m)| m.revision).collect();
            let bodies: Vec<&str> = changes.upserts.iter().map(|(_, m)| m.body.as_str()).collect();
            tx.execute(
                "INSERT INTO conversation_messages \
                 (account, conversation, id, position, revision, body) \
                 SELECT $1, $2, m.id, m.position, m.revision, m.body \
                 FROM unnest($3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[]) \
                 AS m(id, position, revision, body) \
                 ON CONFLICT (account, conversation, id) DO UPDATE SET \
                 position = excluded.position, revision = excluded.revision, body = excluded.body",
                &[&account, &new.id, &ids, &positions, &revisions, &bodies],
            )
            .await?;
        }
        bytes = (bytes + new_bytes).saturating_sub(old_bytes);
    }
    save_account(&tx, account, cursor, bytes).await?;
    tx.commit().await?;
    Ok(Written { outcome, cursor, bytes })
}

pub(super) async fn pull(
    db: &PgDb,
    account: &str,
    since: i64,
    max_bytes: u64,
) -> Result<Pulled, StoreError> {
    let client = db.pool.get().await?;
    let (account_cursor, _) = account_state(&client, account).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations WHERE account = $1 AND changed > $2 \
         ORDER BY changed LIMIT $3"
    );
    let rows = client.query(&sql, &[&account, &since, &(PULL_ROWS as i64 + 1)]).await?;
    let rows: Vec<(Conversation, u64)> = rows.iter().map(head).collect();
    let taken = super::take_page(&rows, max_bytes);
    let more = taken < rows.len();
    let mut conversations: Vec<Conversation> =
        rows.into_iter().take(taken).map(|(c, _)| c).collect();
    let live: Vec<&str> =
        conversations.iter().filter(|c| c.deleted_ms.is_none()).map(|c| c.id.as_str()).collect();
    if !live.is_empty() {
        let messages = client
            .query(
                "SELECT conversation, id, revision, body FROM conversation_messages \
                 WHERE account = $1 AND conversation = ANY($2) ORDER BY conversation, position",
                &[&account, &live],
            )
            .await?;
        let mut by_conversation: std::collections::HashMap<String, Vec<Message>> =
            std::collections::HashMap::new();
        for r in &messages {
            by_conversation.entry(r.get(0)).or_default().push(Message {
                id: r.get(1),
                revision: r.get(2),
                body: r.get(3),
            });
        }
        for conversation in &mut conversations {
            if let Some(messages) = by_conversation.remove(&conversation.id) {
                conversation.messages = messages;
            }
        }
    }
    let cursor = match (more, conversations.last()) {
        (true, Some(last)) => last.changed,
        _ => account_cursor.max(conversations.last().map_or(0, |c| c.changed)),
    };
    Ok(Pulled { conversations, cursor, more })
}

pub(super) async fn set_deleted(
    db: &PgDb,
    account: &str,
    id: &str,
    deleted_ms: Option<i64>,
) -> Result<Option<Listed>, StoreError> {
    let mut client = db.pool.get().await?;
    let tx = client.transaction().await?;
    lock_account(&tx, account).await?;
    let Some((mut row, bytes)) = head_of(&tx, account, id).await? else { return Ok(None) };
    if row.purged {
        return Ok(None);
    }
    if row.deleted_ms.is_some() == deleted_ms.is_some() {
        return Ok(Some(listed((row, bytes))));
    }
    let (cursor, account_bytes) = account_state(&tx, account).await?;
    row.revision += 1;
    row.changed = cursor + 1;
    row.deleted_ms = deleted_ms;
    tx.execute(
        "UPDATE conversations SET revision = $3, changed = $4, deleted_ms = $5 \
         WHERE account = $1 AND id = $2",
        &[&account, &id, &row.revision, &row.changed, &row.deleted_ms],
    )
    .await?;
    save_account(&tx, account, row.changed, account_bytes).await?;
    tx.commit().await?;
    Ok(Some(listed((row, bytes))))
}

pub(super) async fn deleted(db: &PgDb, account: &str) -> Result<Vec<Listed>, StoreError> {
    let client = db.pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations \
         WHERE account = $1 AND deleted_ms IS NOT NULL AND NOT purged ORDER BY deleted_ms DESC"
    );
    Ok(client.query(&sql, &[&account]).await?.iter().map(|r| listed(head(r))).collect())
}

pub(super) async fn purge(
    db: &PgDb,
    deleted_before_ms: i64,
) -> Result<Vec<(AccountId, String)>, StoreError> {
    let mut client = db.pool.get().await?;
    let tx = client.transaction().await?;
    // One statement each: the rows purged, their messages, the accounts' bytes.
    let rows = tx
        .query(
            "WITH due AS (
                SELECT account, id, meta, bytes FROM conversations
                WHERE deleted_ms < $1 AND NOT purged FOR UPDATE
             ), emptied AS (
                UPDATE conversations c SET purged = TRUE, title = '', meta = '{}', bytes = 0
                FROM due WHERE c.account = due.account AND c.id = due.id
             )
             SELECT account, id, meta, bytes FROM due",
            &[&deleted_before_ms],
        )
        .await?;
    let accounts: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.get(1)).collect();
    let bytes: Vec<i64> = rows.iter().map(|r| r.get(3)).collect();
    tx.execute(
        "DELETE FROM conversation_messages m USING unnest($1::TEXT[], $2::TEXT[]) AS d(account, id) \
         WHERE m.account = d.account AND m.conversation = d.id",
        &[&accounts, &ids],
    )
    .await?;
    tx.execute(
        "UPDATE sync_accounts s SET bytes = GREATEST(s.bytes - d.bytes, 0) \
         FROM (SELECT account, SUM(bytes)::BIGINT AS bytes \
               FROM unnest($1::TEXT[], $2::BIGINT[]) AS p(account, bytes) GROUP BY account) d \
         WHERE s.account = d.account",
        &[&accounts, &bytes],
    )
    .await?;
    tx.commit().await?;
    Ok(rows.iter().map(|r| (AccountId::from_store(r.get(0)), r.get(2))).collect())
}

/// Listens for other replicas' writes for as long as the process runs: on each
/// notification the account's subscribers are told; after a failure, it connects again
/// (after 1 s, doubling to 30 s) and announces every followed account's cursor afresh.
pub(crate) async fn listen_forever(db: PgDb) {
    let mut delay = Duration::from_secs(1);
    loop {
        match listen(&db, &mut delay).await {
            Ok(()) => tracing::warn!("the sync listener's connection closed"),
            Err(error) => tracing::warn!(%error, "the sync listener failed"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn listen(db: &PgDb, delay: &mut Duration) -> Result<(), StoreError> {
    let (client, mut connection) = db.config.connect(crate::postgres::tls()?).await?;
    let (tx, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let pump = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the sync listener's connection failed");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    *delay = Duration::from_secs(1);
    // What was written while nobody here listened: each followed account's cursor now.
    let pooled = db.pool.get().await?;
    for account in db.hub.followed() {
        let (cursor, _) = account_state(&pooled, &account).await?;
        db.hub.announce(&account, cursor);
    }
    drop(pooled);
    while let Some(payload) = notifications.recv().await {
        if let Some((account, cursor)) = payload.split_once(' ') {
            if let Ok(cursor) = cursor.parse() {
                db.hub.announce(account, cursor);
            }
        }
    }
    pump.abort();
    drop(client);
    Ok(())
}
