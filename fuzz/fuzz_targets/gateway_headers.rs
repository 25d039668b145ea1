//! Header stripping on the way upstream. Input: the route's injected header names (one
//! line, comma-separated), then the request's header fields. After `strip` no header is left
//! that an upstream could take for an identity header (in any `-`/`_`/`.` spelling), no
//! hop-by-hop header, and no frontdoor cookie.
#![no_main]

use std::time::Duration;

use frontdoor::config::{HeaderField, Policy, Upstream};
use frontdoor::gateway::headers::strip;
use frontdoor::gateway::routes::{Route, RouteAssertion};
use frontdoor_fuzz::{fields, split_once};
use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use pingora::http::{CasedHeaderName, RequestHeader};

const OWN_COOKIES: [&str; 2] = ["frontdoor_session", "frontdoor_csrf"];

/// How CGI, PHP, nginx's `underscores_in_headers` and friends may read a header name.
fn normalised(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'_' | b'.' => '-',
            other => other.to_ascii_lowercase() as char,
        })
        .collect()
}

fn route(names_line: &[u8]) -> Route {
    // Comma-separated names for the route's headers; an empty one turns that header off, as
    // an empty name in `routes[].headers` does.
    let mut custom = names_line.split(|&b| b == b',').map(<[u8]>::trim_ascii);
    let default = |f: HeaderField| {
        HeaderName::from_bytes(f.default_name().as_bytes()).expect("default header name")
    };
    let header_names = HeaderField::ALL.map(|f| match custom.next() {
        Some([]) => None,
        Some(n) => Some(HeaderName::from_bytes(n).unwrap_or_else(|_| default(f))),
        None => Some(default(f)),
    })
    .map(|n| n.map(CasedHeaderName::new));
    Route {
        label: "fuzz/".into(),
        host: "*".into(),
        path_prefix: "/".into(),
        upstream: Upstream {
            host: "127.0.0.1".into(),
            port: 9,
            tls: false,
        },
        addr: None,
        policy: Policy::Authenticated,
        groups: Vec::new(),
        roles: Vec::new(),
        rules: Vec::new(),
        allow_contact_hash: false,
        audience: None,
        header_names,
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
        assertion: Some(RouteAssertion {
            header: CasedHeaderName::from_static("x-frontdoor-assertion"),
            audience: None,
            lifetime: Duration::from_secs(300),
        }),
        upstream_host: None,
        strip_authorization: false,
        strip_prefix: false,
        sni: "127.0.0.1".into(),
        ca: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let (names_line, rest) = split_once(data, b'\n');
    let route = route(names_line);
    let Ok(mut req) = RequestHeader::build("GET", b"/", None) else {
        return;
    };
    for (name, value) in fields(rest) {
        let _ = req.append_header(name, value);
    }
    let with_route = rand_choice(data);
    strip(&mut req, with_route.then_some(&route), &OWN_COOKIES);

    let mut identity: Vec<String> = [
        "api-token",
        "x-contact-hash",
        "remote-user",
        "x-remote-user",
        "x-webauth-user",
        "x-frontdoor-identity",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if with_route {
        identity.extend(
            route
                .header_names
                .iter()
                .flatten()
                .map(|n| normalised(n.name().as_str())),
        );
    }
    for name in req.headers.keys() {
        let n = normalised(name.as_str());
        assert!(!n.starts_with("x-auth-request-"), "{name} passed");
        assert!(!n.starts_with("x-forwarded-user"), "{name} passed");
        assert!(!identity.contains(&n), "identity header {name} passed");
        // Hop-by-hop by their exact names (RFC 9110 §7.6.1); `proxy.connection` is just a name.
        assert!(
            name != "keep-alive" && name != "proxy-connection",
            "{name} passed"
        );
    }
    if let Some(c) = req.headers.get(http::header::CONNECTION) {
        assert_eq!(c.as_bytes(), b"upgrade");
        assert!(req.headers.contains_key(http::header::UPGRADE));
    }
    for v in req.headers.get_all(http::header::COOKIE) {
        let text = v.to_str().expect("kept cookies are text");
        for pair in text.split(';') {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            assert!(!OWN_COOKIES.contains(&name), "cookie {name} passed");
        }
    }
});

/// Whether to strip for the route too (public paths strip without one): the input decides.
fn rand_choice(data: &[u8]) -> bool {
    data.first().is_none_or(|b| b % 2 == 0)
}
