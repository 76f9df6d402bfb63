//! Context caching, opt-in per conversation ("Cache files", `PARLEY_CONTEXT_CACHING=opt-in`):
//! the conversation's file parts go into a `cachedContents` resource
//! (<https://ai.google.dev/api/caching>, <https://ai.google.dev/gemini-api/docs/caching>), and
//! requests name it in `cachedContent` instead of sending the files again — cached input tokens
//! cost far less. Caching is for reusing large inputs, never a way to upload: the Files stay
//! the Files API's.
//!
//! A cache is this session's (recorded in the store with its owner, model and the set of
//! File URIs it holds), found again by that set, its TTL extended while the conversation is
//! used, re-created once it has expired or its Files were uploaded again, and deleted when the
//! conversation or one of its Files is deleted. Below Gemini's minimum token count nothing is
//! cached, and the page is told why.

use std::time::Duration;

use parley_files::time::now_ms;
use parley_store::CacheRow;

use parley_protocol::model::{CacheState, MAX_FILE_CHECKS};

use crate::{ChatError, ClientAddress, Engine, Principal};

/// Most live caches one session keeps: once another is made, the ones expiring first are
/// deleted (each costs storage on the site's key for as long as it lives).
pub const MAX_CACHES_PER_SESSION: usize = 4;

/// How long a request waits for its session's turn at the caches before it goes without one.
const TURN_PATIENCE: Duration = Duration::from_secs(30);

/// Most live caches the sessions of one client address keep between them (four sessions'
/// worth): sessions are free to make, addresses are not. Past it, a request goes without a
/// cache (its files are sent as they are) until one expires or is deleted.
pub const MAX_CACHES_PER_ADDRESS: u64 = 4 * MAX_CACHES_PER_SESSION as u64;

/// Most "too small" verdicts remembered (so that a small set of files is not offered to Gemini
/// again on every request); past it the least recently used is forgotten.
const MAX_REMEMBERED: u64 = 10_000;

/// How caching is done on this server (`PARLEY_CONTEXT_CACHING=opt-in`).
#[derive(Clone)]
pub struct CachePolicy {
    /// A cache's time to live, extended while it is used (`PARLEY_CONTEXT_CACHE_TTL`).
    pub ttl: Duration,
    /// Sets of Files Gemini found too small to cache, per process (asked again after a
    /// restart): (model, files key) → (tokens, minimum).
    too_small: moka::sync::Cache<(String, String), (u64, u64)>,
}

impl std::fmt::Debug for CachePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CachePolicy({:?}, {} too small)", self.ttl, self.too_small.entry_count())
    }
}

impl CachePolicy {
    /// Caches living `ttl` past their last use.
    pub fn new(ttl: Duration) -> Self {
        CachePolicy::with_memory(ttl, MAX_REMEMBERED)
    }

    /// [`CachePolicy::new`], remembering at most `remembered` "too small" verdicts.
    fn with_memory(ttl: Duration, remembered: u64) -> Self {
        let too_small = moka::sync::Cache::builder()
            .max_capacity(remembered)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        CachePolicy { ttl, too_small }
    }

    fn remembered(&self, key: &(String, String)) -> Option<(u64, u64)> {
        self.too_small.get(key)
    }

    fn remember(&self, key: (String, String), verdict: (u64, u64)) {
        self.too_small.insert(key, verdict);
    }
}

/// The `fileData` parts of `request`, in order, each File once.
fn file_parts(request: &gemini::GenerateContentRequest) -> Vec<gemini::Part> {
    let mut seen = std::collections::HashSet::new();
    request
        .contents
        .iter()
        .flat_map(|c| c.parts.iter())
        .filter(|p| p.file_data.as_ref().is_some_and(|f| seen.insert(f.file_uri.clone())))
        .cloned()
        .collect()
}

/// `request` without its file parts, naming `cache` instead. A turn left without parts gets a
/// short text (Gemini refuses a turn with none).
fn use_cache(request: &mut gemini::GenerateContentRequest, cache: &str) {
    for content in &mut request.contents {
        let before = content.parts.len();
        content.parts.retain(|p| p.file_data.is_none());
        if content.parts.is_empty() && before > 0 {
            content.parts.push(gemini::Part::text("(the files are in the cached content)"));
        }
    }
    request.cached_content = Some(cache.to_string());
}

