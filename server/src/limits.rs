//! Rate limits and quotas for the public site, with governor's keyed GCRA limiters: chat
//! requests, uploads and the Files calls (`check_files`, `list_uploads`, `delete_upload`) per
//! browser session and (four times as many) per client address, the views of shared links
//! (`/s/<token>…`) per address alone, and upload bytes per session and per address per hour — counted as they arrive, so a body without `Content-Length`
//! counts too. A refusal is 429 with [`AppError::TooManyRequests`] (a sentence with the wait)
//! and `Retry-After`; request counts are refused before the body is read.
//!
//! [`client_address`] puts the [`ClientAddress`] in every request first: the peer address, or
//! behind a trusted proxy the last `X-Forwarded-For` entry (the one that proxy added: earlier
//! ones are the client's to write); IPv6 keyed by its /64.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use app::{
    error::AppError,
    server::{ByteQuota, ChatAllowance, ClientAddress, Principal, RequestQuota, UploadAllowance},
};
use axum::{
    extract::{ConnectInfo, Request},
    http::header,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};
use parley_store::SharedRateLimits;

use crate::{endpoints::Limit, guard::Refusal};

/// A rate: `count` per `per`, written `20/min`, `5/s`, `100/h`, `1000/d`; `0` or `off` for
/// none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (also the burst).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" || text.eq_ignore_ascii_case("off") {
            return Ok(Rate { count: 0, per: Duration::from_secs(1) });
        }
        let (count, per) = text.split_once('/').ok_or("write a rate as N/s, N/min, N/h or N/d")?;
        let count =
            count.trim().parse::<u32>().map_err(|_| format!("`{count}` is not a whole number"))?;
        let per = match per.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => return Err(format!("`{other}` is not s, min, h or d")),
        };
        Ok(Rate { count, per })
    }
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate { count: 0, per: Duration::from_secs(1) };

    /// `count × factor` per period as a governor quota; `None` when the rate is zero.
    fn quota(self, factor: u32) -> Option<Quota> {
        let burst = NonZeroU32::new(self.count.saturating_mul(factor))?;
        Quota::with_period(self.per / burst.get()).map(|q| q.allow_burst(burst))
    }
}

/// The configured limits.
#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Chat requests per session (per address: four times as many).
    pub chat: Rate,
    /// Uploads per session (per address: four times as many).
    pub upload: Rate,
    /// Files calls (`check_files`, `list_uploads`, `delete_upload`) per session (per address:
    /// four times as many).
    pub files: Rate,
    /// Sync calls (`sync_*`) per session (per address: four times as many).
    pub sync: Rate,
    /// Requests for shared links (`/s/<token>…`) per client address.
    pub share_views: Rate,
    /// Upload bytes per session per hour (per address: four times as many); 0 for no quota.
    pub upload_bytes_per_hour: u64,
}

type Limiter = Option<DefaultKeyedRateLimiter<String>>;

/// A limiter per session and one per client address (four times the quota).
#[derive(Debug, Default)]
struct Pair {
    /// The limit's name in the shared store (`chat`, `upload`, `files`).
    name: &'static str,
    rate: Option<Rate>,
    session: Limiter,
    address: Limiter,
}

impl Pair {
    fn new(name: &'static str, rate: Rate) -> Self {
        let keyed = |quota: Option<Quota>| quota.map(governor::RateLimiter::keyed);
        Pair {
            name,
            rate: Some(rate).filter(|r| r.count > 0),
            session: keyed(rate.quota(1)),
            address: keyed(rate.quota(ADDRESS_FACTOR)),
        }
    }

    /// Takes `cells` from this process's session quota, then from the address's.
    fn check(&self, session: &str, address: &str, cells: u32) -> Result<(), AppError> {
        check(&self.session, session, cells).and_then(|()| check(&self.address, address, cells))
    }

    /// Takes `cells` (requests, or MiB of uploads) from the quotas: the ones all replicas
    /// share when there is a shared store, else (or when it fails, logged) this process's. A
    /// refusal is counted in `parley_rate_limit_refusals_total{limit}`.
    async fn take(
        &self,
        shared: Option<&SharedRateLimits>,
        session: &str,
        address: &str,
        cells: u32,
    ) -> Result<(), AppError> {
        if cells == 0 {
            return Ok(());
        }
        let mut verdict = None;
        if let (Some(pg), Some(rate)) = (shared, self.rate) {
            match self.take_shared(pg, rate, session, address, cells).await {
                Ok(shared) => verdict = Some(shared),
                Err(e) => tracing::warn!(error = %e, limit = self.name,
                    "the shared rate limit is unavailable: this process's limit applies"),
            }
        }
        let verdict = verdict.unwrap_or_else(|| self.check(session, address, cells));
        if verdict.is_err() {
            metrics::counter!("parley_rate_limit_refusals_total", "limit" => self.name)
                .increment(1);
        }
        verdict
    }

