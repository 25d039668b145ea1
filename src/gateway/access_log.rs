//! The access log: one line per request on the target `frontdoor::access`, with the request
//! id, the client, what was asked, the answer, the upstream and who called.
//!
//! It is on by default and written for every request, so it is formatted here rather than by
//! `tracing_subscriber::fmt`: that formatter visits each field through `dyn Visit`, quotes
//! strings with `Debug` and writes numbers through `core::fmt`, which cost about 19,000
//! instructions a line against a proxied request's ~140,000 (`bench/instructions.sh`). The
//! line keeps the shape of the process's other lines in both formats (`log.format`), and
//! `tracing` still decides whether it is written (`log.access`, `RUST_LOG`, reloads).

use std::cell::RefCell;
use std::net::IpAddr;

use http::{HeaderValue, Method};

use crate::auth::Identity;
use crate::config::{LogFormat, Upstream};
use crate::logging::ACCESS;

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

thread_local! {
    /// The line being written, kept per thread so that a line allocates nothing once warm.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Writes the line, if the access log is on.
pub fn line(a: Access<'_>) {
    if !crate::logging::access_on() {
        return;
    }
    LINE.with(|cell| {
        let Ok(mut buf) = cell.try_borrow_mut() else {
            return;
        };
        buf.clear();
        format(&a, crate::logging::format(), &mut buf);
        crate::logging::write_line(&buf);
    });
}

/// The line in the given format, with its newline.
fn format(a: &Access<'_>, format: LogFormat, out: &mut Vec<u8>) {
    let mut w = match format {
        LogFormat::Json => Line::json(out),
        LogFormat::Text => Line::text(out),
    };
    // The free-text fields (a path, a user's name) go through the same redaction as every
    // other log line; the rest are values frontdoor made or checked (ids of safe characters,
    // normalised hosts, labels from the configuration, numbers).
    w.str("request_id", a.request_id.to_str().unwrap_or("-"));
    w.client("client", a.client);
    w.str("method", a.method.as_str());
    w.str("host", a.host);
    w.str("path", &crate::redact::line(a.path));
    w.int("status", u64::from(a.status));
    w.int("bytes", a.bytes as u64);
    w.millis("duration_ms", a.seconds);
    if let Some(u) = a.upstream {
        w.upstream("upstream", u);
    }
    if let Some(s) = a.upstream_seconds {
        w.millis("upstream_ms", s);
    }
    w.str("route", a.route);
    if let Some(i) = a.identity {
        w.str("auth", i.kind.label());
        w.str("user", &crate::redact::line(i.user.as_str()));
        w.str("tenant", i.tenant.as_str());
    }
    w.end();
}

/// A line being written: `name=value` pairs after the text prefix, or the members of a JSON
/// object.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    json: bool,
}

impl<'a> Line<'a> {
    /// `2026-12-06T10:03:06.257271Z  INFO frontdoor::access: request`, as
    /// `tracing_subscriber`'s text format starts a line.
    fn text(out: &'a mut Vec<u8>) -> Self {
        timestamp(out);
        out.extend_from_slice(b"  INFO ");
        out.extend_from_slice(ACCESS.as_bytes());
        out.extend_from_slice(b": request");
        Line { out, json: false }
    }

