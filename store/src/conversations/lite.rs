//! The SQLite statements. The one connection is the account's turn: a write reads, decides
//! and writes in one transaction with nothing in between.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    changes, Conversation, Decision, Listed, Message, Pulled, Written, COLUMNS, PULL_ROWS,
};
use crate::{
    principal::AccountId,
    sqlite::{unsigned, SqliteDb},
    StoreError,
};

/// A conversation row (no messages) and its stored bytes.
fn head(r: &Row) -> rusqlite::Result<(Conversation, u64)> {
    Ok((
        Conversation {
            id: r.get(0)?,
            revision: r.get(1)?,
            changed: r.get(2)?,
            title: r.get(3)?,
            meta: r.get(4)?,
            created_ms: r.get(5)?,
            updated_ms: r.get(6)?,
            deleted_ms: r.get(7)?,
            purged: r.get(8)?,
            messages: Vec::new(),
        },
        unsigned(r.get(9)?),
    ))
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

pub(super) fn account_state(c: &Connection, account: &str) -> rusqlite::Result<(i64, u64)> {
    let state = c
        .query_row("SELECT cursor, bytes FROM sync_accounts WHERE account = ?1", [account], |r| {
            Ok((r.get(0)?, unsigned(r.get(1)?)))
        })
        .optional()?;
    Ok(state.unwrap_or((0, 0)))
}

fn head_of(
    c: &Connection,
    account: &str,
    id: &str,
) -> rusqlite::Result<Option<(Conversation, u64)>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM conversations WHERE account = ?1 AND id = ?2"),
        [account, id],
        head,
    )
    .optional()
}

fn messages(c: &Connection, account: &str, id: &str) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, revision, body FROM conversation_messages \
         WHERE account = ?1 AND conversation = ?2 ORDER BY position",
    )?;
    let rows = stmt.query_map([account, id], |r| {
        Ok(Message { id: r.get(0)?, revision: r.get(1)?, body: r.get(2)? })
    })?;
    rows.collect()
}

pub(super) fn conversation(
    c: &Connection,
    account: &str,
    id: &str,
) -> rusqlite::Result<Option<Conversation>> {
    let Some((mut conversation, _)) = head_of(c, account, id)? else { return Ok(None) };
    conversation.messages = messages(c, account, id)?;
    Ok(Some(conversation))
}

fn save_account(c: &Connection, account: &str, cursor: i64, bytes: u64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO sync_accounts (account, cursor, bytes) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account) DO UPDATE SET cursor = excluded.cursor, bytes = excluded.bytes",
        params![account, cursor, i64::try_from(bytes).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

pub(super) async fn write<T: Send + 'static>(
    db: &SqliteDb,
    account: AccountId,
    id: String,
    decide: impl FnOnce(Option<&Conversation>, u64) -> Decision<T> + Send + 'static,
) -> Result<Written<T>, StoreError> {
    db.with(move |c| {
        let account = account.as_str();
        let tx = c.transaction()?;
        let (mut cursor, mut bytes) = account_state(&tx, account)?;
        let stored = conversation(&tx, account, &id)?;
        let (list, outcome) = match decide(stored.as_ref(), bytes) {
            Decision::Keep(outcome) => return Ok(Written { outcome, cursor, bytes }),
            Decision::Write(list, outcome) => (list, outcome),
        };
        for mut new in list {
            let before = if new.id == id {
                stored.as_ref()
            } else {
                // Another conversation (a fork) is written whole.
                tx.execute(
                    "DELETE FROM conversation_messages WHERE account = ?1 AND conversation = ?2",
                    [account, &new.id],
                )?;
                None
            };
            let old_bytes = match before {
                Some(stored) => stored.bytes(),
                None => head_of(&tx, account, &new.id)?.map_or(0, |(_, b)| b),
            };
            cursor += 1;
            new.changed = cursor;
            let new_bytes = new.bytes();
            tx.execute(
                &format!(
                    "INSERT INTO conversations (account, {COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (account, id) DO UPDATE SET revision = excluded.revision, \
                     changed = excluded.changed, title = excluded.title, meta = excluded.meta, \
                     created_ms = excluded.created_ms, updated_ms = excluded.updated_ms, \
                     deleted_ms = excluded.deleted_ms, purged = excluded.purged, \
                     bytes = excluded.bytes"
                ),
                params![
                    account,
                    new.id,
                    new.revision,
                    new.changed,
                    new.title,
                    new.meta,
                    new.created_ms,
                    new.updated_ms,
                    new.deleted_ms,
                    new.purged,
                    i64::try_from(new_bytes).unwrap_or(i64::MAX)
                ],
            )?;
            let changes = changes(before, &new);
            for removed in &changes.removed {
                tx.execute(
                    "DELETE FROM conversation_messages \
                     WHERE account = ?1 AND conversation = ?2 AND id = ?3",
                    [account, &new.id, removed],
                )?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO conversation_messages \
                 (account, conversation, id, position, revision, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (account, conversation, id) DO UPDATE SET \
                 position = excluded.position, revision = excluded.revision, body = excluded.body",
            )?;
            for (position, m) in &changes.upserts {
                upsert.execute(params![account, new.id, m.id, position, m.revision, m.body])?;
            }
            drop(upsert);
            bytes = (bytes + new_bytes).saturating_sub(old_bytes);
        }
        save_account(&tx, account, cursor, bytes)?;
        tx.commit()?;
        Ok(Written { outcome, cursor, bytes })
    })
    .await
}

pub(super) async fn pull(
    db: &SqliteDb,
    account: String,
    since: i64,
    max_bytes: u64,
) -> Result<Pulled, StoreError> {
    db.with(move |c| {
        let (account_cursor, _) = account_state(c, &account)?;
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM conversations WHERE account = ?1 AND changed > ?2 \
             ORDER BY changed LIMIT ?3"
        ))?;
        let rows: Vec<(Conversation, u64)> = stmt
            .query_map(params![account, since, PULL_ROWS as i64 + 1], head)?
            .collect::<rusqlite::Result<_>>()?;
        let taken = super::take_page(&rows, max_bytes);
        let more = taken < rows.len();
        let mut conversations = Vec::with_capacity(taken);
        for (mut conversation, _) in rows.into_iter().take(taken) {
            if conversation.deleted_ms.is_none() {
                conversation.messages = messages(c, &account, &conversation.id)?;
            }
            conversations.push(conversation);
        }
        let cursor = match (more, conversations.last()) {
            (true, Some(last)) => last.changed,
            _ => account_cursor.max(conversations.last().map_or(0, |c| c.changed)),
        };
        Ok(Pulled { conversations, cursor, more })
    })
    .await
}

