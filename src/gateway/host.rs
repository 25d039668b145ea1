//! The one host a request is for: read once from `Host` (or the target's authority), checked,
//! and normalised (lowercase, one trailing dot removed, port split off) before anything
//! routes, picks a tenant or builds a URL from it.
//!
//! RFC 9112 §3.2: an HTTP/1.1 request without `Host`, with several, or with an invalid one gets
//! 400. So does a request whose absolute-form target names another host than its `Host`: two
//! servers in a chain could each believe a different one.

use http::uri::Authority;
use pingora::http::RequestHeader;

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid host: {0}")]
pub struct BadHost(pub &'static str);

/// A checked host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Lowercase, without the trailing dot or port; an IPv6 address without brackets.
    pub name: String,
    /// The port, when one was given.
    pub port: Option<u16>,
}

impl Host {
    /// `name[:port]`, brackets around an IPv6 address: the authority to build URLs with.
    pub fn authority(&self) -> String {
        authority(&self.name, self.port)
    }
}

/// `name[:port]` of a checked host's name and port, brackets around an IPv6 address.
pub fn authority(name: &str, port: Option<u16>) -> String {
    let name = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    match port {
        Some(p) => format!("{name}:{p}"),
        None => name,
    }
}

/// Lowercase, one trailing dot removed: the form hosts are compared in (configured ones too).
pub fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether two host names (without port) are the same host.
pub fn same(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// Parses `host[:port]` as sent in `Host`, `X-Forwarded-Host` or a URL.
pub fn parse(value: &str) -> Result<Host, BadHost> {
    plain(value).map_or_else(|| parse_authority(value), Ok)
}

/// The common case read without building an `http::uri::Authority` (every request parses its
/// host): a DNS name or IPv4 address and an optional port of digits that fits. `None` for
/// anything else, which [`parse_authority`] then accepts or refuses with its reason; whatever
/// this accepts, that would accept with the same result (`a_plain_host_reads_as_through_an_authority`).
fn plain(value: &str) -> Option<Host> {
    let (raw, port) = match value.split_once(':') {
        Some((raw, "")) => (raw, None),
        Some((raw, digits)) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            (raw, Some(digits.parse::<u16>().ok()?))
        }
        Some(_) => return None,
        None => (value, None),
    };
    let name = raw.strip_suffix('.').unwrap_or(raw);
    is_host_name(name).then(|| Host {
        name: name.to_ascii_lowercase(),
        port,
    })
}

/// DNS names (with `_`, which some internal names use) and IPv4 addresses, without the
/// trailing dot; anything else (`,`, `%`, `!`, …) is legal in a URI's reg-name but names no
/// host we serve.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// [`parse`] through an `http::uri::Authority`: IPv6 literals, and the reason for a refusal.
fn parse_authority(value: &str) -> Result<Host, BadHost> {
    if value.is_empty() {
        return Err(BadHost("empty"));
    }
    if value.contains('@') {
        return Err(BadHost("user information"));
    }
    let authority: Authority = value.parse().map_err(|_| BadHost("not host[:port]"))?;
    let raw = authority.host();
    // `Authority::port` is `None` for a port that is not a number: tell that from no port.
    // `host:` (an empty port) is allowed by RFC 3986 and means the default.
    let port = match &authority.as_str()[raw.len()..] {
        "" | ":" => None,
        _ => Some(
            authority
                .port_u16()
                .ok_or(BadHost("the port is not a number"))?,
        ),
    };
    let name = if let Some(inner) = raw.strip_prefix('[') {
        let ip = inner
            .strip_suffix(']')
            .and_then(|i| i.parse::<std::net::Ipv6Addr>().ok())
            .ok_or(BadHost("not an IPv6 address"))?;
        ip.to_string()
    } else {
        let name = raw.strip_suffix('.').unwrap_or(raw);
        if !is_host_name(name) {
            return Err(BadHost("not a host name"));
        }
        name.to_ascii_lowercase()
    };
    Ok(Host { name, port })
}

