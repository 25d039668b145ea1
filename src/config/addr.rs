//! Listen addresses written as `host:port` (`127.0.0.1:8080`, `[::1]:8443`), parsed at load.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

/// A socket address read from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(ListenAddr).map_err(|_| {
            serde::de::Error::custom(format!("`{text}` is not an address such as 127.0.0.1:8080"))
        })
    }
}

impl fmt::Display for ListenAddr {
    /// `ip:port`, an IPv6 address in brackets: usable in a URL and by a listener.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
