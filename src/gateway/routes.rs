//! Route table: exact host before `*`, then the longest path prefix.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use pingora::http::CasedHeaderName;

use crate::config::{Config, HeaderField, Policy, Upstream};

/// A route ready for matching and proxying.
#[derive(Debug)]
pub struct Route {
    /// Label for metrics and logs: `host/prefix`.
    pub label: String,
    /// Host to match (lowercase), or `*`.
    pub host: String,
    /// Path prefix.
    pub path_prefix: String,
    /// Where requests go.
    pub upstream: Upstream,
    /// The upstream's address when it is an IP literal (no DNS on the request path).
    pub addr: Option<std::net::SocketAddr>,
    /// public or authenticated.
    pub policy: Policy,
    /// Required groups (any of).
    pub groups: Vec<String>,
    /// Required roles (any of).
    pub roles: Vec<String>,
    /// Ordered access rules; when empty, `policy`, `groups` and `roles` decide.
    pub rules: Vec<super::rules::Rule>,
    /// Whether X-Contact-Hash is accepted.
    pub allow_contact_hash: bool,
    /// Required `aud` of bearer tokens (the issuer when unset).
    pub audience: Option<String>,
    /// Injected header names, indexed by `HeaderField`; `None` for a header this route does
    /// not send (configured with an empty name).
    pub header_names: [Option<CasedHeaderName>; 8],
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream read timeout.
    pub read_timeout: Duration,
    /// The `Host` sent upstream; `None` passes the client's on.
    pub upstream_host: Option<http::HeaderValue>,
    /// Whether the client's `Authorization` header is dropped before the upstream.
    pub strip_authorization: bool,
    /// Whether `path_prefix` is removed from the path sent upstream.
    pub strip_prefix: bool,
    /// The name sent as SNI to a TLS upstream and checked against its certificate.
    pub sni: String,
    /// The CA certificates a TLS upstream's certificate must chain to, instead of the
    /// system's roots, and a key of them that keeps their pooled connections apart.
    pub ca: Option<(crate::tls::UpstreamCa, u64)>,
    /// The signed identity assertion sent upstream, when the route asks for one.
    pub assertion: Option<RouteAssertion>,
}

/// A route's signed identity assertion (`routes[].assertion`).
#[derive(Debug)]
pub struct RouteAssertion {
    /// The header that carries it.
    pub header: CasedHeaderName,
    /// Its `aud`; `None`: the route's host, or the request's on a `*` route.
    pub audience: Option<String>,
    /// Its lifetime.
    pub lifetime: Duration,
}

impl Route {
    /// The target sent upstream when the route strips its prefix, from the request's raw
    /// target (path and query): `None` when the raw path does not spell the prefix literally
    /// (an escape or a path parameter in it) — refused, since the upstream would otherwise
    /// read a path the route never matched.
    pub fn stripped_target(&self, raw: &str) -> Option<String> {
        let (path, query) = match raw.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (raw, None),
        };
        if !prefix_matches(&self.path_prefix, path) {
            return None;
        }
        let rest = &path[self.path_prefix.len()..];
        let mut target = if rest.starts_with('/') {
            rest.to_string()
        } else {
            format!("/{rest}")
        };
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        Some(target)
    }
}

/// The `Host` a route sends upstream: its `host_header`, else the upstream's own authority
/// (default port left out) without `preserve_host`, else none (the client's passes on).
fn upstream_host(r: &crate::config::RouteConfig) -> Option<http::HeaderValue> {
    let u = &r.upstream;
    let value = match &r.host_header {
        Some(h) => h.clone(),
        None if r.preserve_host => return None,
        None if u.port == if u.tls { 443 } else { 80 } => u.host.clone(),
        None => format!("{}:{}", u.host, u.port),
    };
    // Checked at load (`host_header`) or made of a parsed URL's host.
    http::HeaderValue::from_str(&value).ok()
}

