//! Sign-ins under way: what an OpenID Connect authorization request must find again at its
//! callback — the provider, the `nonce`, the PKCE verifier, where to return — kept for a few
//! minutes under the hash of its `state`, and taken once. Table `sign_in_flows`.
//!
//! Kept in the store (not in the browser's cookie) so that a `state` is good for exactly one
//! callback on any replica: a replayed callback finds nothing.

use crate::{Store, StoreError};

/// One authorization request awaiting its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInFlow {
    /// Lowercase hex SHA-256 of the random value in the browser's short-lived sign-in cookie:
    /// the callback must come from the browser that started the flow.
    pub browser_hash: String,
    /// The provider's configured name (`google`, `corp`).
    pub provider: String,
    /// The `nonce` sent, which the ID token must carry back.
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636) whose S256 challenge was sent.
    pub pkce_verifier: String,
    /// The local path to return to after signing in (already checked to be one).
    pub return_to: String,
    /// When it lapses, ms since the epoch.
    pub expires_ms: i64,
}

/// Most flows kept at once: beyond this, starting one fails until some lapse (each start is
/// also rate-limited per address by the caller).
pub const MAX_FLOWS: i64 = 100_000;

fn state_hash(state: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("parley sign-in state\0{state}").as_bytes()))
}

impl Store {
    /// Keeps `flow` under `state`, forgetting flows that lapsed before `now_ms`. False (nothing
    /// kept) when [`MAX_FLOWS`] are under way.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_sign_in_flow(
        &self,
        state: &str,
        flow: SignInFlow,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let hash = state_hash(state);
        match self {
            Store::Sqlite(db) => {
                db.with(move |c| {
                    let tx = c.transaction()?;
                    tx.execute("DELETE FROM sign_in_flows WHERE expires_ms <= ?1", [now_ms])?;
                    let under_way: i64 =
                        tx.query_row("SELECT COUNT(*) FROM sign_in_flows", [], |r| r.get(0))?;
                    if under_way >= MAX_FLOWS {
                        return Ok(false);
                    }
                    tx.execute(
                        "INSERT INTO sign_in_flows (state_hash, browser_hash, provider, nonce, pkce_verifier, return_to, expires_ms) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        rusqlite::params![hash, flow.browser_hash, flow.provider, flow.nonce, flow.pkce_verifier, flow.return_to, flow.expires_ms],
                    )?;
                    tx.commit()?;
                    Ok(true)
                })
                .await
            }
            Store::Postgres(db) => {
                let mut client = db.pool.get().await?;
                let tx = client.transaction().await?;
                tx.execute("DELETE FROM sign_in_flows WHERE expires_ms <= $1", &[&now_ms]).await?;
                let under_way: i64 =
                    tx.query_one("SELECT COUNT(*) FROM sign_in_flows", &[]).await?.get(0);
                if under_way >= MAX_FLOWS {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO sign_in_flows (state_hash, browser_hash, provider, nonce, pkce_verifier, return_to, expires_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&hash, &flow.browser_hash, &flow.provider, &flow.nonce, &flow.pkce_verifier, &flow.return_to, &flow.expires_ms],
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// Takes (removes and returns) the flow kept under `state`, if it has not lapsed at
    /// `now_ms`: a `state` is good once.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn take_sign_in_flow(
        &self,
        state: &str,
        now_ms: i64,
    ) -> Result<Option<SignInFlow>, StoreError> {
        let hash = state_hash(state);
        const TAKE: &str = "DELETE FROM sign_in_flows WHERE state_hash = $1 RETURNING \
             browser_hash, provider, nonce, pkce_verifier, return_to, expires_ms";
        let flow = match self {
            Store::Sqlite(db) => {
                db.with(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&TAKE.replace("$1", "?1"), [hash], |r| {
                        Ok(SignInFlow {
                            browser_hash: r.get(0)?,
                            provider: r.get(1)?,
                            nonce: r.get(2)?,
                            pkce_verifier: r.get(3)?,
                            return_to: r.get(4)?,
                            expires_ms: r.get(5)?,
                        })
                    })
                    .optional()
                })
                .await?
            }
            Store::Postgres(db) => {
                let row = db.pool.get().await?.query_opt(TAKE, &[&hash]).await?;
                row.map(|r| SignInFlow {
                    browser_hash: r.get(0),
                    provider: r.get(1),
                    nonce: r.get(2),
                    pkce_verifier: r.get(3),
                    return_to: r.get(4),
                    expires_ms: r.get(5),
                })
            }
        };
        Ok(flow.filter(|f| f.expires_ms > now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(expires_ms: i64) -> SignInFlow {
        SignInFlow {
            browser_hash: "b".into(),
            provider: "corp".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            expires_ms,
        }
    }

    /// What every backend must do with flows: each `state` taken once, none after it lapsed.
    async fn a_state_is_good_once(store: &Store) {
        assert!(store.put_sign_in_flow("s1", flow(100), 0).await.unwrap());
        assert!(store.put_sign_in_flow("s2", flow(100), 0).await.unwrap());
        assert!(store.take_sign_in_flow("nope", 0).await.unwrap().is_none());
        assert_eq!(store.take_sign_in_flow("s1", 50).await.unwrap(), Some(flow(100)));
        assert!(store.take_sign_in_flow("s1", 50).await.unwrap().is_none(), "replayed");
        assert!(store.take_sign_in_flow("s2", 100).await.unwrap().is_none(), "lapsed");
        assert!(store.put_sign_in_flow("s2", flow(300), 200).await.unwrap(), "its hash is free");
    }

    #[tokio::test]
    async fn the_suite_holds_on_sqlite() {
        a_state_is_good_once(&Store::in_memory().unwrap()).await;
    }

    #[tokio::test]
    async fn the_suite_holds_on_postgres() {
        let Some(url) = crate::postgres::testing::fresh_database("flows").await else { return };
        a_state_is_good_once(&Store::connect(&url.parse().unwrap()).await.unwrap()).await;
    }
}
