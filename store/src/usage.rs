//! What the site's Gemini key was spent on, and what is held for calls under way: the ledger
//! (table `usage_days`, one row per scope, UTC day and model), the holds of calls in flight
//! (`budget_holds`), and the budgets operators set for one scope (`budget_overrides`).
//!
//! A *scope* is whom a call is charged to, as text: `site`, `account:{id}`,
//! `session:{hash}` or `address:{hash}` (see [`Scope`]). One call is charged to several at
//! once (the person's own, their address's when anonymous, and the site's).
//!
//! A reservation ([`Store::reserve`]) is decided under a lock per limited scope (PostgreSQL:
//! a transaction-scoped advisory lock, so replicas take turns; SQLite: its one connection), so
//! two calls can never both take the last of a budget. A hold lasts until it is settled
//! ([`Store::settle`], in the same transaction as the ledger's rows) or, when a process died
//! with it, until its `expires_ms`.

use crate::{Store, StoreError};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Days the ledger keeps anonymous sessions' and addresses' rows (a month's budget needs 31).
pub const KEEP_ANONYMOUS_DAYS: i64 = 62;

/// The UTC day of `ms` since the epoch: days since 1970-01-01.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Whom a call is charged to; its text form is the ledger's `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The whole site.
    Site,
    /// A signed-in account (its id).
    Account(String),
    /// An anonymous session (the hash of its id: the ledger never holds a session id).
    Session(String),
    /// An anonymous visitor's address (its [`crate::holder_key`], IPv6 by /64).
    Address(String),
}

impl Scope {
    /// The scope of an anonymous session `id` (keyed by a hash of it).
    pub fn session(id: &crate::SessionId) -> Scope {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(format!("parley usage\0{id}").as_bytes());
        Scope::Session(hex::encode(&hash[..12]))
    }

    /// The scope of the client address `address` (hashed by [`crate::holder_key`]).
    pub fn address(address: &crate::ClientAddress) -> Scope {
        Scope::Address(crate::holder_key(&address.0))
    }

    /// The scope as the ledger writes it.
    pub fn key(&self) -> String {
        match self {
            Scope::Site => "site".into(),
            Scope::Account(id) => format!("account:{id}"),
            Scope::Session(hash) => format!("session:{hash}"),
            Scope::Address(hash) => format!("address:{hash}"),
        }
    }

    /// The scope written as `key`, if it is one.
    pub fn parse(key: &str) -> Option<Scope> {
        if key == "site" {
            return Some(Scope::Site);
        }
        let (kind, rest) = key.split_once(':')?;
        match kind {
            "account" => Some(Scope::Account(rest.into())),
            "session" => Some(Scope::Session(rest.into())),
            "address" => Some(Scope::Address(rest.into())),
            _ => None,
        }
    }
}

/// Tokens and spend, as Gemini's `usageMetadata` gives them, summed.
///
/// `prompt_tokens` is Gemini's `promptTokenCount`, which includes the `cached_tokens` read from
/// a context cache (<https://ai.google.dev/api/generate-content#UsageMetadata>);
/// `cache_write_tokens` are the tokens put into a new context cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls to Gemini.
    pub calls: i64,
    /// `promptTokenCount`.
    pub prompt_tokens: i64,
    /// `cachedContentTokenCount` (part of the prompt).
    pub cached_tokens: i64,
    /// `candidatesTokenCount`.
    pub output_tokens: i64,
    /// `thoughtsTokenCount`.
    pub thinking_tokens: i64,
    /// Tokens written into context caches (`cachedContents.create`).
    pub cache_write_tokens: i64,
    /// What it cost, in nano-dollars (10⁻⁹ US dollars).
    pub nano_usd: i64,
}

impl Usage {
    /// The tokens a token budget counts: prompt (cached ones included), output, thinking and
    /// those written into caches.
    pub fn tokens(&self) -> i64 {
        self.prompt_tokens + self.output_tokens + self.thinking_tokens + self.cache_write_tokens
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Usage) {
        self.calls += other.calls;
        self.prompt_tokens += other.prompt_tokens;
        self.cached_tokens += other.cached_tokens;
        self.output_tokens += other.output_tokens;
        self.thinking_tokens += other.thinking_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.nano_usd += other.nano_usd;
    }
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Nano-dollars.
    NanoUsd,
    /// Tokens ([`Usage::tokens`]).
    Tokens,
}

