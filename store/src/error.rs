//! [`StoreError`]: what can go wrong with the store.

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (disk full, locked, corrupt, …).
    #[error("the database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("the database could not be migrated: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The data directory could not be created.
    #[error("the data directory could not be created: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task was lost (the runtime is shutting down).
    #[error("the database task failed: {0}")]
    Task(String),
    /// PostgreSQL refused or could not be reached.
    #[error("the database (PostgreSQL) failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("the database (PostgreSQL) is unreachable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database URL is not one Parley can use.
    #[error("the database URL is not usable: {0}")]
    Url(String),
    /// A row holds a value Parley never writes (a hand-edited database).
    #[error("the database holds an unreadable value: {0}")]
    Corrupt(String),
    /// Another holder kept an exclusive turn for longer than this process would wait.
    #[error("another replica held the lock for over {0:?}")]
    LockTimeout(std::time::Duration),
}

impl StoreError {
    /// True when the database is only busy — no pooled connection came free in time, or
    /// another holder kept an exclusive turn longer than the caller would wait — rather than
    /// failing: worth trying again in a moment.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Pool(deadpool_postgres::PoolError::Timeout(_)) | StoreError::LockTimeout(_)
        )
    }

    /// True when PostgreSQL could not be reached at all — refused, not resolvable yet, no
    /// answer in time, or still starting up (`57P03`) — rather than refusing what was asked:
    /// at start-up, worth waiting for (a database started beside the site in the same breath).
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Postgres(e)
            | StoreError::Pool(deadpool_postgres::PoolError::Backend(e)) => match e.code() {
                Some(code) => *code == tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW,
                None => e.as_db_error().is_none(),
            },
            StoreError::Pool(
                deadpool_postgres::PoolError::Timeout(_) | deadpool_postgres::PoolError::Closed,
            ) => true,
            _ => false,
        }
    }
}