    /// `cells` from the shared quotas (GCRA in PostgreSQL, the database's clock).
    async fn take_shared(
        &self,
        pg: &SharedRateLimits,
        rate: Rate,
        session: &str,
        address: &str,
        cells: u32,
    ) -> Result<Result<(), AppError>, parley_store::StoreError> {
        for (key, factor) in [
            (format!("{}:s:{session}", self.name), 1),
            (format!("{}:a:{address}", self.name), ADDRESS_FACTOR),
        ] {
            let burst = rate.count.saturating_mul(factor).max(1);
            let emission_ms =
                i64::try_from((rate.per / burst).as_millis()).unwrap_or(i64::MAX).max(1);
            if let Some(wait_ms) = pg.take_cells(&key, emission_ms, burst, cells).await? {
                let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
                return Ok(Err(AppError::TooManyRequests { retry_after_secs }));
            }
        }
        Ok(Ok(()))
    }

    fn tidy(&self) {
        for limiter in [&self.session, &self.address].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limiters; shared by every request. With a PostgreSQL store, the limits are kept
/// there and shared by every replica (`chat` 4/min means four per session across all of them,
/// and the upload-bytes quota is the same across them).
#[derive(Debug, Default)]
pub struct Limits {
    chat: Pair,
    upload: Pair,
    files: Pair,
    sync: Pair,
    /// Keyed by the client address alone (a shared link's reader has no session).
    share_views: Pair,
    /// One cell per MiB.
    upload_mib: Pair,
    shared: Option<SharedRateLimits>,
}

/// Per-address limits are this many times the per-session ones (several people behind one NAT).
const ADDRESS_FACTOR: u32 = 4;

/// One cell of the upload-bytes quota.
const MIB: u64 = 1 << 20;

impl Limits {
    /// Limiters for `config`, the request limits kept in `shared` when there is one.
    pub fn new(config: LimitsConfig, shared: Option<SharedRateLimits>) -> Arc<Self> {
        let mib_per_hour =
            u32::try_from(config.upload_bytes_per_hour.div_ceil(MIB)).unwrap_or(u32::MAX);
        Arc::new(Limits {
            chat: Pair::new("chat", config.chat),
            upload: Pair::new("upload", config.upload),
            files: Pair::new("files", config.files),
            sync: Pair::new("sync", config.sync),
            share_views: Pair::new("share-views", config.share_views),
            upload_mib: Pair::new(
                "upload-mib",
                Rate { count: mib_per_hour, per: Duration::from_secs(3600) },
            ),
            shared,
        })
    }

    /// Forgets old keys of the shared limits (a day after their cells came back).
    pub async fn tidy_shared(&self) {
        if let Some(pg) = &self.shared {
            if let Err(e) = pg.tidy_rate_limits().await {
                tracing::warn!(error = %e, "old shared rate-limit keys could not be removed");
            }
        }
    }

    /// Forgets keys whose limits have fully replenished (memory stays bounded).
    pub fn tidy(&self) {
        for pair in
            [&self.chat, &self.upload, &self.files, &self.sync, &self.share_views, &self.upload_mib]
        {
            pair.tidy();
        }
    }

    fn has_byte_quota(&self) -> bool {
        self.upload_mib.session.is_some()
    }
}

fn check(limiter: &Limiter, key: &str, cells: u32) -> Result<(), AppError> {
    let Some(limiter) = limiter else { return Ok(()) };
    let Some(cells) = NonZeroU32::new(cells) else { return Ok(()) };
    match limiter.check_key_n(&key.to_string(), cells) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            Err(AppError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
        }
        // More than the whole quota at once: it would never pass.
        Err(_) => Err(AppError::TooManyRequests { retry_after_secs: 3600 }),
    }
}

/// The key of the address `forwarded_for` names last (the entry a trusted proxy added), if it
/// is an IP address.
fn forwarded_address(forwarded_for: &str) -> Option<IpAddr> {
    forwarded_for.rsplit(',').next()?.trim().parse().ok()
}

/// Puts the request's [`ClientAddress`] in its extensions (see the module's documentation).
pub async fn client_address<F: Future<Output = Response>>(
    trust_proxy: bool,
    mut req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let forwarded = trust_proxy
        .then(|| req.headers().get("x-forwarded-for")?.to_str().ok().and_then(forwarded_address))
        .flatten();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let key = forwarded.or(peer).map_or_else(|| "unknown".to_string(), crate::listen::address_key);
    req.extensions_mut().insert(ClientAddress(key));
    next(req).await
}

/// Counts an upload's bytes against the session's and the address's byte quotas as they
/// arrive; what `Content-Length` announced was taken before the body was read.
struct UploadBytes {
    limits: Arc<Limits>,
    session: String,
    address: String,
    /// Bytes already taken (from `Content-Length`).
    prepaid: u64,
    /// (bytes counted, MiB taken beyond `prepaid`).
    counted: Mutex<(u64, u64)>,
}

impl ByteQuota for UploadBytes {
    fn take(&self, bytes: u64) -> futures::future::BoxFuture<'_, Result<(), AppError>> {
        let cells = {
            let mut counted =
                self.counted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            counted.0 += bytes;
            let owed = counted.0.saturating_sub(self.prepaid).div_ceil(MIB);
            let cells = owed.saturating_sub(counted.1);
            // Counted as taken even if refused: a refusal ends the upload.
            counted.1 = counted.1.max(owed);
            u32::try_from(cells).unwrap_or(u32::MAX)
        };
        let limits = &self.limits;
        Box::pin(async move {
            limits
                .upload_mib
                .take(limits.shared.as_ref(), &self.session, &self.address, cells)
                .await
        })
    }
}