/// Sends `request`'s files from this session's cache for `model` (found, extended, or made):
/// on success the file parts are taken out and `cachedContent` set. What was done is returned
/// for the page; a failure leaves `request` as it was and says why.
pub async fn apply(
    engine: &Engine,
    policy: &CachePolicy,
    (principal, address, charge): (&Principal, &ClientAddress, &crate::budget::Charge),
    model: &str,
    request: &mut gemini::GenerateContentRequest,
) -> CacheState {
    let parts = file_parts(request);
    if parts.is_empty() {
        return CacheState::NoFiles;
    }
    let uris: Vec<String> =
        parts.iter().filter_map(|p| p.file_data.as_ref().map(|f| f.file_uri.clone())).collect();
    let files_key = CacheRow::key_of(&uris);
    let memo = (model.to_string(), files_key.clone());
    if let Some((tokens, minimum)) = policy.remembered(&memo) {
        return CacheState::TooSmall { tokens, minimum };
    }
    // One request of a session at a time finds or makes its caches (across replicas too): two
    // at once would make two caches of the same Files.
    let key = format!("parley:context-cache\n{}", principal.owner());
    let flight = engine.files.flights().slot(key.clone());
    let _turn = flight.lock().await;
    let shared = match engine.files.store().exclusive(&key, TURN_PATIENCE).await {
        Ok(shared) => shared,
        Err(e) => {
            tracing::warn!(error = %e, "no turn at the session's context caches");
            let reason = "the context caches are busy; the files were sent without one.";
            return CacheState::Failed { reason: reason.into() };
        }
    };
    let charged_to = parley_store::holder_key(&address.0);
    let asking = Asking { engine, policy, principal, charged_to: &charged_to, charge, model };
    let made = asking.find_or_make(parts, uris, files_key).await;
    shared.release().await;
    match made {
        Ok(Made::Cache(row)) => {
            use_cache(request, &row.name);
            CacheState::Active {
                tokens: row.tokens,
                expire_time: parley_files::time::rfc3339_of_ms(row.expire_ms),
            }
        }
        Ok(Made::TooSmall { tokens, minimum }) => {
            policy.remember(memo, (tokens, minimum));
            CacheState::TooSmall { tokens, minimum }
        }
        Ok(Made::NoRoom) => CacheState::Failed {
            reason: format!(
                "{MAX_CACHES_PER_ADDRESS} context caches are live from this network already; \
                 the files were sent without one."
            ),
        },
        Err(e) => CacheState::Failed { reason: e.to_string() },
    }
}

/// `cache`'s `expireTime` in ms since the epoch, or `otherwise` when Gemini gave none readable.
fn expire_ms(cache: &gemini::CachedContent, otherwise: i64) -> i64 {
    cache.expire_time.as_deref().and_then(parley_files::time::ms_of_rfc3339).unwrap_or(otherwise)
}

enum Made {
    Cache(CacheRow),
    TooSmall {
        tokens: u64,
        minimum: u64,
    },
    /// The address holds [`MAX_CACHES_PER_ADDRESS`] live caches already.
    NoRoom,
}

/// One request's turn at its session's caches: who asks, from where, for which model.
struct Asking<'a> {
    engine: &'a Engine,
    policy: &'a CachePolicy,
    principal: &'a Principal,
    /// The client address's key ([`parley_store::holder_key`]).
    charged_to: &'a str,
    /// Whom the caches' cost is charged to.
    charge: &'a crate::budget::Charge,
    model: &'a str,
}