/// One scope's budget for a reservation: at most `amount` (in `unit`) from the UTC day
/// `since_day` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The scope.
    pub scope: Scope,
    /// The first day of the period.
    pub since_day: i64,
    /// What it counts.
    pub unit: Unit,
    /// How much the period allows.
    pub amount: i64,
}

/// A reservation to make: `nano_usd` and `tokens` held against every limit until settled or
/// `expires_ms`.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The hold's id (random, from the caller).
    pub id: String,
    /// The budgets it must fit in.
    pub limits: Vec<Limit>,
    /// What it holds, in nano-dollars.
    pub nano_usd: i64,
    /// What it holds, in tokens.
    pub tokens: i64,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// When the hold lapses unless settled, ms since the epoch.
    pub expires_ms: i64,
}

/// A scope's period so far: settled, and held by calls under way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// The ledger's sum over the period.
    pub settled: Usage,
    /// Live holds, nano-dollars.
    pub held_nano_usd: i64,
    /// Live holds, tokens.
    pub held_tokens: i64,
}

impl Spent {
    /// Settled and held, in `unit`.
    pub fn in_unit(&self, unit: Unit) -> i64 {
        match unit {
            Unit::NanoUsd => self.settled.nano_usd + self.held_nano_usd,
            Unit::Tokens => self.settled.tokens() + self.held_tokens,
        }
    }
}

/// What [`Store::reserve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Held in every limit.
    Held,
    /// `limit` has no room: `spent` (settled and held, in its unit) plus the hold is past it.
    /// Nothing was held.
    Refused {
        /// The limit without room.
        limit: Limit,
        /// What its period holds already, in its unit.
        spent: i64,
    },
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// By UTC day (the key is the day number, as text).
    Day,
    /// By model.
    Model,
    /// By scope.
    Scope,
}

/// Tables `usage_days`, `budget_holds`, `budget_overrides` (migration 8, both backends).
pub(crate) const SCHEMA: &str = "CREATE TABLE usage_days (
        scope TEXT NOT NULL,
        day BIGINT NOT NULL,
        model TEXT NOT NULL,
        calls BIGINT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        cached_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        thinking_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        nano_usd BIGINT NOT NULL,
        PRIMARY KEY (scope, day, model)
    );
    CREATE INDEX usage_days_by_day ON usage_days (day);
    CREATE TABLE budget_holds (
        id TEXT NOT NULL,
        scope TEXT NOT NULL,
        nano_usd BIGINT NOT NULL,
        tokens BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        PRIMARY KEY (scope, id)
    );
    CREATE INDEX budget_holds_by_id ON budget_holds (id);
    CREATE INDEX budget_holds_by_expiry ON budget_holds (expires_ms);
    CREATE TABLE budget_overrides (
        scope TEXT PRIMARY KEY,
        budget TEXT NOT NULL
    );";

/// Adds one charge to a scope's day.
const UPSERT: &str = "INSERT INTO usage_days (scope, day, model, calls, prompt_tokens, \
     cached_tokens, output_tokens, thinking_tokens, cache_write_tokens, nano_usd) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (scope, day, model) DO UPDATE SET calls = usage_days.calls + $4, \
     prompt_tokens = usage_days.prompt_tokens + $5, cached_tokens = usage_days.cached_tokens + $6, \
     output_tokens = usage_days.output_tokens + $7, thinking_tokens = usage_days.thinking_tokens + $8, \
     cache_write_tokens = usage_days.cache_write_tokens + $9, nano_usd = usage_days.nano_usd + $10";

/// A scope's ledger since a day (`$2`), and its holds live at `$3`: one round trip.
const SPENT: &str = "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT), \
     CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(thinking_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(nano_usd), 0) AS BIGINT), \
     (SELECT CAST(COALESCE(SUM(nano_usd), 0) AS BIGINT) FROM budget_holds \
      WHERE scope = $1 AND expires_ms > $3), \
     (SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT) FROM budget_holds \
      WHERE scope = $1 AND expires_ms > $3) \
     FROM usage_days WHERE scope = $1 AND day >= $2";

