//! The real client address: `X-Forwarded-For` is believed only from trusted proxies.

use std::net::IpAddr;

/// Trusted proxy ranges.
#[derive(Debug, Default, Clone)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// From the config's `trusted_proxies` (validated at load).
    pub fn new(entries: &[String]) -> TrustedProxies {
        TrustedProxies {
            nets: entries
                .iter()
                .filter_map(|e| crate::config::parse_cidr(e))
                .collect(),
        }
    }

    /// Whether an address is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|(net, len)| in_net(ip, *net, *len))
    }

    /// The client: walking `X-Forwarded-For` from the right, the first address that is not a
    /// trusted proxy; the peer itself when the peer is not trusted.
    pub fn client_ip(&self, peer: IpAddr, xff: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let Some(list) = xff else { return peer };
        let mut last = peer;
        for hop in list.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => last = ip,
                Ok(ip) => return ip,
                Err(_) => return last,
            }
        }
        last
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xff_only_from_trusted_peers() {
        let t = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(t.client_ip(ip("1.2.3.4"), Some("6.6.6.6")), ip("1.2.3.4"));
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), Some("6.6.6.6, 7.7.7.7, 10.0.0.2")),
            ip("7.7.7.7")
        );
        assert_eq!(t.client_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("garbage")), ip("10.0.0.1"));
    }
}