/// A route's CA file, checked when the configuration loaded; should it have changed since
/// and no longer load, an empty list, which Pingora refuses: the upstream answers `502`
/// rather than being trusted on the system's roots.
fn upstream_ca(path: &std::path::Path) -> (crate::tls::UpstreamCa, u64) {
    use std::hash::{Hash, Hasher};
    let ca = crate::tls::load_ca(path).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the upstream CA file no longer loads; the route's upstream is refused");
        std::sync::Arc::from(Vec::new())
    });
    let mut key = std::collections::hash_map::DefaultHasher::new();
    for cert in ca.iter() {
        cert.borrow_raw_cert().hash(&mut key);
    }
    // Non-zero: 0 is the group of connections verified with the system's roots.
    (ca, key.finish() | 1)
}

/// All routes.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Builds the table from a validated config.
    pub fn new(config: &Config) -> RouteTable {
        let mut routes: Vec<Arc<Route>> = config
            .routes
            .iter()
            .map(|r| {
                let upstream = r.upstream.clone();
                let tls = r.upstream_tls.as_ref();
                let header_names = HeaderField::ALL.map(|f| match r.headers.get(&f) {
                    Some(n) if n.is_empty() => None,
                    Some(n) => HeaderName::from_bytes(n.as_bytes())
                        .ok()
                        .map(CasedHeaderName::new),
                    None => Some(CasedHeaderName::from_static(lower(f))),
                });
                Arc::new(Route {
                    label: format!("{}{}", r.host, r.path_prefix),
                    host: super::host::normalise(&r.host),
                    path_prefix: r.path_prefix.clone(),
                    addr: upstream
                        .host
                        .parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| std::net::SocketAddr::new(ip, upstream.port)),
                    upstream,
                    policy: r.policy,
                    groups: r.groups.clone(),
                    roles: r.roles.clone(),
                    rules: r.rules.clone(),
                    allow_contact_hash: r.allow_contact_hash,
                    audience: r.audience.clone(),
                    header_names,
                    connect_timeout: r.connect_timeout.0,
                    read_timeout: r.read_timeout.0,
                    assertion: r.assertion.0.as_ref().map(|a| RouteAssertion {
                        header: CasedHeaderName::new(a.header.clone()),
                        audience: a.audience.clone(),
                        lifetime: a.lifetime.0,
                    }),
                    upstream_host: upstream_host(r),
                    strip_authorization: r.strip_authorization,
                    strip_prefix: r.strip_prefix,
                    sni: tls
                        .and_then(|t| t.sni.clone())
                        .unwrap_or_else(|| r.upstream.host.clone()),
                    ca: tls.and_then(|t| t.ca_file.as_deref()).map(upstream_ca),
                })
            })
            .collect();
        // Exact hosts first, then longer prefixes: the first match wins.
        routes.sort_by(|a, b| {
            (a.host == "*")
                .cmp(&(b.host == "*"))
                .then(b.path_prefix.len().cmp(&a.path_prefix.len()))
        });
        RouteTable { routes }
    }

    /// The route for a host (normalised by `gateway::host`) and canonical path.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.routes
            .iter()
            .find(|r| (r.host == "*" || r.host == host) && prefix_matches(&r.path_prefix, path))
    }

    /// Whether any route serves this host.
    pub fn serves_host(&self, host: &str) -> bool {
        self.routes
            .iter()
            .any(|r| r.host == "*" || super::host::same(&r.host, host))
    }

    /// Every route.
    pub fn all(&self) -> &[Arc<Route>] {
        &self.routes
    }
}

/// `/wiki` matches `/wiki` and `/wiki/x` but not `/wikis`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

