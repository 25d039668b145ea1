//! Addresses parsed at load: listen sockets written as `host:port` (`127.0.0.1:8080`,
//! `[::1]:8443`) and web origins (`https://wiki.example.com:8443`).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};
use url::Url;

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

/// A web origin: scheme `http` or `https`, a host, perhaps a port, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub Url);

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match Url::parse(&text) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
                    && u.password().is_none() =>
            {
                Ok(Origin(u))
            }
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not an origin such as https://wiki.example.com:8443"
            ))),
        }
    }
}