    /// `{"timestamp":"…","level":"INFO","message":"request"`, as its JSON format does.
    fn json(out: &'a mut Vec<u8>) -> Self {
        out.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(out);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\"");
        Line { out, json: true }
    }

    fn name(&mut self, name: &str) {
        if self.json {
            self.out.extend_from_slice(b",\"");
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            self.out.push(b' ');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(b'=');
        }
    }

    /// A string: quoted and escaped (JSON's escapes, or `Debug`'s as the text format does).
    fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        quoted(self.out, value, self.json);
    }

    fn int(&mut self, name: &str, value: u64) {
        self.name(name);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Seconds as milliseconds with three decimals (microseconds: what the clock resolves).
    fn millis(&mut self, name: &str, seconds: f64) {
        self.name(name);
        let micros = (seconds * 1e6).round().max(0.0) as u64;
        let mut b = itoa::Buffer::new();
        self.out
            .extend_from_slice(b.format(micros / 1000).as_bytes());
        let frac = micros % 1000;
        self.out.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }

    /// An address, unquoted in text (as `Display` fields are) and a string in JSON; `-` when
    /// unknown.
    fn client(&mut self, name: &str, ip: Option<IpAddr>) {
        self.name(name);
        if self.json {
            self.out.push(b'"');
        }
        match ip {
            Some(ip) => super::forwarded::write_ip(self.out, ip),
            None => self.out.push(b'-'),
        }
        if self.json {
            self.out.push(b'"');
        }
    }

    /// `host:port`, unquoted in text and a string in JSON.
    fn upstream(&mut self, name: &str, u: &Upstream) {
        self.name(name);
        if self.json {
            self.out.push(b'"');
            escape(self.out, &u.host, true);
        } else {
            self.out.extend_from_slice(u.host.as_bytes());
        }
        self.out.push(b':');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(u.port).as_bytes());
        if self.json {
            self.out.push(b'"');
        }
    }

    fn end(self) {
        if self.json {
            self.out.extend_from_slice(b",\"target\":\"");
            self.out.extend_from_slice(ACCESS.as_bytes());
            self.out.extend_from_slice(b"\"}");
        }
        self.out.push(b'\n');
    }
}

/// Now, in RFC 3339 with microseconds in UTC, as the other lines show it.
fn timestamp(out: &mut Vec<u8>) {
    timestamp_at(out, std::time::SystemTime::now());
}

/// Length of `YYYY-MM-DDTHH:MM:SS`, the part of a timestamp that changes once a second.
const SECOND_LEN: usize = 19;

thread_local! {
    /// The second a line was last written in and its `YYYY-MM-DDTHH:MM:SS`: the calendar is
    /// worked out once a second per thread, not for every line.
    static SECOND: std::cell::Cell<(u64, [u8; SECOND_LEN])> =
        const { std::cell::Cell::new((u64::MAX, [0; SECOND_LEN])) };
}

/// [`timestamp`] at `at`: `humantime`'s `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
fn timestamp_at(out: &mut Vec<u8>, at: std::time::SystemTime) {
    use std::io::Write;
    let Ok(since) = at.duration_since(std::time::UNIX_EPOCH) else {
        let _ = write!(out, "{}", humantime::format_rfc3339_micros(at));
        return;
    };
    let secs = since.as_secs();
    let (cached, mut second) = SECOND.get();
    if cached != secs {
        let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let text = humantime::format_rfc3339_seconds(whole).to_string();
        // `YYYY-MM-DDTHH:MM:SSZ` until the year 9999; beyond, every line is formatted whole.
        let Some(calendar) = text
            .as_bytes()
            .get(..SECOND_LEN)
            .filter(|_| text.len() == 20)
        else {
            let _ = write!(out, "{}", humantime::format_rfc3339_micros(at));
            return;
        };
        second.copy_from_slice(calendar);
        SECOND.set((secs, second));
    }
    out.extend_from_slice(&second);
    let micros = since.subsec_micros();
    let mut fraction = [b'.', 0, 0, 0, 0, 0, 0, b'Z'];
    for (i, place) in [100_000, 10_000, 1_000, 100, 10, 1].into_iter().enumerate() {
        fraction[1 + i] = b'0' + (micros / place % 10) as u8;
    }
    out.extend_from_slice(&fraction);
}

fn quoted(out: &mut Vec<u8>, value: &str, json: bool) {
    out.push(b'"');
    escape(out, value, json);
    out.push(b'"');
}