/// A field's default header name in the lowercase `HeaderName::from_static` needs.
fn lower(field: HeaderField) -> &'static str {
    match field {
        HeaderField::User => "x-auth-request-user",
        HeaderField::Email => "x-auth-request-email",
        HeaderField::Name => "x-auth-request-name",
        HeaderField::Groups => "x-auth-request-groups",
        HeaderField::Roles => "x-auth-request-roles",
        HeaderField::Tenant => "x-auth-request-tenant",
        HeaderField::Access => "x-auth-request-access",
        HeaderField::Amr => "x-auth-request-amr",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml_routes: &str) -> RouteTable {
        let c = Config::from_yaml(&format!(
            "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nroutes:\n{yaml_routes}"
        ))
        .expect("config");
        RouteTable::new(&c)
    }

    #[test]
    fn longest_prefix_and_exact_host_win() {
        let t = table(
            "  - { host: '*', path_prefix: /, upstream: 'http://127.0.0.1:1' }\n  - { host: wiki.localhost, path_prefix: /, upstream: 'http://127.0.0.1:2' }\n  - { host: wiki.localhost, path_prefix: /api, upstream: 'http://127.0.0.1:3', policy: public }\n",
        );
        let port = |h: &str, p: &str| t.find(h, p).map(|r| r.upstream.port);
        assert_eq!(port("wiki.localhost", "/api/x"), Some(3));
        assert_eq!(port("wiki.localhost", "/api"), Some(3));
        assert_eq!(port("wiki.localhost", "/apis"), Some(2));
        assert_eq!(port("other", "/api"), Some(1));
        // Configured hosts are normalised like request hosts (gateway::host).
        let t = table("  - { host: Wiki.Localhost., upstream: 'http://127.0.0.1:4' }\n");
        assert_eq!(
            t.find("wiki.localhost", "/").map(|r| r.upstream.port),
            Some(4)
        );
        assert!(t.serves_host("WIKI.localhost."));
    }

    #[test]
    fn a_stripped_prefix_must_be_spelled_literally() {
        let t = table(
            "  - { host: '*', path_prefix: /wiki, upstream: 'http://127.0.0.1:1', strip_prefix: true }\n  - { host: '*', path_prefix: /docs/, upstream: 'http://127.0.0.1:2', strip_prefix: true }\n  - { host: '*', path_prefix: /, upstream: 'http://127.0.0.1:3', strip_prefix: true }\n",
        );
        let strip = |path: &str, raw: &str| t.find("h", path).and_then(|r| r.stripped_target(raw));
        assert_eq!(strip("/wiki/a", "/wiki/a?x=1").as_deref(), Some("/a?x=1"));
        assert_eq!(strip("/wiki", "/wiki").as_deref(), Some("/"));
        assert_eq!(strip("/wiki", "/wiki?q").as_deref(), Some("/?q"));
        assert_eq!(strip("/docs/a", "/docs/a").as_deref(), Some("/a"));
        assert_eq!(strip("/x", "/x").as_deref(), Some("/x"));
        // The same canonical path spelled otherwise: refused, never guessed.
        assert_eq!(strip("/wiki/a", "/wi%6Bi/a"), None);
        assert_eq!(strip("/wiki/a", "/wiki;x/a"), None);
    }

    #[test]
    fn header_names_can_be_renamed() {
        let t = table(
            "  - { host: g, upstream: 'http://127.0.0.1:1', headers: { user: X-WEBAUTH-USER } }\n",
        );
        let r = t.find("g", "/").expect("route");
        let name = |f: HeaderField| {
            r.header_names[f as usize]
                .as_ref()
                .map(|n| n.name().as_str())
        };
        assert_eq!(name(HeaderField::User), Some("x-webauth-user"));
        assert_eq!(name(HeaderField::Email), Some("x-auth-request-email"));
        let t = table(
            "  - { host: g, upstream: 'http://127.0.0.1:1', headers: { tenant: '', access: '' } }\n",
        );
        let r = t.find("g", "/").expect("route");
        let name = |f: HeaderField| {
            r.header_names[f as usize]
                .as_ref()
                .map(|n| n.name().as_str())
        };
        assert_eq!(
            name(HeaderField::Tenant),
            None,
            "an empty name sends no header"
        );
        assert_eq!(name(HeaderField::Access), None);
        assert_eq!(name(HeaderField::User), Some("x-auth-request-user"));
        assert_eq!(name(HeaderField::Amr), Some("x-auth-request-amr"));
        let t = table(
            "  - { host: g, upstream: 'http://127.0.0.1:1', headers: { amr: X-Auth-Methods } }\n  - { host: h, upstream: 'http://127.0.0.1:1', headers: { amr: '' } }\n",
        );
        let amr = |host: &str| {
            let r = t.find(host, "/").expect("route");
            r.header_names[HeaderField::Amr as usize]
                .as_ref()
                .map(|n| n.name().as_str().to_string())
        };
        assert_eq!(amr("g").as_deref(), Some("x-auth-methods"));
        assert_eq!(amr("h"), None, "turned off");
    }
}