impl Asking<'_> {
    async fn find_or_make(
        &self,
        parts: Vec<gemini::Part>,
        uris: Vec<String>,
        files_key: String,
    ) -> Result<Made, ChatError> {
        let (store, gemini, principal) =
            (&self.engine.files.store(), &self.engine.files.gemini(), self.principal);
        let now = now_ms();
        let ttl_ms = i64::try_from(self.policy.ttl.as_millis()).unwrap_or(i64::MAX);
        // A cache counts as gone a little before Gemini deletes it, so that a request never
        // names one that expires on the way.
        let margin_ms = 30_000.min(ttl_ms / 4);
        if let Some(mut row) = store.find_cache(&principal.owner(), self.model, &files_key).await? {
            if row.expire_ms > now + margin_ms {
                if row.expire_ms - now < ttl_ms / 2 {
                    match gemini.update_cached_content_ttl(&row.name, self.policy.ttl).await {
                        Ok(updated) => {
                            let expire = expire_ms(&updated, now + ttl_ms);
                            self.meter_storage(row.tokens, expire - row.expire_ms, 0).await;
                            row.expire_ms = expire;
                            store.record_cache(row.clone(), now).await?;
                        }
                        Err(e) if e.is_cache_gone() => {
                            store.remove_cache(&principal.owner(), &row.name).await?;
                            return self.make(parts, uris, files_key).await;
                        }
                        Err(e) => {
                            // Still alive until its expireTime: used as it is, extended next time.
                            crate::note_upstream_error(&e);
                        }
                    }
                }
                return Ok(Made::Cache(row));
            }
            store.remove_cache(&principal.owner(), &row.name).await?;
        }
        self.make(parts, uris, files_key).await
    }

    /// Meters a cache of `tokens` kept `ms` longer, `written` of them put into it now.
    async fn meter_storage(&self, tokens: u64, ms: i64, written: u64) {
        let seconds = u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000);
        let used = crate::budget::Tokens {
            cache_write: written,
            cache_token_seconds: tokens.saturating_mul(seconds),
            ..crate::budget::Tokens::default()
        };
        self.engine.budgets.settle(self.charge, None, self.model, &used).await;
    }

    /// Whether a new cache would pass the address's bound: the session replaces one of its own
    /// once it holds [`MAX_CACHES_PER_SESSION`], else the address must have room.
    async fn address_has_room(&self, now: i64) -> Result<bool, ChatError> {
        let store = &self.engine.files.store();
        let own = store.caches_of(&self.principal.owner()).await?;
        if own.iter().filter(|c| c.expire_ms > now).count() >= MAX_CACHES_PER_SESSION {
            return Ok(true);
        }
        Ok(store.live_caches_charged_to(self.charged_to, now).await? < MAX_CACHES_PER_ADDRESS)
    }

    async fn make(
        &self,
        parts: Vec<gemini::Part>,
        uris: Vec<String>,
        files_key: String,
    ) -> Result<Made, ChatError> {
        let (engine, principal) = (self.engine, self.principal);
        let (store, gemini) = (&engine.files.store(), &engine.files.gemini());
        let now = now_ms();
        if !self.address_has_room(now).await? {
            return Ok(Made::NoRoom);
        }
        let ttl = self.policy.ttl;
        let request = gemini::CachedContent {
            model: format!("models/{}", self.model),
            display_name: Some("parley".into()),
            contents: vec![gemini::Content { role: Some("user".into()), parts }],
            ttl: Some(format!("{}s", ttl.as_secs().max(1))),
            ..Default::default()
        };
        let made = match gemini.create_cached_content(&request).await {
            Ok(made) => made,
            Err(e) => {
                if let Some((tokens, minimum)) = e.cache_too_small() {
                    return Ok(Made::TooSmall { tokens, minimum });
                }
                return Err(e.into());
            }
        };
        let row = CacheRow {
            owner: principal.owner(),
            name: made.name.clone(),
            model: self.model.to_string(),
            files_key,
            uris,
            tokens: made.usage_metadata.as_ref().map_or(0, |u| u.total_token_count),
            expire_ms: expire_ms(&made, now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            charged_to: self.charged_to.to_string(),
        };
        if let Err(e) = store.record_cache(row.clone(), now).await {
            // Unrecorded, it could never be found or deleted again: delete it now.
            let _ = gemini.delete_cached_content(&made.name).await;
            return Err(e.into());
        }
        self.meter_storage(row.tokens, row.expire_ms - now, row.tokens).await;
        metrics::counter!("parley_context_caches_created_total").increment(1);
        tracing::info!(tokens = row.tokens, files = row.uris.len(), "context cache created");
        // Past the bound, the ones expiring first go (only now that this one exists).
        let mut live: Vec<CacheRow> = store
            .caches_of(&principal.owner())
            .await?
            .into_iter()
            .filter(|c| c.expire_ms > now)
            .collect();
        live.sort_by_key(|c| c.expire_ms);
        let over = live.len().saturating_sub(MAX_CACHES_PER_SESSION);
        for oldest in live.iter().filter(|c| c.name != row.name).take(over) {
            delete(engine, principal, oldest).await;
        }
        // Sessions of one address making caches at once may all have found room: the ones
        // past the bound give theirs back at once.
        if store.live_caches_charged_to(self.charged_to, now).await? > MAX_CACHES_PER_ADDRESS {
            delete(engine, principal, &row).await;
            return Ok(Made::NoRoom);
        }
        Ok(Made::Cache(row))
    }
}

