//! The client's address: the TCP peer's, or, when the peer is a trusted
//! load balancer (`server.trusted_proxies`), the one it forwards in
//! `X-Forwarded-For`. Resolved once per request by the request-log
//! middleware; everyone who records a source (the failed-login limits, audit
//! rows, the access log) reads it through [`client_addr`].

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::{web, HttpMessage, HttpRequest};

use crate::config::proxies::TrustedProxies;

/// The address resolved for this request.
#[derive(Debug, Clone, Copy)]
struct ClientAddr(IpAddr);

/// The app data the middleware reads the trusted proxies from.
pub(super) struct Proxies(pub(super) TrustedProxies);

/// Resolves the request's client address and keeps it in the request.
pub(super) fn resolve(req: &ServiceRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let client = match req.app_data::<web::Data<Proxies>>() {
        Some(proxies) if !proxies.0.is_empty() => {
            // A value that is not text stops the walk like a malformed entry.
            let headers: Vec<&str> = req.headers().get_all("x-forwarded-for").map(|v| v.to_str().unwrap_or("(not text)")).collect();
            proxies.0.client_addr(peer, headers.iter().copied())
        }
        _ => peer.to_canonical(),
    };
    req.extensions_mut().insert(ClientAddr(client));
    Some(client)
}

/// A resolved client address as text (`unknown` without one); the access
/// log formats it without making a string first.
pub(super) struct Peer(pub(super) Option<IpAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// The client's address as text (`unknown` without a peer address).
pub fn client_addr(req: &HttpRequest) -> String {
    let resolved = req.extensions().get::<ClientAddr>().map(|c| c.0);
    // Without the middleware (a route mounted elsewhere), the peer: never a header.
    Peer(resolved.or_else(|| req.peer_addr().map(|a| a.ip().to_canonical()))).to_string()
}
