//! The real client address: `X-Forwarded-For` is believed only from trusted proxies.

use std::net::IpAddr;

use crate::config::ProxyNet;

/// Appends an address as text (`192.0.2.7`, `2001:db8::1`): IPv4 digits written directly,
/// since every proxied request writes two or three addresses (headers upstream, the access
/// line) and `Display` costs several times as much.
pub fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Trusted proxy ranges.
#[derive(Debug, Default, Clone)]
pub struct TrustedProxies {
    nets: Vec<ProxyNet>,
}

impl TrustedProxies {
    /// From the config's `trusted_proxies` (parsed at load).
    pub fn new(entries: &[ProxyNet]) -> TrustedProxies {
        TrustedProxies {
            nets: entries.to_vec(),
        }
    }

    /// Whether an address is a trusted proxy (an IPv4-mapped IPv6 peer as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.0.contains(&ip))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xff_only_from_trusted_peers() {
        let net = |s: &str| ProxyNet::try_from(s.to_string()).expect("net");
        let t = TrustedProxies::new(&[net("10.0.0.0/8"), net("192.168.1.10"), net("fd00::/8")]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(t.client_ip(ip("1.2.3.4"), Some("6.6.6.6")), ip("1.2.3.4"));
        assert_eq!(
            t.client_ip(ip("10.0.0.1"), Some("6.6.6.6, 7.7.7.7, 10.0.0.2")),
            ip("7.7.7.7")
        );
        assert_eq!(t.client_ip(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), Some("garbage")), ip("10.0.0.1"));
        assert!(t.contains(ip("192.168.1.10")) && !t.contains(ip("192.168.1.11")));
        assert!(t.contains(ip("::ffff:10.1.2.3")) && t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(ProxyNet::try_from("10.0.0.0/33".to_string()).is_err());
        assert!(ProxyNet::try_from("nonsense".to_string()).is_err());
    }
}
