//! Accepting connections, each bounded in time and in number, so that one visitor cannot
//! hold the server's sockets or descriptors: HTTP/1.1 with hyper (the shape of axum's
//! `serve-with-hyper` example), with
//!
//! * a **header-read timeout** (`PARLEY_HEADER_READ_TIMEOUT`): a connection must send a
//!   request's headers within it — the first request's and, on a kept-alive connection, the
//!   next one's, so it is also the idle timeout;
//! * a **write timeout** (`PARLEY_WRITE_TIMEOUT`): a response the client does not read for
//!   this long closes the connection (a stalled reader cannot hold an answer and its upstream
//!   slot);
//! * a cap on **connections per client address** (`PARLEY_MAX_CONNECTIONS_PER_ADDRESS`; IPv6
//!   by /64; not applied behind a trusted proxy, whose own address every connection has) and
//!   on **connections in all** (`PARLEY_MAX_CONNECTIONS`, by default what the descriptor limit
//!   allows), past which new connections are closed at once or wait in the kernel's backlog;
//! * the descriptor soft limit raised to the hard limit at start-up ([`raise_descriptor_limit`]).
//!
//! The minimum body rate is the body guard's ([`crate::guard::guard_bodies`]). HTTP/2 is not
//! served: browsers speak it only over TLS, which a reverse proxy in front terminates.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::ConnectInfo, Router};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tower::ServiceExt;

/// How connections are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers (also how long an idle connection stays open).
    pub header_read_timeout: Duration,
    /// Longest a response may wait for the client to read it.
    pub write_timeout: Duration,
    /// Connections one client address may hold at once; 0 for no cap.
    pub per_address: usize,
    /// Connections in all.
    pub total: usize,
}

/// Descriptors kept back from connections: the registry, originals being read or written,
/// connections to Gemini (about one per request), the emulator, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft limit on open descriptors to the hard limit (a server holding thousands of
/// connections needs more than the usual 1024), and returns the limit now in force. Where the
/// limit cannot be read or raised, the current one (or 1024) is returned.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "the open-descriptor limit could not be raised");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The connections that fit `descriptors` open descriptors: each may need a second one (its
/// call to Gemini, a file), and some are kept back for the rest. At least 64.
pub fn connections_for(descriptors: u64) -> usize {
    usize::try_from(descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 2)
        .unwrap_or(usize::MAX)
        .max(64)
}

/// The key of a client address for per-address limits: an IPv4 address as it is (also when
/// mapped into IPv6), an IPv6 address by its /64 prefix.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Connections open per address key.
#[derive(Debug, Default, Clone)]
struct PerAddress(Arc<Mutex<HashMap<String, usize>>>);

/// One connection counted against its address; uncounted when dropped.
struct Counted {
    table: PerAddress,
    key: String,
}

impl PerAddress {
    fn admit(&self, key: String, cap: usize) -> Option<Counted> {
        let mut table = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = table.entry(key.clone()).or_default();
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(Counted { table: self.clone(), key })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = table.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` resolves; then takes no new
/// connection and gives the requests in flight up to `grace` to finish (an answer streams to
/// its end, an upload reaches `ACTIVE`). Whatever still runs after that is cut off when the
/// process exits: the browser sees the request fail and keeps the message for Retry; a
/// spooled upload left in `staging/` is tidied at the next start. Each request carries the
/// peer's [`ConnectInfo<SocketAddr>`].
///
/// # Errors
/// None today: failed accepts (descriptors exhausted, a connection reset before it was
/// taken) are logged and retried; the signature keeps room for the listener's I/O errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.total.max(1)));
    let per_address = PerAddress::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // ECONNABORTED and the like pass at once; EMFILE/ENFILE need a moment.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(counted) = per_address.admit(address_key(peer.ip()), limits.per_address) else {
            tracing::debug!(peer = %address_key(peer.ip()), "too many connections from one address: closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let service =
            router.clone().map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(Box::pin(stream)), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((counted, permit));
        });
    }
    drop(listener);
    tracing::info!(grace = %humantime::format_duration(grace), "shutting down: finishing the requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every request finished; stopped"),
        () = tokio::time::sleep(grace) => tracing::warn!("requests still in flight after the shutdown grace period are cut off"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_host_or_ipv6_prefix() {
        assert_eq!(address_key("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(address_key("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, address_key("2001:db8:1:2:ffff:1:2:3".parse().unwrap()), "one /64, one key");
        assert_ne!(a, address_key("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn connections_fit_the_descriptors() {
        assert_eq!(connections_for(1024), 384);
        assert_eq!(connections_for(100), 64);
        assert_eq!(connections_for(1 << 20), ((1 << 20) - 256) / 2);
    }

    #[test]
    fn an_address_holds_at_most_its_cap() {
        let table = PerAddress::default();
        let first = table.admit("a".into(), 2).unwrap();
        let _second = table.admit("a".into(), 2).unwrap();
        assert!(table.admit("a".into(), 2).is_none());
        assert!(table.admit("b".into(), 2).is_some(), "another address");
        drop(first);
        assert!(table.admit("a".into(), 2).is_some(), "a closed connection frees its place");
        assert!(table.admit("a".into(), 0).is_some(), "0: no cap");
    }
}