/// A usage report's statement: grouped by `key`, since a day, scopes starting with a prefix.
fn report_sql(grouping: Grouping) -> String {
    let key = match grouping {
        Grouping::Day => "CAST(day AS TEXT)",
        Grouping::Model => "model",
        Grouping::Scope => "scope",
    };
    format!(
        "SELECT {key}, CAST(SUM(calls) AS BIGINT), CAST(SUM(prompt_tokens) AS BIGINT), \
         CAST(SUM(cached_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), \
         CAST(SUM(thinking_tokens) AS BIGINT), CAST(SUM(cache_write_tokens) AS BIGINT), \
         CAST(SUM(nano_usd) AS BIGINT) FROM usage_days \
         WHERE day >= $1 AND scope LIKE $2 ESCAPE '\\' GROUP BY {key}"
    )
}

impl Store {
    /// Holds `hold`'s amounts in every one of its limits, or in none: refused when one limit's
    /// period (settled and live holds) plus the hold would pass its amount. Decided under each
    /// limited scope's lock, taken in scope order, so concurrent reservations — on any replica
    /// — see each other's holds.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is held then.
    pub async fn reserve(&self, hold: &Hold) -> Result<Reserved, StoreError> {
        let mut hold = hold.clone();
        hold.limits.sort_by(|a, b| a.scope.cmp(&b.scope));
        match self {
            Store::Sqlite(db) => lite::reserve(db, hold).await,
            Store::Postgres(db) => pg::reserve(db, hold).await,
        }
    }

    /// Settles: the hold `hold_id` (if any) is released, and `usage` added to the ledger of
    /// each of `scopes` for `model` on the UTC day of `now_ms`, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`]; nothing is written then.
    pub async fn settle(
        &self,
        hold_id: Option<&str>,
        scopes: &[Scope],
        model: &str,
        usage: &Usage,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let charge = Charge {
            hold: hold_id.map(str::to_string),
            scopes: scopes.iter().map(Scope::key).collect(),
            model: model.to_string(),
            day: day_of(now_ms),
            usage: *usage,
        };
        match self {
            Store::Sqlite(db) => lite::settle(db, charge).await,
            Store::Postgres(db) => pg::settle(db, charge).await,
        }
    }

    /// `scope`'s ledger from the UTC day `since_day` on, and its holds live at `now_ms`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn spent(
        &self,
        scope: &Scope,
        since_day: i64,
        now_ms: i64,
    ) -> Result<Spent, StoreError> {
        match self {
            Store::Sqlite(db) => lite::spent(db, scope.key(), since_day, now_ms).await,
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                pg::spent(&client, &scope.key(), since_day, now_ms).await
            }
        }
    }

    /// The ledger from the UTC day `since_day` on, for the scopes whose key starts with
    /// `scope_prefix` (`""` for all, `"site"`, `"account:"`, …), summed by `grouping`, the
    /// largest spend first (days: in order).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn usage_report(
        &self,
        since_day: i64,
        scope_prefix: &str,
        grouping: Grouping,
    ) -> Result<Vec<(String, Usage)>, StoreError> {
        let like = format!("{}%", scope_prefix.replace(['\\', '%'], "").replace('_', "\\_"));
        let sql = report_sql(grouping);
        let mut rows = match self {
            Store::Sqlite(db) => lite::report(db, sql, since_day, like).await?,
            Store::Postgres(db) => pg::report(db, &sql, since_day, &like).await?,
        };
        match grouping {
            Grouping::Day => rows.sort_by_key(|(day, _)| day.parse::<i64>().unwrap_or(0)),
            _ => rows.sort_by(|a, b| b.1.nano_usd.cmp(&a.1.nano_usd).then(a.0.cmp(&b.0))),
        }
        Ok(rows)
    }

    /// Sets (`Some`, an operator's budget in its text form) or clears `scope`'s own budget.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_budget_override(
        &self,
        scope: &Scope,
        budget: Option<&str>,
    ) -> Result<(), StoreError> {
        let (scope, budget) = (scope.key(), budget.map(str::to_string));
        match self {
            Store::Sqlite(db) => lite::set_override(db, scope, budget).await,
            Store::Postgres(db) => pg::set_override(db, &scope, budget.as_deref()).await,
        }
    }

    /// `scope`'s own budget, in its text form, when an operator set one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn budget_override(&self, scope: &Scope) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(db) => lite::get_override(db, scope.key()).await,
            Store::Postgres(db) => pg::get_override(db, &scope.key()).await,
        }
    }

    /// Gives back the hold `id` (its call was refused: nothing was spent).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn release_hold(&self, id: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM budget_holds WHERE id = $1";
        match self {
            Store::Sqlite(db) => {
                let id = id.to_string();
                db.with(move |c| c.execute(&sql.replace("$1", "?1"), [id])).await.map(|_| ())
            }
            Store::Postgres(db) => {
                db.pool.get().await?.execute(sql, &[&id]).await.map(|_| ()).map_err(Into::into)
            }
        }
    }

    /// Forgets holds that lapsed before `now_ms` (their process never settled them), and the
    /// ledger's rows of anonymous sessions and addresses older than [`KEEP_ANONYMOUS_DAYS`]
    /// (past any budget's period; the site's and accounts' rows stay); how many rows went.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn tidy_usage(&self, now_ms: i64) -> Result<u64, StoreError> {
        let holds = "DELETE FROM budget_holds WHERE expires_ms <= $1";
        let old = "DELETE FROM usage_days WHERE day < $1 \
                   AND (scope LIKE 'session:%' OR scope LIKE 'address:%')";
        let before = day_of(now_ms) - KEEP_ANONYMOUS_DAYS;
        match self {
            Store::Sqlite(db) => db
                .with(move |c| {
                    Ok(c.execute(&holds.replace("$1", "?1"), [now_ms])?
                        + c.execute(&old.replace("$1", "?1"), [before])?)
                })
                .await
                .map(|n| n as u64),
            Store::Postgres(db) => {
                let client = db.pool.get().await?;
                Ok(client.execute(holds, &[&now_ms]).await?
                    + client.execute(old, &[&before]).await?)
            }
        }
    }
}

