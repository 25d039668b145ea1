//! Header rules on the way upstream: strip every client header that could pass for an
//! identity header, drop hop-by-hop headers and frontdoor's own credentials, inject ours.

use http::{HeaderName, HeaderValue};
use pingora::http::{CasedHeaderName, RequestHeader, ResponseHeader};

use super::routes::Route;
use crate::auth::Identity;
use crate::config::HeaderField;

/// Prefixes (after normalising `_` and `.` to `-`, lowercase) that only frontdoor may set.
const RESERVED_PREFIXES: [&str; 6] = [
    "x-auth-request-",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
];

/// Exact names (normalised) of identity headers used by peers and common upstreams.
const RESERVED_NAMES: [&str; 11] = [
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "x-remote-user",
    "x-remote-group",
    "x-webauth-user",
    "x-webauth-email",
    "x-webauth-name",
    "x-frontdoor-identity",
    "x-frontdoor-assertion",
];

/// Hop-by-hop headers without a constant in `http`, named once (a `&str` is parsed again at
/// every lookup).
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Credentials of frontdoor's that must never reach an upstream.
const CREDENTIAL_HEADERS: [&str; 2] = ["api-token", "x-contact-hash"];

/// Compares a header name with `target` as if `_` and `.` were `-` on both sides: a route may
/// name its headers with either, and upstreams (CGI, PHP) read all three alike.
pub(crate) fn normalised_starts_with(name: &[u8], target: &[u8], exact: bool) -> bool {
    if name.len() < target.len() || (exact && name.len() != target.len()) {
        return false;
    }
    let normal = |b: u8| match b {
        b'_' | b'.' => b'-',
        other => other.to_ascii_lowercase(),
    };
    name.iter()
        .zip(target)
        .all(|(&a, &b)| normal(a) == normal(b))
}

/// Whether a client-sent header could be mistaken for an identity header of this route.
pub fn is_reserved(name: &str, route_names: Option<&[Option<CasedHeaderName>; 8]>) -> bool {
    let n = name.as_bytes();
    RESERVED_PREFIXES
        .iter()
        .any(|p| normalised_starts_with(n, p.as_bytes(), false))
        || RESERVED_NAMES
            .iter()
            .any(|p| normalised_starts_with(n, p.as_bytes(), true))
        || CREDENTIAL_HEADERS
            .iter()
            .any(|p| normalised_starts_with(n, p.as_bytes(), true))
        || route_names.is_some_and(|names| {
            names
                .iter()
                .flatten()
                .any(|r| normalised_starts_with(n, r.name().as_str().as_bytes(), true))
        })
}

/// Removes reserved headers, hop-by-hop headers (including any a client named in
/// `Connection`), and frontdoor's own cookies.
pub fn strip(req: &mut RequestHeader, route: Option<&Route>, own_cookies: &[&str]) {
    let names = route.map(|r| &r.header_names);
    let assertion = route
        .and_then(|r| r.assertion.as_ref())
        .map(|a| a.header.name());
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in req.headers.keys() {
        if is_reserved(name.as_str(), names)
            || assertion.is_some_and(|a| {
                normalised_starts_with(name.as_str().as_bytes(), a.as_str().as_bytes(), true)
            })
        {
            doomed.push(name.clone());
        }
    }
    let mut keep_upgrade = false;
    if req.headers.contains_key(http::header::CONNECTION) {
        // Every Connection header, and always removed: one that is not text (obs-text bytes)
        // names nothing we can act on, but passed on it could make a proxy behind us drop our
        // identity headers.
        for conn in req
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            for token in conn.split(',').map(|t| t.trim().to_ascii_lowercase()) {
                if token == "upgrade" {
                    keep_upgrade = true;
                } else if let Ok(h) = HeaderName::from_bytes(token.as_bytes())
                    && h != http::header::UPGRADE
                {
                    doomed.push(h);
                }
            }
        }
        doomed.push(http::header::CONNECTION);
    }
    // Only when present: a clean request allocates nothing here.
    for hop in [&KEEP_ALIVE, &PROXY_CONNECTION] {
        if req.headers.contains_key(hop) {
            doomed.push(hop.clone());
        }
    }
    for name in &doomed {
        req.remove_header(name);
    }
    if keep_upgrade && req.headers.contains_key(http::header::UPGRADE) {
        let _ = req.insert_header(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
    }
    strip_cookies(req, own_cookies);
}