pub(super) async fn set_deleted(
    db: &SqliteDb,
    account: String,
    id: String,
    deleted_ms: Option<i64>,
) -> Result<Option<Listed>, StoreError> {
    db.with(move |c| {
        let tx = c.transaction()?;
        let Some((mut row, bytes)) = head_of(&tx, &account, &id)? else { return Ok(None) };
        if row.purged {
            return Ok(None);
        }
        if row.deleted_ms.is_some() == deleted_ms.is_some() {
            return Ok(Some(listed((row, bytes))));
        }
        let (cursor, account_bytes) = account_state(&tx, &account)?;
        row.revision += 1;
        row.changed = cursor + 1;
        row.deleted_ms = deleted_ms;
        tx.execute(
            "UPDATE conversations SET revision = ?3, changed = ?4, deleted_ms = ?5 \
             WHERE account = ?1 AND id = ?2",
            params![account, id, row.revision, row.changed, row.deleted_ms],
        )?;
        save_account(&tx, &account, row.changed, account_bytes)?;
        tx.commit()?;
        Ok(Some(listed((row, bytes))))
    })
    .await
}

pub(super) async fn deleted(db: &SqliteDb, account: String) -> Result<Vec<Listed>, StoreError> {
    db.with(move |c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM conversations \
             WHERE account = ?1 AND deleted_ms IS NOT NULL AND NOT purged \
             ORDER BY deleted_ms DESC"
        ))?;
        let rows = stmt.query_map([account], |r| head(r).map(listed))?;
        rows.collect()
    })
    .await
}

pub(super) async fn purge(
    db: &SqliteDb,
    deleted_before_ms: i64,
) -> Result<Vec<(AccountId, String)>, StoreError> {
    db.with(move |c| {
        let tx = c.transaction()?;
        let due: Vec<(String, String, String, u64)> = {
            let mut stmt = tx.prepare(
                "SELECT account, id, meta, bytes FROM conversations \
                 WHERE deleted_ms < ?1 AND NOT purged",
            )?;
            let rows = stmt.query_map([deleted_before_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, unsigned(r.get(3)?)))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut purged = Vec::with_capacity(due.len());
        for (account, id, meta, bytes) in due {
            tx.execute(
                "DELETE FROM conversation_messages WHERE account = ?1 AND conversation = ?2",
                [&account, &id],
            )?;
            tx.execute(
                "UPDATE conversations SET purged = TRUE, title = '', meta = '{}', bytes = 0 \
                 WHERE account = ?1 AND id = ?2",
                [&account, &id],
            )?;
            tx.execute(
                "UPDATE sync_accounts SET bytes = MAX(bytes - ?2, 0) WHERE account = ?1",
                params![account, i64::try_from(bytes).unwrap_or(i64::MAX)],
            )?;
            purged.push((AccountId::from_store(account), meta));
        }
        tx.commit()?;
        Ok(purged)
    })
    .await
}
