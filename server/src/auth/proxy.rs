//! A trusted proxy's header (`PARLEY_AUTH_PROXY_HEADER`, e.g. `X-Forwarded-Email` from
//! oauth2-proxy): believed only on connections from `PARLEY_AUTH_PROXY_FROM`. From anywhere
//! else it is ignored, and logged (at most once a minute, so a visitor cannot flood the log).

use std::{
    net::IpAddr,
    sync::atomic::{AtomicI64, Ordering},
};

use parley_store::Identity;

/// Longest header value taken as an email, bytes.
const MAX_EMAIL_BYTES: usize = 320;

/// The header and the addresses it is believed from.
#[derive(Debug)]
pub struct TrustedHeader {
    name: axum::http::HeaderName,
    from: Vec<ipnet::IpNet>,
    last_warned_ms: AtomicI64,
}

impl TrustedHeader {
    /// Believes `name` from the networks `from`.
    ///
    /// # Errors
    /// A sentence when `name` is not a header name or `from` is empty.
    pub fn new(name: &str, from: Vec<ipnet::IpNet>) -> Result<TrustedHeader, String> {
        let name = axum::http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("PARLEY_AUTH_PROXY_HEADER: `{name}` is not a header name"))?;
        if from.is_empty() {
            return Err("PARLEY_AUTH_PROXY_FROM is required with PARLEY_AUTH_PROXY_HEADER".into());
        }
        Ok(TrustedHeader { name, from, last_warned_ms: AtomicI64::new(i64::MIN) })
    }

    /// The identity the header gives, when it is present, holds an email and came from a
    /// trusted `peer`: issuer `proxy:<header>`, subject the email in lower case.
    pub fn identity(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<Identity> {
        let value = headers.get(&self.name)?;
        if !peer.is_some_and(|ip| self.from.iter().any(|net| net.contains(&ip))) {
            self.warn_untrusted(peer);
            return None;
        }
        let email = value.to_str().ok()?.trim().to_ascii_lowercase();
        if email.is_empty() || email.len() > MAX_EMAIL_BYTES || !email.contains('@') {
            return None;
        }
        Some(Identity {
            issuer: format!("proxy:{}", self.name),
            subject: email.clone(),
            email: Some(email),
            email_verified: true,
            name: None,
        })
    }

    fn warn_untrusted(&self, peer: Option<IpAddr>) {
        let now = parley_files::time::now_ms();
        let last = self.last_warned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000
            && self
                .last_warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(header = %self.name, peer = ?peer, "a sign-in header from an untrusted address was ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_counts_only_from_trusted_addresses() {
        let trusted =
            TrustedHeader::new("X-Forwarded-Email", vec!["10.0.0.0/8".parse().unwrap()]).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-email", "Ann@Example.org".parse().unwrap());
        let inside = trusted.identity(Some("10.1.2.3".parse().unwrap()), &headers).unwrap();
        assert_eq!(inside.subject, "ann@example.org");
        assert_eq!(inside.issuer, "proxy:x-forwarded-email");
        assert!(trusted.identity(Some("192.168.0.1".parse().unwrap()), &headers).is_none());
        assert!(trusted.identity(None, &headers).is_none());
        headers.insert("x-forwarded-email", "not-an-email".parse().unwrap());
        assert!(trusted.identity(Some("10.1.2.3".parse().unwrap()), &headers).is_none());
        assert!(TrustedHeader::new("X-Email", vec![]).is_err());
        assert!(TrustedHeader::new("bad header", vec!["10.0.0.0/8".parse().unwrap()]).is_err());
    }
}
