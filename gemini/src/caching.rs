//! `cachedContents`: explicit context caching — contents tokenized once, then named by
//! `cachedContent` in later requests (<https://ai.google.dev/api/caching>,
//! <https://ai.google.dev/gemini-api/docs/caching>).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    client::{with_query, Client},
    error::Result,
    types::Content,
};

/// A context cache (<https://ai.google.dev/api/caching#CachedContent>).
///
/// To create one, set `model`, `contents` (and/or `system_instruction`) and either `ttl` or
/// `expire_time` (neither: Gemini keeps it 1 hour). Gemini answers with `name`, the times and
/// `usage_metadata`, but never echoes the contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CachedContent {
    /// Output only: the resource name, `cachedContents/{id}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The model it is for, `models/{id}` (requests using it must name the same model).
    #[serde(default)]
    pub model: String,
    /// A human name, up to 128 characters (Gemini answers `""` when none was given).
    #[serde(default, alias = "display_name", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Input only: the contents to cache, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<Content>,
    /// Input only: a system instruction to cache.
    #[serde(default, alias = "system_instruction", skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// Input only: how long to keep it, a proto Duration such as `"300s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// RFC 3339 time after which Gemini deletes it (always set on output).
    #[serde(default, alias = "expire_time", skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Output only: RFC 3339 creation time.
    #[serde(default, alias = "create_time", skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Output only: RFC 3339 time of the last change.
    #[serde(default, alias = "update_time", skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    /// Output only: its size.
    #[serde(default, alias = "usage_metadata", skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<CachedContentUsage>,
}

impl CachedContent {
    /// The bare id: `abc` for `cachedContents/abc`.
    pub fn id(&self) -> &str {
        bare_cache_id(&self.name)
    }
}

/// `usageMetadata` of a [`CachedContent`]: `{"totalTokenCount": N}`, tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CachedContentUsage {
    /// Tokens the cache holds: what a request using it is charged as
    /// `cachedContentTokenCount`.
    #[serde(default, alias = "total_token_count")]
    pub total_token_count: u64,
}

/// One page of `cachedContents.list`: `{"cachedContents": [...], "nextPageToken": "..."}`;
/// an empty page may be `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CachedContentList {
    /// The caches of this page.
    #[serde(default, alias = "cached_contents")]
    pub cached_contents: Vec<CachedContent>,
    /// The token of the next page; absent on the last one.
    #[serde(default, alias = "next_page_token", skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Caches asked for per page: the most `cachedContents.list` gives
/// (<https://ai.google.dev/api/caching#method:-cachedcontents.list>: "The maximum value is
/// 1000").
const PAGE_SIZE: &str = "1000";

/// `abc` from `cachedContents/abc` or `abc`.
fn bare_cache_id(name: &str) -> &str {
    name.strip_prefix("cachedContents/").unwrap_or(name)
}

/// A proto Duration's JSON text: `300s`, `1.5s`.
fn proto_duration(d: Duration) -> String {
    match d.subsec_nanos() {
        0 => format!("{}s", d.as_secs()),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
        }
    }
}

#[derive(Serialize)]
struct TtlUpdate {
    ttl: String,
}

impl Client {
    /// `POST {ver}/cachedContents`: caches `cache`'s contents
    /// (<https://ai.google.dev/api/caching#method:-cachedcontents.create>). A `model` without
    /// the `models/` prefix gets it. Transient failures are retried, as for
    /// [`Client::delete_file`] (a create whose answer was lost may then leave a second cache,
    /// which expires with its TTL).
    ///
    /// # Errors
    /// [`crate::Error::Api`] — 400 `INVALID_ARGUMENT` "Cached content is too small.
    /// total_token_count=N, min_total_token_count=M" below the model's minimum (e.g. 1,024
    /// tokens for Gemini 2.5 Flash), 404 for an unknown model, 403 / 400 for a File that is
    /// inaccessible / not `ACTIVE`.
    pub async fn create_cached_content(&self, cache: &CachedContent) -> Result<CachedContent> {
        let mut body = cache.clone();
        if !body.model.starts_with("models/") {
            body.model = format!("models/{}", body.model);
        }
        let url = self.api_url("cachedContents")?;
        self.call_json("cachedContents.create", reqwest::Method::POST, url, Some(&body)).await
    }