/// Removes frontdoor's cookies from the `Cookie` header(s), keeping the upstream's own as the
/// client wrote them (`cookie_header`: the same reading as where frontdoor looks its cookies
/// up; `frontdoor_session` alone is one of ours too, the fuzz target gateway_headers holds it
/// to that).
fn strip_cookies(req: &mut RequestHeader, own: &[&str]) {
    let Some(rest) = crate::cookie_header::without(req.headers.get_all(http::header::COOKIE), own)
    else {
        return;
    };
    req.remove_header(&http::header::COOKIE);
    if let Some(v) = rest {
        let _ = req.insert_header(http::header::COOKIE, v);
    }
}

/// The forwarding headers frontdoor sets, named once with the case form they are written in:
/// inserted without being parsed again, or their name copied into a new buffer.
pub static X_FORWARDED_FOR: CasedHeaderName = CasedHeaderName::from_static("x-forwarded-for");
/// See [`X_FORWARDED_FOR`].
pub static X_REAL_IP: CasedHeaderName = CasedHeaderName::from_static("x-real-ip");
/// See [`X_FORWARDED_FOR`].
pub static X_FORWARDED_PROTO: CasedHeaderName = CasedHeaderName::from_static("x-forwarded-proto");

/// Prefixes (normalised) of headers by which a proxy tells the next hop who the client is,
/// which host, scheme, port or path it asked for (`X-Forwarded-*` with `-Prefix` and `-Port`,
/// ASP.NET's `X-Original-*`, IIS's `X-Original-URL`).
const FORWARDING_PREFIXES: [&str; 2] = ["x-forwarded-", "x-original-"];

/// Exact names (normalised) of the same kind: RFC 7239, IIS, CDNs and frameworks.
const FORWARDING_NAMES: [&str; 13] = [
    "forwarded",
    "x-rewrite-url",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-host",
    "x-http-host-override",
    "front-end-https",
    "x-url-scheme",
];

/// Removes forwarding headers. From a trusted proxy, the ones it sent under their usual name
/// stay; a `_` or `.` spelling of one (`X_Forwarded_For`, read by CGI and PHP as the real one)
/// never comes from a proxy and always goes. From anyone else all go: frontdoor sets
/// `X-Forwarded-For`, `-Proto` and `X-Real-IP` itself afterwards. `X-Request-Id` goes in every
/// spelling and from everyone: frontdoor sets it itself (a trusted proxy's own, when believed,
/// is the request's id already, `request_id::of_request`).
pub fn strip_forwarding(req: &mut RequestHeader, trusted: bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in req.headers.keys() {
        let n = name.as_str();
        let forwarding = FORWARDING_PREFIXES
            .iter()
            .any(|p| normalised_starts_with(n.as_bytes(), p.as_bytes(), false))
            || FORWARDING_NAMES
                .iter()
                .any(|p| normalised_starts_with(n.as_bytes(), p.as_bytes(), true));
        let request_id = normalised_starts_with(
            n.as_bytes(),
            super::request_id::HEADER.name().as_str().as_bytes(),
            true,
        );
        if request_id || (forwarding && (!trusted || n.contains(['_', '.']))) {
            doomed.push(name.clone());
        }
    }
    for name in &doomed {
        req.remove_header(name);
    }
}

/// Removes an upstream's `Set-Cookie` for any of frontdoor's cookies (compared without regard
/// to case: some servers and old browsers fold it), and nameless ones (`=frontdoor_session=x`
/// or a bare value), which browsers send back as `name=value` text that reads as ours.
pub fn strip_set_cookies(resp: &mut ResponseHeader, own: &[&str]) {
    let doomed = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        let name = match bytes.iter().position(|&b| b == b'=') {
            Some(i) => bytes[..i].trim_ascii(),
            None => return true,
        };
        name.is_empty() || own.iter().any(|o| name.eq_ignore_ascii_case(o.as_bytes()))
    };
    let all = resp.headers.get_all(http::header::SET_COOKIE);
    if !all.iter().any(doomed) {
        return;
    }
    let kept: Vec<HeaderValue> = all.iter().filter(|v| !doomed(v)).cloned().collect();
    resp.remove_header(&http::header::SET_COOKIE);
    for v in kept {
        let _ = resp.append_header(http::header::SET_COOKIE, v);
    }
}

/// An identity header would be larger than `max_identity_header_bytes`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the identity header {name} would be {len} bytes, more than max_identity_header_bytes ({max})"
)]
pub struct HeaderTooLarge {
    /// The header's name.
    pub name: String,
    /// Its value's length.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

/// The identity headers under the route's names, as (name, value).
fn identity_headers<'a>(
    route: &'a Route,
    identity: &'a Identity,
) -> impl Iterator<Item = (&'a CasedHeaderName, &'a HeaderValue)> {
    HeaderField::ALL.into_iter().filter_map(|field| {
        Some((
            route.header_names[field as usize].as_ref()?,
            identity.header_value(field)?,
        ))
    })
}

