//! The access log: one event per request on the target `frontdoor::access`, with the request
//! id, the client, what was asked, the answer, the upstream and who called. The fields are
//! read from what the request already holds; nothing is formatted unless the line is written
//! (`tracing` evaluates the fields only when the target is enabled, see `log.access`).

use std::fmt;
use std::net::IpAddr;

use http::{HeaderValue, Method};

use crate::auth::Identity;
use crate::config::Upstream;
use crate::logging::{ACCESS, Client};

/// One request's line.
pub struct Access<'a> {
    /// `X-Request-Id`.
    pub request_id: &'a HeaderValue,
    /// The client's address (a trusted proxy's `X-Forwarded-For` believed).
    pub client: Option<IpAddr>,
    /// The method.
    pub method: &'a Method,
    /// The normalised host, empty when it was refused.
    pub host: &'a str,
    /// The canonical path (never the query: it may carry credentials), empty when refused.
    pub path: &'a str,
    /// The route's label, `frontdoor` for the own endpoints, `none` without a route.
    pub route: &'a str,
    /// The status sent, 0 when none was.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: usize,
    /// From the request's start to its end.
    pub seconds: f64,
    /// The upstream proxied to.
    pub upstream: Option<&'a Upstream>,
    /// From connecting upstream to its response header.
    pub upstream_seconds: Option<f64>,
    /// Who called, when a credential was accepted.
    pub identity: Option<&'a Identity>,
}

/// `host:port` of an upstream, formatted only when written.
struct Addr<'a>(&'a Upstream);

impl fmt::Display for Addr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.host, self.0.port)
    }
}

/// Writes the line, if the access log is on.
pub fn line(a: Access<'_>) {
    tracing::info!(
        target: ACCESS,
        request_id = a.request_id.to_str().unwrap_or("-"),
        client = %Client(a.client),
        method = a.method.as_str(),
        host = a.host,
        path = a.path,
        status = a.status,
        bytes = a.bytes,
        duration_ms = a.seconds * 1000.0,
        upstream = a.upstream.map(|u| tracing::field::display(Addr(u))),
        upstream_ms = a.upstream_seconds.map(|s| s * 1000.0),
        route = a.route,
        auth = a.identity.map(|i| i.kind.label()),
        user = a.identity.map(|i| i.user.as_str()),
        tenant = a.identity.map(|i| i.tenant.as_str()),
        "request"
    );
}