    /// `GET {ver}/cachedContents/{id}`: the cache's metadata
    /// (<https://ai.google.dev/api/caching#method:-cachedcontents.get>). `name` may be
    /// `cachedContents/abc` or `abc`. Transient failures are retried.
    ///
    /// # Errors
    /// [`crate::Error::Api`] — 403 `PERMISSION_DENIED` "CachedContent not found (or
    /// permission denied)" for a missing, expired, deleted or foreign cache.
    pub async fn get_cached_content(&self, name: &str) -> Result<CachedContent> {
        let url = self.item_url("cachedContents", bare_cache_id(name), "")?;
        self.call_json("cachedContents.get", reqwest::Method::GET, url, None::<&()>).await
    }

    /// `GET {ver}/cachedContents?pageSize=1000&pageToken=…`: one page of the caller's caches
    /// (<https://ai.google.dev/api/caching#method:-cachedcontents.list>). Transient failures
    /// are retried.
    ///
    /// # Errors
    /// [`crate::Error::Api`] for a bad page token or key.
    pub async fn list_cached_contents(
        &self,
        page_token: Option<&str>,
    ) -> Result<CachedContentList> {
        let url = with_query(
            self.api_url("cachedContents")?,
            &[("pageSize", Some(PAGE_SIZE)), ("pageToken", page_token)],
        );
        self.call_json("cachedContents.list", reqwest::Method::GET, url, None::<&()>).await
    }

    /// `PATCH {ver}/cachedContents/{id}?updateMask=ttl` with `{"ttl": "<secs>s"}`: the cache
    /// now expires `ttl` from now
    /// (<https://ai.google.dev/api/caching#method:-cachedcontents.patch>). Transient failures
    /// are retried (setting the same TTL twice is harmless).
    ///
    /// # Errors
    /// [`crate::Error::Api`] as for [`Client::get_cached_content`].
    pub async fn update_cached_content_ttl(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<CachedContent> {
        let url = with_query(
            self.item_url("cachedContents", bare_cache_id(name), "")?,
            &[("updateMask", Some("ttl"))],
        );
        let body = TtlUpdate { ttl: proto_duration(ttl) };
        self.call_json("cachedContents.patch", reqwest::Method::PATCH, url, Some(&body)).await
    }

    /// `DELETE {ver}/cachedContents/{id}` (200 with `{}` on Gemini)
    /// (<https://ai.google.dev/api/caching#method:-cachedcontents.delete>). Transient failures
    /// are retried, as for [`Client::delete_file`].
    ///
    /// # Errors
    /// [`crate::Error::Api`] as for [`Client::get_cached_content`] (also when a retry finds
    /// the cache already deleted).
    pub async fn delete_cached_content(&self, name: &str) -> Result<()> {
        let url = self.item_url("cachedContents", bare_cache_id(name), "")?;
        self.delete_item("cachedContents.delete", url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_proto_text() {
        assert_eq!(proto_duration(Duration::from_secs(300)), "300s");
        assert_eq!(proto_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(proto_duration(Duration::from_nanos(1_000_000_001)), "1.000000001s");
    }

    #[test]
    fn the_documented_resource_parses_and_a_create_body_has_only_inputs() {
        let json = r#"{"name":"cachedContents/ez2yh6u6my9gnjvyigtxvnuf6e5qc79vgd7cc668",
            "model":"models/gemini-2.5-flash","createTime":"2026-09-07T01:18:17.438678Z",
            "updateTime":"2026-09-07T01:18:17.438678Z","expireTime":"2026-09-07T02:18:17.023637828Z",
            "displayName":"","usageMetadata":{"totalTokenCount":7021}}"#;
        let cache: CachedContent = serde_json::from_str(json).unwrap();
        assert_eq!(cache.id(), "ez2yh6u6my9gnjvyigtxvnuf6e5qc79vgd7cc668");
        assert_eq!(cache.usage_metadata.unwrap().total_token_count, 7021);
        let create = CachedContent {
            model: "models/gemini-2.5-flash".into(),
            ttl: Some("300s".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            serde_json::json!({"model": "models/gemini-2.5-flash", "ttl": "300s"})
        );
        let empty: CachedContentList = serde_json::from_str("{}").unwrap();
        assert!(empty.cached_contents.is_empty() && empty.next_page_token.is_none());
    }
}
