//! The emulator's context caches (`cachedContents`, <https://ai.google.dev/api/caching>):
//! owned by the key that made them, gone once expired on the emulator's clock, and bounded —
//! at most [`MAX_PER_OWNER`] caches and [`MAX_BYTES_PER_OWNER`] bytes a key, [`MAX_CACHES`]
//! and [`MAX_BYTES`] in all — since a public site may run the emulator. Only what answers
//! need is kept (the prompt's file descriptions, last user text and tokens), never the
//! contents themselves: Gemini never gives them back either.

use std::{collections::HashMap, time::SystemTime};

use serde_json::{json, Value};

use crate::{error::ApiError, models::ModelInfo, prompt::Prompt, state::rfc3339};

/// Caches a key may hold at once.
pub const MAX_PER_OWNER: usize = 1000;
/// Caches held at once, all keys together.
pub const MAX_CACHES: usize = 10_000;
/// Bytes of memory a key's caches may take (64 MiB).
pub const MAX_BYTES_PER_OWNER: usize = 64 << 20;
/// Bytes of memory all caches together may take (256 MiB).
pub const MAX_BYTES: usize = 256 << 20;

/// One cache.
#[derive(Debug, Clone)]
pub struct CacheRecord {
    /// The id in `cachedContents/{id}`: 40 characters of `[a-z0-9]`, like Gemini's.
    pub id: String,
    /// The caller that made it (its API key, or the gateway's backend identity).
    pub owner: String,
    /// The model it is for.
    pub model: &'static ModelInfo,
    /// `displayName`, if one was given.
    pub display_name: Option<String>,
    /// On the emulator's clock.
    pub created: SystemTime,
    /// The last change (create or patch).
    pub updated: SystemTime,
    /// From then on the cache is gone.
    pub expires: SystemTime,
    /// Its contents and system instruction, as read.
    pub prompt: Prompt,
}

impl CacheRecord {
    /// About how many bytes keeping it takes.
    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.id.len()
            + self.owner.len()
            + self.display_name.as_ref().map_or(0, String::len)
            + self.prompt.footprint()
    }

    /// The `CachedContent` resource as Gemini writes it: no contents, `displayName` `""`
    /// when none was given, `usageMetadata.totalTokenCount`.
    pub fn resource(&self) -> Value {
        json!({
            "name": format!("cachedContents/{}", self.id),
            "model": format!("models/{}", self.model.id),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.updated),
            "expireTime": crate::wire::rfc3339_nanos(self.expires),
            "displayName": self.display_name.as_deref().unwrap_or(""),
            "usageMetadata": {"totalTokenCount": self.prompt.tokens},
        })
    }
}

/// All caches, by id, each with its footprint (measured once, when stored).
#[derive(Debug, Default)]
pub struct Caches(HashMap<String, (usize, CacheRecord)>);

impl Caches {
    /// Stores a new cache, after dropping expired ones.
    ///
    /// # Errors
    /// 429 `RESOURCE_EXHAUSTED` when it would pass a bound.
    pub fn insert(&mut self, record: CacheRecord, now: SystemTime) -> Result<(), ApiError> {
        self.0.retain(|_, (_, c)| c.expires > now);
        let (mut mine, mut my_bytes, mut bytes) = (0, 0, 0);
        for (size, cache) in self.0.values() {
            bytes += size;
            if cache.owner == record.owner {
                mine += 1;
                my_bytes += size;
            }
        }
        let size = record.footprint();
        if mine >= MAX_PER_OWNER
            || self.0.len() >= MAX_CACHES
            || my_bytes + size > MAX_BYTES_PER_OWNER
            || bytes + size > MAX_BYTES
        {
            return Err(ApiError::too_many_caches());
        }
        self.0.insert(record.id.clone(), (size, record));
        Ok(())
    }

    /// The cache `id` if `owner` may use it now: missing, expired and foreign caches all
    /// give the same 403, as on Gemini.
    pub fn get(
        &mut self,
        owner: &str,
        id: &str,
        now: SystemTime,
    ) -> Result<&mut CacheRecord, ApiError> {
        if self.0.get(id).is_some_and(|(_, c)| c.expires <= now) {
            self.0.remove(id);
        }
        match self.0.get_mut(id) {
            Some((_, cache)) if cache.owner == owner => Ok(cache),
            _ => Err(ApiError::cache_not_found()),
        }
    }

    /// Deletes the cache `id` of `owner`.
    ///
    /// # Errors
    /// As [`Caches::get`].
    pub fn remove(&mut self, owner: &str, id: &str, now: SystemTime) -> Result<(), ApiError> {
        self.get(owner, id, now)?;
        self.0.remove(id);
        Ok(())
    }

    /// `owner`'s live caches, oldest first.
    pub fn of(&mut self, owner: &str, now: SystemTime) -> Vec<CacheRecord> {
        self.0.retain(|_, (_, c)| c.expires > now);
        let mut mine: Vec<_> =
            self.0.values().map(|(_, c)| c).filter(|c| c.owner == owner).cloned().collect();
        mine.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        mine
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(id: &str, owner: &str, now: SystemTime, text_len: usize) -> CacheRecord {
        CacheRecord {
            id: id.into(),
            owner: owner.into(),
            model: &crate::models::MODELS[0],
            display_name: None,
            created: now,
            updated: now,
            expires: now + Duration::from_secs(60),
            prompt: Prompt { last_user_text: Some("x".repeat(text_len)), ..Prompt::default() },
        }
    }

    #[test]
    fn caches_are_the_owners_and_expire() {
        let now = SystemTime::now();
        let mut caches = Caches::default();
        caches.insert(record("a", "key 1", now, 1), now).unwrap();
        assert!(caches.get("key 1", "a", now).is_ok());
        assert_eq!(caches.get("key 2", "a", now).unwrap_err().code, 403);
        assert_eq!(caches.of("key 2", now).len(), 0);
        let later = now + Duration::from_secs(61);
        assert_eq!(caches.get("key 1", "a", later).unwrap_err().code, 403);
        assert!(caches.of("key 1", now).is_empty(), "gone for good");
    }

    #[test]
    fn each_key_is_bounded_in_number_and_bytes() {
        let now = SystemTime::now();
        let mut caches = Caches::default();
        for i in 0..MAX_PER_OWNER {
            caches.insert(record(&i.to_string(), "key 1", now, 1), now).unwrap();
        }
        assert_eq!(caches.insert(record("over", "key 1", now, 1), now).unwrap_err().code, 429);
        caches.insert(record("other", "key 2", now, 1), now).unwrap();
        let huge = record("huge", "key 3", now, MAX_BYTES_PER_OWNER);
        assert_eq!(caches.insert(huge, now).unwrap_err().code, 429);
        // Expired caches make room.
        let later = now + Duration::from_secs(61);
        caches.insert(record("fresh", "key 1", later, 1), later).unwrap();
    }
}