/// Deletes `cache` upstream and forgets it. A failure upstream is logged: the cache expires by
/// itself at its `expireTime`.
pub async fn delete(engine: &Engine, principal: &Principal, cache: &CacheRow) {
    forget_one(engine, principal, &cache.name).await;
}

/// Deletes this session's cache `name` upstream and forgets it (see [`delete`]).
pub async fn forget_one(engine: &Engine, principal: &Principal, name: &str) {
    match engine.files.gemini().delete_cached_content(name).await {
        Ok(()) => {}
        Err(e) if e.is_cache_gone() => {}
        Err(e) => {
            crate::note_upstream_error(&e);
            tracing::info!("a context cache could not be deleted upstream; it expires by itself");
        }
    }
    if let Err(e) = engine.files.store().remove_cache(&principal.owner(), name).await {
        tracing::warn!(error = %e, "a deleted context cache could not be forgotten");
    }
}

/// Deletes this session's caches holding any of `uris` (their Files were deleted, replaced, or
/// their conversation deleted).
///
/// # Errors
/// [`ChatError`] when the store fails.
pub async fn delete_holding(
    engine: &Engine,
    principal: &Principal,
    uris: &[String],
) -> Result<usize, ChatError> {
    let caches = engine.files.store().caches_holding(&principal.owner(), uris).await?;
    for cache in &caches {
        delete(engine, principal, cache).await;
    }
    Ok(caches.len())
}

impl Engine {
    /// Deletes `principal`'s context caches holding any of `uris` (their conversation was
    /// deleted), under a slot towards Gemini; how many.
    ///
    /// # Errors
    /// [`ChatError::BadRequest`] for more than [`MAX_FILE_CHECKS`] URIs; [`ChatError::Busy`]
    /// without a slot in time; store failures.
    pub async fn forget_caches(
        &self,
        principal: &Principal,
        address: &ClientAddress,
        uris: &[String],
    ) -> Result<usize, ChatError> {
        if uris.len() > MAX_FILE_CHECKS {
            return Err(ChatError::BadRequest(format!(
                "at most {MAX_FILE_CHECKS} files can be named at once."
            )));
        }
        let _slot = self.slot(principal, address).await?;
        let deleted = delete_holding(self, principal, uris).await?;
        if deleted > 0 {
            tracing::info!(deleted, "context caches deleted with their conversation");
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_too_small_memory_forgets_the_least_recently_used_first() {
        let policy = CachePolicy::with_memory(Duration::from_secs(60), 3);
        let key = |i: u32| ("gemini-2.5-flash".to_string(), i.to_string());
        policy.remember(key(0), (300, 1024));
        // A flood of new sets while one is in use: the one in use stays (the memory was once
        // cleared whole when full, so anyone could flush it).
        for i in 1..50 {
            assert_eq!(policy.remembered(&key(0)), Some((300, 1024)), "after {i}");
            policy.remember(key(i), (300, 1024));
            policy.too_small.run_pending_tasks();
        }
        assert!(policy.too_small.entry_count() <= 3);
        assert_eq!(policy.remembered(&key(1)), None, "the least recently used went");
    }

    #[test]
    fn cached_requests_keep_their_text_and_name_the_cache() {
        let mut request = gemini::GenerateContentRequest {
            contents: vec![
                gemini::Content {
                    role: Some("user".into()),
                    parts: vec![
                        gemini::Part::file("application/pdf", "https://x/files/a"),
                        gemini::Part::text("What is it?"),
                    ],
                },
                gemini::Content {
                    role: Some("user".into()),
                    parts: vec![gemini::Part::file("application/pdf", "https://x/files/a")],
                },
            ],
            ..Default::default()
        };
        assert_eq!(file_parts(&request).len(), 1, "each File once");
        use_cache(&mut request, "cachedContents/c1");
        assert_eq!(request.cached_content.as_deref(), Some("cachedContents/c1"));
        assert_eq!(request.contents[0].parts, vec![gemini::Part::text("What is it?")]);
        assert_eq!(request.contents[1].parts.len(), 1, "a turn never goes without parts");
    }
}