/// The host of a request, from its `Host` header and its target's authority (absolute-form or
/// HTTP/2's `:authority`), which must agree when both are present.
pub fn of_request(req: &RequestHeader) -> Result<Host, BadHost> {
    let mut headers = req.headers.get_all(http::header::HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(BadHost("more than one Host header"));
    }
    let from_header = header
        .map(|v| v.to_str().map_err(|_| BadHost("not text")).and_then(parse))
        .transpose()?;
    let (scheme, from_target) = target_authority(req)?;
    match (from_header, from_target) {
        (Some(h), Some(t)) => {
            let default = if scheme == Some("https") { 443 } else { 80 };
            let same_port = h.port.unwrap_or(default) == t.port.unwrap_or(default);
            if h.name != t.name || !same_port {
                return Err(BadHost("Host and the request target disagree"));
            }
            Ok(t)
        }
        (Some(h), None) => Ok(h),
        (None, Some(t)) if req.version != http::Version::HTTP_11 => Ok(t),
        // HTTP/1.0 without a host cannot be routed either: refused alike.
        _ => Err(BadHost("no Host header")),
    }
}

/// The scheme and host of the request target, when it names one: HTTP/2's `:authority`, or an
/// absolute-form target (which Pingora keeps only in the raw target, not in the URI).
fn target_authority(req: &RequestHeader) -> Result<(Option<&str>, Option<Host>), BadHost> {
    if let Some(a) = req.uri.authority() {
        return Ok((req.uri.scheme_str(), Some(parse(a.as_str())?)));
    }
    let raw = req.raw_path();
    if raw.first() == Some(&b'/') || raw == b"*" {
        return Ok((None, None));
    }
    let text = std::str::from_utf8(raw).map_err(|_| BadHost("the target is not text"))?;
    let (scheme, rest) = text
        .split_once("://")
        .ok_or(BadHost("the target names no host"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    Ok((Some(scheme), Some(parse(authority)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        let h = |v: &str| parse(v).map(|h| (h.name, h.port));
        assert_eq!(h("Acme.Localhost."), Ok(("acme.localhost".into(), None)));
        assert_eq!(
            h("acme.localhost.:8080"),
            Ok(("acme.localhost".into(), Some(8080)))
        );
        assert_eq!(h("127.0.0.1:1"), Ok(("127.0.0.1".into(), Some(1))));
        assert_eq!(h("[::1]:8080"), Ok(("::1".into(), Some(8080))));
        assert_eq!(h("[0:0::1]"), Ok(("::1".into(), None)));
        assert_eq!(
            parse("[::1]:8080").map(|h| h.authority()),
            Ok("[::1]:8080".into())
        );
        assert!(same("ACME.localhost.", "acme.localhost"));
        assert!(!same("acme.localhost..", "acme.localhost"));
    }

    #[test]
    fn a_plain_host_reads_as_through_an_authority() {
        for v in [
            "acme.localhost",
            "Acme.Localhost.",
            "acme.localhost.:8080",
            "wiki_internal:1",
            "127.0.0.1",
            "127.0.0.1:",
            "a:0",
            "a:080",
            "a:65535",
            "xn--bcher-kva.example",
            "9",
        ] {
            assert_eq!(plain(v), Some(parse_authority(v).expect(v)), "{v:?}");
        }
        // Left to the authority: what it refuses, with its reason, and IPv6 literals.
        for v in [
            "",
            ":80",
            ".",
            ".a",
            "a..b",
            "a:65536",
            "a:99999",
            "a:x",
            "a:1:2",
            "a b",
            "a%20b",
            "a@b",
            "[::1]",
            "[::1]:8080",
        ] {
            assert_eq!(plain(v), None, "{v:?}");
        }
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for bad in [
            "",
            "a, b",
            "a,b",
            "a/x",
            "a b",
            "a@b",
            "acme.localhost..",
            ".",
            ".a",
            "a..b",
            "a:x",
            "a:99999",
            "[::1",
            "[zz]",
            "a%20b",
            "a\\b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn target_and_host_must_agree() {
        let req = |target: &str, hosts: &[&str]| {
            let mut r = RequestHeader::build("GET", target.as_bytes(), None).expect("req");
            for h in hosts {
                r.append_header("host", *h).expect("host");
            }
            of_request(&r)
        };
        assert!(req("/", &[]).is_err());
        assert!(req("/", &["a", "b"]).is_err());
        assert!(req("http://a/", &["b"]).is_err());
        assert!(req("http://a:81/", &["a"]).is_err());
        assert_eq!(req("http://a/", &["A.:80"]).map(|h| h.name), Ok("a".into()));
        assert_eq!(req("/", &["a:1"]).map(|h| h.port), Ok(Some(1)));
    }
}
