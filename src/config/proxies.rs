//! `server.trusted_proxies`: the load balancers whose `X-Forwarded-For` is
//! believed. Behind one, every connection comes from the balancer; the
//! client's address (for the failed-login limits, audit rows and the access
//! log) is then the one it forwards. From any other peer the header is
//! ignored: anyone can send it.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Entries in the list at most (each is checked on every request).
const MAX_PROXIES: usize = 64;
/// `X-Forwarded-For` entries walked at most, from the right: a client sends
/// as many as it likes.
const MAX_HOPS: usize = 16;

/// Addresses (`10.0.0.5`) and networks (`10.0.0.0/8`), as written in the
/// configuration; empty by default (no proxy trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    fn try_from(list: Vec<String>) -> Result<Self, String> {
        if list.len() > MAX_PROXIES {
            return Err(format!("at most {MAX_PROXIES} entries"));
        }
        list.iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| format!("{s:?} is neither an IP address nor a network such as 10.0.0.0/8"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl From<TrustedProxies> for Vec<String> {
    fn from(p: TrustedProxies) -> Self {
        p.0.iter().map(ToString::to_string).collect()
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the TCP peer's, unless the peer is a trusted
    /// proxy; then the rightmost `X-Forwarded-For` entry (over every
    /// `forwarded_for` header, in order) that is not itself a trusted proxy.
    /// A malformed entry ends the walk at the last address vouched for, so
    /// no garbage becomes the source.
    pub fn client_addr<'a>(&self, peer: IpAddr, forwarded_for: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        for entry in forwarded_for.rev().flat_map(|h| h.rsplit(',')).take(MAX_HOPS) {
            let Some(ip) = parse_entry(entry.trim()) else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, and with a
/// port `1.2.3.4:5678` or `[2001:db8::1]:5678`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::try_from(list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("valid list")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks_and_names_a_bad_entry() {
        let p = proxies(&["10.0.0.5", "192.168.0.0/16", "2001:db8::/32", " 127.0.0.1 "]);
        assert_eq!(Vec::<String>::from(p), vec!["10.0.0.5/32", "192.168.0.0/16", "2001:db8::/32", "127.0.0.1/32"]);
        let err = TrustedProxies::try_from(vec!["10.0.0.0/8".to_owned(), "lb.internal".to_owned()]).unwrap_err();
        assert!(err.contains("\"lb.internal\""), "{err}");
        assert!(TrustedProxies::try_from(vec!["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::try_from(vec!["1.1.1.1".to_owned(); 65]).is_err());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_addr(ip("10.0.0.5"), ["203.0.113.7"].into_iter()), ip("10.0.0.5"));
        let p = proxies(&["10.0.0.0/8"]);
        // An untrusted peer's header is ignored.
        assert_eq!(p.client_addr(ip("198.51.100.1"), ["203.0.113.7"].into_iter()), ip("198.51.100.1"));
        // A trusted peer: the forwarded address.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["203.0.113.7"].into_iter()), ip("203.0.113.7"));
        // No header: the peer.
        assert_eq!(p.client_addr(ip("10.0.0.5"), std::iter::empty()), ip("10.0.0.5"));
        // IPv4 peers on an IPv6 socket.
        assert_eq!(p.client_addr(ip("::ffff:10.0.0.5"), ["203.0.113.7"].into_iter()), ip("203.0.113.7"));
    }

    #[test]
    fn the_rightmost_untrusted_entry_wins_over_what_the_client_wrote() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client wrote 1.1.1.1 itself; the balancer appended its real address.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["1.1.1.1, 203.0.113.7"].into_iter()), ip("203.0.113.7"));
        // Two proxies in a row: skip the inner one.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["1.1.1.1, 203.0.113.7, 10.0.0.9"].into_iter()), ip("203.0.113.7"));
        // Several header lines are one list, in order.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["1.1.1.1", "203.0.113.7"].into_iter()), ip("203.0.113.7"));
        // Ports and brackets.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["[2001:db8::7]:4711"].into_iter()), ip("2001:db8::7"));
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["203.0.113.7:4711"].into_iter()), ip("203.0.113.7"));
        // Garbage stops at the last address vouched for.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["203.0.113.7, garbage"].into_iter()), ip("10.0.0.5"));
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["garbage, 10.0.0.9"].into_iter()), ip("10.0.0.9"));
        // Every entry trusted: the leftmost.
        assert_eq!(p.client_addr(ip("10.0.0.5"), ["10.0.0.8, 10.0.0.9"].into_iter()), ip("10.0.0.8"));
        // A long list is walked only so far.
        let long = vec!["10.0.0.1"; 100].join(", ");
        assert_eq!(p.client_addr(ip("10.0.0.5"), [long.as_str(), "10.0.0.2"].into_iter()), ip("10.0.0.1"));
    }
}
