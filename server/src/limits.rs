//! Rate limits and quotas for the public site, with governor's keyed GCRA limiters: chat
//! requests and uploads per browser session and (four times as many) per client address, and
//! upload bytes per session per hour. A refusal is 429 with [`AppError::TooManyRequests`]
//! (a sentence with the wait) and `Retry-After`, before the body is read.

use std::{net::SocketAddr, num::NonZeroU32, str::FromStr, sync::Arc, time::Duration};

use app::{error::AppError, server::Session};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota};

use crate::guard::refuse;

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
        let count = count.trim().parse::<u32>().map_err(|_| format!("`{count}` is not a whole number"))?;
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
    /// Upload bytes per session per hour; 0 for no quota.
    pub upload_bytes_per_hour: u64,
    /// Take the client address from `X-Forwarded-For` (behind a reverse proxy one trusts).
    pub trust_proxy: bool,
}

type Limiter = Option<DefaultKeyedRateLimiter<String>>;

/// The limiters; shared by every request.
#[derive(Debug, Default)]
pub struct Limits {
    chat: Limiter,
    chat_by_address: Limiter,
    upload: Limiter,
    upload_by_address: Limiter,
    /// One cell per MiB.
    upload_mib: Limiter,
    trust_proxy: bool,
}

/// Per-address limits are this many times the per-session ones (several people behind one NAT).
const ADDRESS_FACTOR: u32 = 4;

impl Limits {
    /// Limiters for `config`.
    pub fn new(config: LimitsConfig) -> Arc<Self> {
        let keyed = |quota: Option<Quota>| quota.map(governor::RateLimiter::keyed);
        let mib_per_hour = u32::try_from(config.upload_bytes_per_hour.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        Arc::new(Limits {
            chat: keyed(config.chat.quota(1)),
            chat_by_address: keyed(config.chat.quota(ADDRESS_FACTOR)),
            upload: keyed(config.upload.quota(1)),
            upload_by_address: keyed(config.upload.quota(ADDRESS_FACTOR)),
            upload_mib: keyed(Rate { count: mib_per_hour, per: Duration::from_secs(3600) }.quota(1)),
            trust_proxy: config.trust_proxy,
        })
    }

    /// Forgets keys whose limits have fully replenished (memory stays bounded).
    pub fn tidy(&self) {
        for limiter in [&self.chat, &self.chat_by_address, &self.upload, &self.upload_by_address, &self.upload_mib].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn address(&self, req: &Request) -> String {
        let forwarded = self
            .trust_proxy
            .then(|| req.headers().get("x-forwarded-for")?.to_str().ok()?.split(',').next().map(|a| a.trim().to_string()))
            .flatten();
        forwarded
            .or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()))
            .unwrap_or_else(|| "unknown".into())
    }
}

fn check(limiter: &Limiter, key: &str, cells: u32) -> Result<(), AppError> {
    let Some(limiter) = limiter else { return Ok(()) };
    let cells = NonZeroU32::new(cells).unwrap_or(NonZeroU32::MIN);
    match limiter.check_key_n(&key.to_string(), cells) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            Err(AppError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 })
        }
        // More than the whole quota at once: it would never pass.
        Err(_) => Err(AppError::TooManyRequests { retry_after_secs: 3600 }),
    }
}

/// Applies the limits to `chat` and `upload_file` (after the session middleware).
pub async fn rate_limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (by_session, by_address) = match path {
        "/api/chat" => (&limits.chat, &limits.chat_by_address),
        "/api/upload_file" => (&limits.upload, &limits.upload_by_address),
        _ => return next.run(req).await,
    };
    let session = req.extensions().get::<Session>().map(|s| s.0.clone()).unwrap_or_default();
    let address = limits.address(&req);
    let mut verdict = check(by_session, &session, 1).and_then(|()| check(by_address, &address, 1));
    if verdict.is_ok() && path == "/api/upload_file" {
        let bytes = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
        let mib = u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        verdict = check(&limits.upload_mib, &session, mib);
    }
    match verdict {
        Ok(()) => next.run(req).await,
        Err(error) => {
            tracing::info!(path, %address, "rate limit reached");
            let wait = match &error {
                AppError::TooManyRequests { retry_after_secs } => *retry_after_secs,
                _ => 1,
            };
            let mut res = refuse(error);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("20/min".parse::<Rate>().unwrap(), Rate { count: 20, per: Duration::from_secs(60) });
        assert_eq!("5/s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        assert_eq!("100 / h".parse::<Rate>().unwrap().count, 100);
        assert_eq!("off".parse::<Rate>().unwrap().count, 0);
        assert!("0".parse::<Rate>().unwrap().quota(1).is_none());
        assert!("ten/min".parse::<Rate>().is_err());
        assert!("10/fortnight".parse::<Rate>().is_err());
        assert!("10".parse::<Rate>().is_err());
        let quota = "6/min".parse::<Rate>().unwrap().quota(1).unwrap();
        assert_eq!((quota.burst_size().get(), quota.replenish_interval()), (6, Duration::from_secs(10)));
    }

    #[test]
    fn a_session_gets_its_burst_then_a_wait() {
        let limiter: Limiter = "3/min".parse::<Rate>().unwrap().quota(1).map(governor::RateLimiter::keyed);
        for _ in 0..3 {
            assert_eq!(check(&limiter, "alice", 1), Ok(()));
        }
        let Err(AppError::TooManyRequests { retry_after_secs }) = check(&limiter, "alice", 1) else { panic!() };
        assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}");
        assert_eq!(check(&limiter, "bob", 1), Ok(()), "another session has its own");
        assert!(check(&limiter, "carol", 10).is_err(), "more than the whole quota at once");
        assert_eq!(check(&None, "anyone", 1000), Ok(()), "no limit configured");
    }
}