/// Takes a chat's extra weight (a dearer model) from the chat rate limits of its session and
/// address (see [`app::server::RequestQuota`]).
struct ChatRequests {
    limits: Arc<Limits>,
    session: String,
    address: String,
}

impl RequestQuota for ChatRequests {
    fn take(&self, requests: u32) -> futures::future::BoxFuture<'_, Result<(), AppError>> {
        let limits = &self.limits;
        Box::pin(async move {
            limits.chat.take(limits.shared.as_ref(), &self.session, &self.address, requests).await
        })
    }
}

/// Applies the limits to the server functions that have them (after the session and address
/// middleware).
pub async fn rate_limit<F: Future<Output = Response>>(
    limits: &Arc<Limits>,
    mut req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let path = req.uri().path();
    // Starting a sign-in writes a row (at most `MAX_FLOWS` under way): it counts as a Files call.
    let kind = crate::endpoints::find(path)
        .map(|e| e.limit)
        .or_else(|| path.starts_with("/auth/login/").then_some(Limit::Files))
        .or_else(|| crate::share::is_link(path).then_some(Limit::ShareViews));
    let pair = match kind {
        Some(Limit::Chat) => &limits.chat,
        Some(Limit::Upload) => &limits.upload,
        Some(Limit::Files) => &limits.files,
        Some(Limit::Sync) => &limits.sync,
        Some(Limit::ShareViews) => &limits.share_views,
        Some(Limit::Unlimited) => return next(req).await,
        None if crate::endpoints::is_unknown_function(path) => {
            let error = AppError::NotFound(format!("there is no server function {path}"));
            return Refusal(error).into_response();
        }
        None => return next(req).await,
    };
    let address = req.extensions().get::<ClientAddress>().map(|a| a.0.clone()).unwrap_or_default();
    let session = match req.extensions().get::<Principal>() {
        Some(principal) if kind != Some(Limit::ShareViews) => principal.owner().to_string(),
        // No session: the address stands for it (else every reader would share one key).
        _ => address.clone(),
    };
    let mut verdict = pair.take(limits.shared.as_ref(), &session, &address, 1).await;
    let mut limit = pair.name;
    let chat = kind == Some(Limit::Chat);
    if verdict.is_ok() && kind == Some(Limit::Upload) && limits.has_byte_quota() {
        limit = limits.upload_mib.name;
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let mib = announced.div_ceil(MIB);
        let cells = u32::try_from(mib).unwrap_or(u32::MAX);
        verdict = limits.upload_mib.take(limits.shared.as_ref(), &session, &address, cells).await;
        let quota = UploadBytes {
            limits: limits.clone(),
            session: session.clone(),
            address: address.clone(),
            prepaid: mib * MIB,
            counted: Mutex::new((0, 0)),
        };
        req.extensions_mut().insert(UploadAllowance(Arc::new(quota)));
    }
    if verdict.is_ok() && chat {
        let requests = ChatRequests { limits: limits.clone(), session, address: address.clone() };
        req.extensions_mut().insert(ChatAllowance(Arc::new(requests)));
    }
    match verdict {
        Ok(()) => next(req).await,
        Err(error) => {
            tracing::info!(path = %req.uri().path(), %address, limit, "rate limit reached");
            Refusal(error).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "20/min".parse::<Rate>().unwrap(),
            Rate { count: 20, per: Duration::from_secs(60) }
        );
        assert_eq!("5/s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        assert_eq!("100 / h".parse::<Rate>().unwrap().count, 100);
        assert_eq!("off".parse::<Rate>().unwrap().count, 0);
        assert!("0".parse::<Rate>().unwrap().quota(1).is_none());
        assert!("ten/min".parse::<Rate>().is_err());
        assert!("10/fortnight".parse::<Rate>().is_err());
        assert!("10".parse::<Rate>().is_err());
        let quota = "6/min".parse::<Rate>().unwrap().quota(1).unwrap();
        assert_eq!(
            (quota.burst_size().get(), quota.replenish_interval()),
            (6, Duration::from_secs(10))
        );
    }

    #[test]
    fn the_last_forwarded_address_counts() {
        assert_eq!(
            forwarded_address("198.51.100.1, 203.0.113.9").unwrap().to_string(),
            "203.0.113.9"
        );
        assert_eq!(forwarded_address(" 2001:db8::1 ").unwrap().to_string(), "2001:db8::1");
        assert!(forwarded_address("not an address").is_none());
    }

    #[tokio::test]
    async fn upload_bytes_are_counted_as_they_arrive() {
        let config = LimitsConfig {
            chat: Rate::OFF,
            upload: Rate::OFF,
            files: Rate::OFF,
            sync: Rate::OFF,
            share_views: Rate::OFF,
            upload_bytes_per_hour: 3 * MIB,
        };
        let limits = Limits::new(config, None);
        let quota = |prepaid| UploadBytes {
            limits: limits.clone(),
            session: "s".into(),
            address: "a".into(),
            prepaid,
            counted: Mutex::new((0, 0)),
        };
        // Without a length: 2 MiB in small pieces pass, the third and fourth MiB do not.
        let chunked = quota(0);
        for _ in 0..32 {
            chunked.take(64 << 10).await.unwrap();
        }
        chunked.take(MIB).await.unwrap();
        assert!(matches!(chunked.take(1).await, Err(AppError::TooManyRequests { .. })));
        // Another cookie at the same address shares the address's quota (4 × 3 MiB).
        let other = UploadBytes { session: "t".into(), ..quota(0) };
        assert!(other.take(3 * MIB).await.is_ok());
        let third = UploadBytes { session: "u".into(), ..quota(0) };
        assert!(third.take(3 * MIB).await.is_ok());
        let fourth = UploadBytes { session: "v".into(), ..quota(0) };
        assert!(fourth.take(3 * MIB).await.is_ok(), "the address has used 11 MiB");
        let fifth = UploadBytes { session: "x".into(), ..quota(0) };
        assert!(fifth.take(2 * MIB).await.is_err(), "the address has used its 12 MiB");
        // What was prepaid is not taken twice.
        let prepaid = UploadBytes { session: "w".into(), address: "b".into(), ..quota(3 * MIB) };
        prepaid.take(3 * MIB).await.unwrap();
        let after = UploadBytes { session: "w".into(), address: "b".into(), ..quota(0) };
        after.take(3 * MIB).await.expect("the prepaid bytes took nothing more");
    }

    #[test]
    fn a_session_gets_its_burst_then_a_wait() {
        let limiter: Limiter =
            "3/min".parse::<Rate>().unwrap().quota(1).map(governor::RateLimiter::keyed);
        for _ in 0..3 {
            assert_eq!(check(&limiter, "alice", 1), Ok(()));
        }
        let Err(AppError::TooManyRequests { retry_after_secs }) = check(&limiter, "alice", 1)
        else {
            panic!()
        };
        assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}");
        assert_eq!(check(&limiter, "bob", 1), Ok(()), "another session has its own");
        assert!(check(&limiter, "carol", 10).is_err(), "more than the whole quota at once");
        assert_eq!(check(&None, "anyone", 1000), Ok(()), "no limit configured");
    }
}