/// Escapes what would end the string or the line: quotes, backslashes and control characters
/// (`\u00XX` in JSON, `\u{XX}` as Rust's `Debug` writes them in text).
fn escape(out: &mut Vec<u8>, value: &str, json: bool) {
    let needs = |b: u8| b == b'"' || b == b'\\' || b < 0x20 || (!json && b == 0x7f);
    if !value.bytes().any(needs) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in value.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if needs(b) => {
                let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
                if json {
                    out.extend_from_slice(b"\\u00");
                    out.extend_from_slice(&hex);
                } else {
                    out.extend_from_slice(b"\\u{");
                    out.extend_from_slice(&hex);
                    out.push(b'}');
                }
            }
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Access as Rights, CredentialKind, Identity};

    fn sample<'a>(
        id: &'a HeaderValue,
        method: &'a Method,
        upstream: &'a Upstream,
        identity: Option<&'a Identity>,
        path: &'a str,
    ) -> Access<'a> {
        Access {
            request_id: id,
            client: Some("192.0.2.7".parse().expect("ip")),
            method,
            host: "wiki.example.com",
            path,
            route: "wiki.example.com/",
            status: 200,
            bytes: 512,
            seconds: 0.001_234_4,
            upstream: Some(upstream),
            upstream_seconds: Some(0.000_5),
            identity,
        }
    }

    #[test]
    fn timestamps_read_as_humantime_writes_them() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};
        let mut times: Vec<SystemTime> = [
            0,
            1,
            999_999,
            1_000_000,
            1_765_000_000_123_456,
            1_765_000_000_999_999,
            1_765_000_001_000_000,
            253_402_300_799_999_999,
        ]
        .into_iter()
        .map(|micros| UNIX_EPOCH + Duration::from_micros(micros))
        .collect();
        times.push(SystemTime::now());
        // Twice over: the second pass reads the cached second of the one before.
        for at in times.iter().chain(times.iter().rev()) {
            let mut out = Vec::new();
            timestamp_at(&mut out, *at);
            assert_eq!(
                String::from_utf8(out).expect("text"),
                humantime::format_rfc3339_micros(*at).to_string()
            );
        }
    }

    fn upstream() -> Upstream {
        crate::config::parse_upstream("http://10.0.0.5:8080").expect("upstream")
    }

    #[test]
    fn a_json_line_is_one_object_with_every_field() {
        let (id, method, up) = (HeaderValue::from_static("abc-1"), Method::GET, upstream());
        let identity = Identity::new(
            "u1".into(),
            "ann".into(),
            String::new(),
            String::new(),
            Vec::new(),
            Vec::new(),
            "default".into(),
            Rights::ReadWrite,
            CredentialKind::Session,
        );
        let mut out = Vec::new();
        format(
            &sample(&id, &method, &up, Some(&identity), "/p\"a\\th\n\u{1}é"),
            LogFormat::Json,
            &mut out,
        );
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON object");
        assert_eq!(v["target"], ACCESS);
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["request_id"], "abc-1");
        assert_eq!(v["client"], "192.0.2.7");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["host"], "wiki.example.com");
        assert_eq!(v["path"], "/p\"a\\th\n\u{1}é");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 512);
        assert_eq!(v["duration_ms"], 1.234);
        assert_eq!(v["upstream"], "10.0.0.5:8080");
        assert_eq!(v["upstream_ms"], 0.5);
        assert_eq!(v["route"], "wiki.example.com/");
        assert_eq!(v["auth"], "session");
        assert_eq!(v["user"], "ann");
        let ts = v["timestamp"].as_str().expect("timestamp");
        assert!(
            humantime::parse_rfc3339(ts).is_ok() && ts.ends_with('Z'),
            "{ts}"
        );
    }

    /// The text line of the sample request with this method and path, without an identity.
    fn text_line(method: Method, path: &str) -> String {
        let (id, up) = (HeaderValue::from_static("abc-1"), upstream());
        let mut out = Vec::new();
        format(
            &sample(&id, &method, &up, None, path),
            LogFormat::Text,
            &mut out,
        );
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn a_text_line_reads_like_the_other_lines_and_cannot_be_split() {
        let line = text_line(Method::POST, "/x\ny=\"1\"");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let (_, rest) = line
            .split_once("  INFO frontdoor::access: request ")
            .expect(&line);
        assert_eq!(
            rest,
            "request_id=\"abc-1\" client=192.0.2.7 method=\"POST\" host=\"wiki.example.com\" \
             path=\"/x\\ny=\\\"1\\\"\" status=200 bytes=512 duration_ms=1.234 \
             upstream=10.0.0.5:8080 upstream_ms=0.500 route=\"wiki.example.com/\"\n"
        );
    }

    #[test]
    fn credentials_in_a_path_are_redacted() {
        let line = text_line(Method::GET, "/a;access_token=SECRET1/b");
        assert!(!line.contains("SECRET1"), "{line}");
    }
}