/// A settlement to write.
struct Charge {
    hold: Option<String>,
    scopes: Vec<String>,
    model: String,
    day: i64,
    usage: Usage,
}

/// The amount of `hold` in `unit`.
fn amount_of(hold: &Hold, unit: Unit) -> i64 {
    match unit {
        Unit::NanoUsd => hold.nano_usd,
        Unit::Tokens => hold.tokens,
    }
}

/// The SQLite statements.
mod lite {
    use rusqlite::{params, OptionalExtension};

    use super::{Charge, Hold, Reserved, Spent, Usage};
    use crate::{sqlite::SqliteDb, StoreError};

    fn lite(sql: &str) -> String {
        (1..=10).rev().fold(sql.to_string(), |s, i| s.replace(&format!("${i}"), &format!("?{i}")))
    }

    fn usage(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Usage> {
        Ok(Usage {
            calls: r.get(at)?,
            prompt_tokens: r.get(at + 1)?,
            cached_tokens: r.get(at + 2)?,
            output_tokens: r.get(at + 3)?,
            thinking_tokens: r.get(at + 4)?,
            cache_write_tokens: r.get(at + 5)?,
            nano_usd: r.get(at + 6)?,
        })
    }

    fn spent_in(
        c: &rusqlite::Connection,
        scope: &str,
        since_day: i64,
        now_ms: i64,
    ) -> rusqlite::Result<Spent> {
        c.query_row(&lite(super::SPENT), params![scope, since_day, now_ms], |r| {
            Ok(Spent { settled: usage(r, 0)?, held_nano_usd: r.get(7)?, held_tokens: r.get(8)? })
        })
    }

    pub(super) async fn reserve(db: &SqliteDb, hold: Hold) -> Result<Reserved, StoreError> {
        db.with(move |c| {
            // The one connection is the lock: nothing else runs between the check and the hold.
            let tx = c.transaction()?;
            for limit in &hold.limits {
                let key = limit.scope.key();
                let spent = spent_in(&tx, &key, limit.since_day, hold.now_ms)?.in_unit(limit.unit);
                if spent.saturating_add(super::amount_of(&hold, limit.unit)) > limit.amount {
                    return Ok(Reserved::Refused { limit: limit.clone(), spent });
                }
            }
            for limit in &hold.limits {
                tx.execute(
                    "INSERT INTO budget_holds (id, scope, nano_usd, tokens, expires_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        hold.id,
                        limit.scope.key(),
                        hold.nano_usd,
                        hold.tokens,
                        hold.expires_ms
                    ],
                )?;
            }
            tx.commit()?;
            Ok(Reserved::Held)
        })
        .await
    }

