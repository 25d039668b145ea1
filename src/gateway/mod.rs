//! The proxy: route matching, the credential and policy decision, identity headers.

pub mod access_log;
pub mod assertion;
pub mod decide;
pub mod explain;
pub mod forward_auth;
pub mod forwarded;
pub mod framing;
pub mod headers;
pub mod host;
pub mod login;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod rules;

pub use proxy::Gateway;

use crate::config::Config;

/// The gateway's part of the state, built from the configuration: its routes and the proxies
/// in front whose forwarding headers it believes.
pub struct Edge {
    /// Proxied routes.
    pub routes: routes::RouteTable,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted: forwarded::TrustedProxies,
    /// `public_url`'s scheme, the `X-Forwarded-Proto` sent upstream for a client that did not
    /// come over frontdoor's TLS (parsed once: it is on every proxied request).
    pub public_scheme: &'static str,
}

impl Edge {
    /// The gateway's part of a configuration.
    pub fn new(config: &Config) -> Edge {
        Edge {
            routes: routes::RouteTable::new(config),
            trusted: forwarded::TrustedProxies::new(&config.trusted_proxies),
            public_scheme: if config.public_url().scheme() == "https" {
                "https"
            } else {
                "http"
            },
        }
    }
}