/// Refuses an identity whose header under this route would be longer than `max` bytes
/// (`max_identity_header_bytes`); allocates nothing when none is.
pub fn check_identity_size(
    route: &Route,
    identity: &Identity,
    max: usize,
) -> Result<(), HeaderTooLarge> {
    match identity_headers(route, identity).find(|(_, v)| v.len() > max) {
        Some((name, v)) => Err(HeaderTooLarge {
            name: name.name().to_string(),
            len: v.len(),
            max,
        }),
        None => Ok(()),
    }
}

/// Adds the identity headers under the route's names (their size was checked by the
/// decision, `check_identity_size`). They go straight into the request's wire form
/// (`push_header`), not into its header maps: `strip` removed every client header of these
/// names, so there is nothing to replace, and nothing after this reads them from the request.
pub fn inject(req: &mut RequestHeader, route: &Route, identity: &Identity) {
    for (name, v) in identity_headers(route, identity) {
        // Refused only for framing and hop-by-hop names, which the configuration rejects.
        let _ = req.push_header(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_variants_are_reserved() {
        for n in [
            "x-auth-request-user",
            "x_auth_request_user",
            "x.auth.request.user",
            "x-auth-request-groups",
            "x_auth.request-amr",
            "x_auth-request.roles",
            "remote-user",
            "remote_user",
            "x-forwarded-user",
            "x-forwarded-user-id",
            "x_forwarded_email",
            "api-token",
            "api_token",
            "x-contact-hash",
        ] {
            assert!(is_reserved(n, None), "{n}");
        }
        for n in [
            "x-request-id",
            "accept",
            "remote-addr-ish",
            "x-forwarded-for",
            "cookie",
        ] {
            assert!(!is_reserved(n, None), "{n}");
        }
        let renamed: [Option<CasedHeaderName>; 8] =
            std::array::from_fn(|_| Some(CasedHeaderName::from_static("x-grafana-login")));
        assert!(is_reserved("x_grafana_login", Some(&renamed)));
    }

    #[test]
    fn forwarding_headers_go_unless_a_trusted_proxy_sent_them_plainly() {
        let build = || {
            let mut req = RequestHeader::build("GET", b"/", None).expect("req");
            for n in [
                "forwarded",
                "x-forwarded-prefix",
                "x_forwarded_port",
                "x.original.url",
                "x-rewrite-url",
                "x-real-ip",
                "accept",
                "x-request-id",
                "X_Request_Id",
            ] {
                req.insert_header(n, "1").expect("h");
            }
            req
        };
        let mut req = build();
        strip_forwarding(&mut req, false);
        let left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
        let mut req = build();
        strip_forwarding(&mut req, true);
        for gone in [
            "x_forwarded_port",
            "x.original.url",
            "x-request-id",
            "x_request_id",
        ] {
            assert!(req.headers.get(gone).is_none(), "{gone}");
        }
        for kept in [
            "forwarded",
            "x-forwarded-prefix",
            "x-rewrite-url",
            "x-real-ip",
        ] {
            assert!(req.headers.get(kept).is_some(), "{kept}");
        }
    }

    #[test]
    fn upstream_cookies_named_like_frontdoors_are_dropped() {
        let mut resp = ResponseHeader::build(200, None).expect("resp");
        for c in [
            "FD=1",
            "fd_csrf=2; Path=/",
            "=fd=3",
            "bare",
            "app=4",
            " app2 =5",
        ] {
            resp.append_header("set-cookie", c).expect("h");
        }
        strip_set_cookies(&mut resp, &["fd", "fd_csrf"]);
        let left: Vec<&[u8]> = resp
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(left, [&b"app=4"[..], &b" app2 =5"[..]]);
    }

    /// Found by the `gateway_headers` fuzz target: a Connection header with a non-ASCII byte
    /// was passed upstream untouched, and a second Connection header's names were ignored.
    #[test]
    fn every_connection_header_goes() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        req.append_header(
            "connection",
            HeaderValue::from_bytes(b"x-auth-request-user, x-a\x81").expect("obs-text"),
        )
        .expect("h");
        req.append_header("connection", "x-custom").expect("h");
        req.insert_header("x-custom", "1").expect("h");
        strip(&mut req, None, &[]);
        assert!(req.headers.get("connection").is_none());
        assert!(req.headers.get("x-custom").is_none());
    }

    /// Found writing the `gateway_headers` fuzz target: a route header named with `_` or `.`
    /// (`X_Wiki_User`) let the client's `x-wiki-user` through beside the injected one, and
    /// CGI-style upstreams read both as `HTTP_X_WIKI_USER`.
    #[test]
    fn renamed_headers_with_underscores_or_dots_reserve_every_spelling() {
        let mut renamed: [Option<CasedHeaderName>; 8] =
            std::array::from_fn(|_| Some(CasedHeaderName::from_static("x-unused")));
        renamed[0] = Some(CasedHeaderName::from_static("x_wiki_user"));
        renamed[1] = Some(CasedHeaderName::from_static("x.wiki.email"));
        renamed[2] = None;
        for n in [
            "x-wiki-user",
            "x_wiki_user",
            "x.wiki.user",
            "x-wiki-email",
            "x_wiki.email",
        ] {
            assert!(is_reserved(n, Some(&renamed)), "{n}");
        }
        assert!(!is_reserved("x-wiki-users", Some(&renamed)));
    }

    #[test]
    fn connection_cannot_name_away_injected_headers_and_cookies_are_filtered() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        req.insert_header("connection", "close, X-Auth-Request-User, x-custom")
            .expect("h");
        req.insert_header("x-custom", "1").expect("h");
        req.insert_header("x-auth-request-user", "evil").expect("h");
        req.append_header("cookie", "frontdoor_session=abc; app=1")
            .expect("h");
        req.append_header("cookie", "frontdoor_csrf=zzz")
            .expect("h");
        strip(&mut req, None, &["frontdoor_session", "frontdoor_csrf"]);
        assert!(req.headers.get("x-custom").is_none());
        assert!(req.headers.get("connection").is_none());
        assert!(req.headers.get("x-auth-request-user").is_none());
        assert_eq!(
            req.headers.get("cookie").map(|v| v.as_bytes()),
            Some(&b"app=1"[..])
        );
    }

    /// The identity headers are pushed into the wire form, not the maps: a client's copy in
    /// any spelling must be gone, so that the upstream reads exactly one, ours, under the
    /// route's name.
    #[test]
    fn injected_identity_headers_are_the_only_ones_on_the_wire() {
        use crate::auth::{Access, CredentialKind};
        let config = crate::config::Config::from_yaml(
            "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nroutes:\n  - { host: '*', upstream: 'http://127.0.0.1:1', headers: { user: X-Wiki-User, roles: '' } }\n",
        )
        .expect("config");
        let table = super::super::routes::RouteTable::new(&config);
        let route = table.find("h", "/").expect("route");
        let identity = Identity::new(
            "u1".into(),
            "ann".into(),
            "ann@example.com".into(),
            "Ann".into(),
            vec!["wiki".into()],
            vec!["admin".into()],
            "default".into(),
            Access::ReadWrite,
            CredentialKind::Session,
        );
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        for (n, v) in [
            ("X-Wiki-User", "evil"),
            ("x_wiki_user", "evil"),
            ("X-Auth-Request-Email", "evil@example.com"),
            ("X-Auth-Request-Roles", "admin"),
            ("Accept", "*/*"),
        ] {
            req.append_header(n.to_string(), v).expect("h");
        }
        strip(&mut req, Some(route), &[]);
        inject(&mut req, route, &identity);
        let mut wire = Vec::new();
        req.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).expect("text");
        let lines: Vec<&str> = wire.lines().collect();
        assert_eq!(
            lines,
            [
                "Accept: */*",
                "x-wiki-user: ann",
                "x-auth-request-email: ann@example.com",
                "x-auth-request-name: Ann",
                "x-auth-request-groups: wiki",
                "x-auth-request-tenant: default",
                "x-auth-request-access: read-write",
            ]
        );
        // Not in the map: nothing after the injection reads them from there.
        assert!(req.headers.get("x-wiki-user").is_none());
    }

    /// Found by the fuzz target gateway_headers: a pair that is only a name (no `=`) is
    /// named by the whole pair, so one of frontdoor's names without a value goes too.
    #[test]
    fn a_bare_cookie_name_of_frontdoors_is_dropped() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        req.append_header("cookie", "frontdoor_session; app=1; =x; theme")
            .expect("h");
        strip(&mut req, None, &["frontdoor_session"]);
        assert_eq!(
            req.headers.get("cookie").map(|v| v.as_bytes()),
            Some(&b"app=1; =x; theme"[..])
        );
    }
}