    pub(super) async fn settle(db: &SqliteDb, charge: Charge) -> Result<(), StoreError> {
        db.with(move |c| {
            let tx = c.transaction()?;
            if let Some(id) = &charge.hold {
                tx.execute("DELETE FROM budget_holds WHERE id = ?1", [id])?;
            }
            let u = charge.usage;
            for scope in &charge.scopes {
                tx.execute(
                    &lite(super::UPSERT),
                    params![
                        scope,
                        charge.day,
                        charge.model,
                        u.calls,
                        u.prompt_tokens,
                        u.cached_tokens,
                        u.output_tokens,
                        u.thinking_tokens,
                        u.cache_write_tokens,
                        u.nano_usd
                    ],
                )?;
            }
            tx.commit()
        })
        .await
    }

    pub(super) async fn spent(
        db: &SqliteDb,
        scope: String,
        since_day: i64,
        now_ms: i64,
    ) -> Result<Spent, StoreError> {
        db.with(move |c| spent_in(c, &scope, since_day, now_ms)).await
    }

    pub(super) async fn report(
        db: &SqliteDb,
        sql: String,
        since_day: i64,
        like: String,
    ) -> Result<Vec<(String, Usage)>, StoreError> {
        db.with(move |c| {
            let mut statement = c.prepare(&lite(&sql))?;
            let rows = statement.query_map(params![since_day, like], |r| {
                Ok((r.get::<_, String>(0)?, usage(r, 1)?))
            })?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn set_override(
        db: &SqliteDb,
        scope: String,
        budget: Option<String>,
    ) -> Result<(), StoreError> {
        db.with(move |c| {
            match budget {
                Some(budget) => c.execute(
                    "INSERT INTO budget_overrides (scope, budget) VALUES (?1, ?2) \
                     ON CONFLICT (scope) DO UPDATE SET budget = excluded.budget",
                    params![scope, budget],
                )?,
                None => c.execute("DELETE FROM budget_overrides WHERE scope = ?1", [scope])?,
            };
            Ok(())
        })
        .await
    }

    pub(super) async fn get_override(
        db: &SqliteDb,
        scope: String,
    ) -> Result<Option<String>, StoreError> {
        db.with(move |c| {
            c.query_row("SELECT budget FROM budget_overrides WHERE scope = ?1", [scope], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }
}

/// The PostgreSQL statements.
mod pg {
    use tokio_postgres::Row;

    use super::{Charge, Hold, Reserved, Spent, Usage};
    use crate::{postgres::PgDb, StoreError};

    fn usage(r: &Row, at: usize) -> Usage {
        Usage {
            calls: r.get(at),
            prompt_tokens: r.get(at + 1),
            cached_tokens: r.get(at + 2),
            output_tokens: r.get(at + 3),
            thinking_tokens: r.get(at + 4),
            cache_write_tokens: r.get(at + 5),
            nano_usd: r.get(at + 6),
        }
    }

    pub(super) async fn spent(
        client: &impl deadpool_postgres::GenericClient,
        scope: &str,
        since_day: i64,
        now_ms: i64,
    ) -> Result<Spent, StoreError> {
        let row = client.query_one(super::SPENT, &[&scope, &since_day, &now_ms]).await?;
        Ok(Spent { settled: usage(&row, 0), held_nano_usd: row.get(7), held_tokens: row.get(8) })
    }

    pub(super) async fn reserve(db: &PgDb, hold: Hold) -> Result<Reserved, StoreError> {
        let mut client = db.pool.get().await?;
        let tx = client.transaction().await?;
        for limit in &hold.limits {
            let key = limit.scope.key();
            // Replicas take turns per scope: the lock lasts until this transaction ends.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('parley:budget\n' || $1, 0))",
                &[&key],
            )
            .await?;
            let spent = spent(&tx, &key, limit.since_day, hold.now_ms).await?.in_unit(limit.unit);
            if spent.saturating_add(super::amount_of(&hold, limit.unit)) > limit.amount {
                return Ok(Reserved::Refused { limit: limit.clone(), spent });
            }
        }
        // One statement for every scope's row: the locks are held for as few round trips as
        // can be.
        let scopes: Vec<String> = hold.limits.iter().map(|l| l.scope.key()).collect();
        tx.execute(
            "INSERT INTO budget_holds (id, scope, nano_usd, tokens, expires_ms) \
             SELECT $1, scope, $3, $4, $5 FROM unnest($2::TEXT[]) AS scope",
            &[&hold.id, &scopes, &hold.nano_usd, &hold.tokens, &hold.expires_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(Reserved::Held)
    }

    pub(super) async fn settle(db: &PgDb, charge: Charge) -> Result<(), StoreError> {
        let mut client = db.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(id) = &charge.hold {
            tx.execute("DELETE FROM budget_holds WHERE id = $1", &[id]).await?;
        }
        let u = charge.usage;
        let mut scopes = charge.scopes.clone();
        // Rows locked in one order by every settlement: no deadlock between two.
        scopes.sort();
        for scope in &scopes {
            tx.execute(
                super::UPSERT,
                &[
                    scope,
                    &charge.day,
                    &charge.model,
                    &u.calls,
                    &u.prompt_tokens,
                    &u.cached_tokens,
                    &u.output_tokens,
                    &u.thinking_tokens,
                    &u.cache_write_tokens,
                    &u.nano_usd,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn report(
        db: &PgDb,
        sql: &str,
        since_day: i64,
        like: &str,
    ) -> Result<Vec<(String, Usage)>, StoreError> {
        let client = db.pool.get().await?;
        let rows = client.query(sql, &[&since_day, &like]).await?;
        Ok(rows.iter().map(|r| (r.get(0), usage(r, 1))).collect())
    }

    pub(super) async fn set_override(
        db: &PgDb,
        scope: &str,
        budget: Option<&str>,
    ) -> Result<(), StoreError> {
        let client = db.pool.get().await?;
        match budget {
            Some(budget) => {
                client
                    .execute(
                        "INSERT INTO budget_overrides (scope, budget) VALUES ($1, $2) \
                         ON CONFLICT (scope) DO UPDATE SET budget = EXCLUDED.budget",
                        &[&scope, &budget],
                    )
                    .await?
            }
            None => {
                client.execute("DELETE FROM budget_overrides WHERE scope = $1", &[&scope]).await?
            }
        };
        Ok(())
    }

    pub(super) async fn get_override(db: &PgDb, scope: &str) -> Result<Option<String>, StoreError> {
        let client = db.pool.get().await?;
        let row = client
            .query_opt("SELECT budget FROM budget_overrides WHERE scope = $1", &[&scope])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(prompt: i64, output: i64, nano_usd: i64) -> Usage {
        Usage {
            calls: 1,
            prompt_tokens: prompt,
            output_tokens: output,
            nano_usd,
            ..Usage::default()
        }
    }

    fn hold(id: &str, limits: Vec<Limit>, nano_usd: i64, now_ms: i64) -> Hold {
        Hold { id: id.into(), limits, nano_usd, tokens: 0, now_ms, expires_ms: now_ms + 60_000 }
    }

    fn dollars(scope: Scope, since_day: i64, amount: i64) -> Limit {
        Limit { scope, since_day, unit: Unit::NanoUsd, amount }
    }

    async fn the_ledger_and_its_holds(store: &Store) {
        let now = 20_000 * DAY_MS + 5_000;
        let (ann, site) = (Scope::Account("ann".into()), Scope::Site);
        let scopes = [ann.clone(), site.clone()];
        // Settled into each scope, per model; summed.
        store
            .settle(None, &scopes, "gemini-2.5-flash", &charge(100, 10, 1_000), now)
            .await
            .unwrap();
        store.settle(None, &scopes, "gemini-2.5-pro", &charge(50, 5, 4_000), now).await.unwrap();
        let spent = store.spent(&ann, day_of(now), now).await.unwrap();
        assert_eq!(spent.settled.calls, 2);
        assert_eq!(spent.settled.tokens(), 165);
        assert_eq!(spent.in_unit(Unit::NanoUsd), 5_000);
        // Yesterday's period does not count today; last month's ledger still there.
        assert_eq!(
            store.spent(&ann, day_of(now) + 1, now).await.unwrap().settled,
            Usage::default()
        );
        // A hold fits or not, in every limit at once.
        let limits = vec![
            dollars(ann.clone(), day_of(now), 10_000),
            dollars(site.clone(), day_of(now), 7_000),
        ];
        assert_eq!(
            store.reserve(&hold("h1", limits.clone(), 1_500, now)).await.unwrap(),
            Reserved::Held
        );
        let refused = store.reserve(&hold("h2", limits.clone(), 1_000, now)).await.unwrap();
        assert_eq!(refused, Reserved::Refused { limit: limits[1].clone(), spent: 6_500 });
        assert_eq!(
            store.spent(&ann, day_of(now), now).await.unwrap().held_nano_usd,
            1_500,
            "h2 held nothing"
        );
        // Settled to less than held: the hold goes, the ledger takes what was spent.
        store
            .settle(Some("h1"), &scopes, "gemini-2.5-flash", &charge(10, 1, 500), now)
            .await
            .unwrap();
        let site_spent = store.spent(&site, day_of(now), now).await.unwrap();
        assert_eq!((site_spent.settled.nano_usd, site_spent.held_nano_usd), (5_500, 0));
        assert_eq!(
            store.reserve(&hold("h3", limits.clone(), 1_000, now)).await.unwrap(),
            Reserved::Held
        );
        // A lapsed hold no longer counts, and is evicted.
        let later = now + 61_000;
        assert_eq!(store.spent(&site, day_of(now), later).await.unwrap().held_nano_usd, 0);
        assert_eq!(store.tidy_usage(later).await.unwrap(), 2);
        // Reports: by model, by scope, by day.
        let by_model = store.usage_report(day_of(now), "site", Grouping::Model).await.unwrap();
        assert_eq!(
            by_model.iter().map(|(m, u)| (m.as_str(), u.nano_usd)).collect::<Vec<_>>(),
            vec![("gemini-2.5-pro", 4_000), ("gemini-2.5-flash", 1_500)]
        );
        let by_scope = store.usage_report(0, "", Grouping::Scope).await.unwrap();
        assert_eq!(by_scope.len(), 2);
        assert!(store
            .usage_report(0, "account:", Grouping::Scope)
            .await
            .unwrap()
            .iter()
            .all(|(s, _)| s == "account:ann"));
        let by_day = store.usage_report(0, "site", Grouping::Day).await.unwrap();
        assert_eq!(
            by_day,
            vec![(
                day_of(now).to_string(),
                Usage {
                    calls: 3,
                    prompt_tokens: 160,
                    output_tokens: 16,
                    nano_usd: 5_500,
                    ..Usage::default()
                }
            )]
        );
        // Overrides.
        assert_eq!(store.budget_override(&ann).await.unwrap(), None);
        store.set_budget_override(&ann, Some("$5/day")).await.unwrap();
        store.set_budget_override(&ann, Some("$6/day")).await.unwrap();
        assert_eq!(store.budget_override(&ann).await.unwrap().as_deref(), Some("$6/day"));
        store.set_budget_override(&ann, None).await.unwrap();
        assert_eq!(store.budget_override(&ann).await.unwrap(), None);
        assert_eq!(Scope::parse(&ann.key()), Some(ann));
        assert_eq!(Scope::parse("site"), Some(Scope::Site));
        assert_eq!(Scope::parse("nobody"), None);
    }

    /// `k` reservations at once of `each` against a budget with room for `room`: exactly
    /// `room / each` are held, whichever store (replica) they go through.
    async fn concurrent_reservations_never_overspend(stores: &[Store]) {
        let now = 20_000 * DAY_MS;
        let scope = Scope::Session("s".into());
        let limit = dollars(scope.clone(), day_of(now), 10_000);
        let asks = (0..24).map(|i| {
            let store = stores[i % stores.len()].clone();
            let hold = hold(&format!("k{i}"), vec![limit.clone()], 1_000, now);
            async move { store.reserve(&hold).await.unwrap() }
        });
        let held = futures::future::join_all(asks)
            .await
            .into_iter()
            .filter(|r| *r == Reserved::Held)
            .count();
        assert_eq!(held, 10);
        assert_eq!(stores[0].spent(&scope, day_of(now), now).await.unwrap().held_nano_usd, 10_000);
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        let store = Store::in_memory().unwrap();
        the_ledger_and_its_holds(&store).await;
        concurrent_reservations_never_overspend(&[store]).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("usage").await else { return };
        let url: crate::DatabaseUrl = url.parse().unwrap();
        let store = Store::connect(&url).await.unwrap();
        the_ledger_and_its_holds(&store).await;
        // Two replicas: two stores (two pools) on one database.
        let other = Store::connect(&url).await.unwrap();
        concurrent_reservations_never_overspend(&[store, other]).await;
    }
}
