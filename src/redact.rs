//! Credentials kept out of the logs. Every log line of the process (frontdoor's own and
//! Pingora's, through `tracing`) is written through [`Redacting`], so that a request target, an
//! error that quotes a request or a body, or a header value never puts a token, a code, a
//! secret or a password on disk; and the request summaries Pingora adds to its error lines show
//! query parameter names without their values ([`target`]).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// What replaces a credential.
const REDACTED: &str = "[redacted]";

/// `name=value` where the name says it carries a credential: query strings and form bodies
/// (`access_token`, `code`, `client_secret`, `refresh_token`, `id_token_hint`, `password`,
/// `state`, `apikey`, …), cookies (`frontdoor_session=`) and log fields of such names (on a
/// terminal the `=` of a field comes wrapped in colour codes).
static CREDENTIAL_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)\b([a-z0-9_.\-]*{CREDENTIAL_NAME}(?:\x1b\[[0-9;]*m)*=(?:\x1b\[[0-9;]*m)*)([^&\s"'<>;,\x1b]+)"#,
    ))
    .expect("a valid pattern")
});

/// How the name of a credential-bearing parameter or field ends.
const CREDENTIAL_NAME: &str = "(?:token|secret|passw(?:or)?d|pwd|session|key|sig|signature|code|verifier|hint|assertion|state|otp|nonce|csrf|hash)";

/// A field of such a name in a JSON log line (`"refresh_token":"…"`), its string value whole.
static CREDENTIAL_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)("[a-z0-9_.\-]*{CREDENTIAL_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*""#
    ))
    .expect("a valid pattern")
});

/// A credential-bearing header and its value, as a header line or a debug-printed header map
/// (`api-token: fdt_…`, `"cookie": "…"`, `X-Contact-Hash: …`).
static CREDENTIAL_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(api[-_]token|x[-_]contact[-_]hash|(?:proxy-)?authorization|cookie|set-cookie)("?\s*:\s*"?)[^"\r\n,;]+"#,
    )
    .expect("a valid pattern")
});

/// An API token by its prefix, wherever it appears.
static API_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bfdt_[A-Za-z0-9_\-]+").expect("a valid pattern"));

/// An HTTP authentication scheme and its credentials (`Bearer eyJ…`, `Basic dXNlcjpw…`).
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+").expect("a valid pattern")
});

/// Every pattern above at once: most lines (an access line, say) quote no credential, and one
/// pass over them costs less than a pass per pattern. A pattern added here must need one of
/// what [`could_match`] looks for, or that check must learn what it needs (and its test's
/// pieces a string the new pattern matches).
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(
        [
            &*CREDENTIAL_FIELD,
            &*CREDENTIAL_PAIR,
            &*CREDENTIAL_HEADER,
            &*AUTH_SCHEME,
            &*API_TOKEN,
        ]
        .map(Regex::as_str),
    )
    .expect("valid patterns")
});

/// A log line with every credential it quotes replaced.
pub fn line(text: &str) -> Cow<'_, str> {
    // No pattern matches the line: none of the replacements below could change it.
    if !could_match(text) || !ANY.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    // Replacement templates spelled out (`REDACTED` after the kept groups): a line with nothing
    // to redact allocates nothing.
    for (pattern, replacement) in [
        (&*CREDENTIAL_FIELD, "${1}\"[redacted]\""),
        (&*CREDENTIAL_PAIR, "${1}[redacted]"),
        (&*CREDENTIAL_HEADER, "${1}${2}[redacted]"),
        (&*AUTH_SCHEME, "${1} [redacted]"),
        (&*API_TOKEN, REDACTED),
    ] {
        if let Cow::Owned(changed) = pattern.replace_all(&out, replacement) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Whether `text` holds what every pattern needs: `=` (a pair), `:` (a JSON field, a header),
/// white space (after an authentication scheme; `\s` is Unicode's, whose characters beyond
/// ASCII are bytes of 0x80 and up) or `fdt_` (an API token). A short value with none of them
/// (an access line's path or user, on every request) skips the regex set and its cache pool.
fn could_match(text: &str) -> bool {
    text.bytes().any(|b| {
        matches!(b, b'=' | b':' | b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C) || !b.is_ascii()
    }) || memchr::memmem::find(text.as_bytes(), b"fdt_").is_some()
}

/// A request target for a log line: the path, and the query's parameter names without any
/// value (a query parameter may be a credential under any name).
pub fn target(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let names: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, _)) => format!("{name}={REDACTED}"),
            None => p.to_string(),
        })
        .collect();
    format!("{path}?{}", names.join("&"))
}

/// A writer of log lines that redacts them first. `tracing_subscriber::fmt` formats each event
/// whole and writes it with one `write_all`, so a credential is never split across writes.
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match line(&text) {
            Cow::Borrowed(_) => self.0.write_all(buf)?,
            Cow::Owned(clean) => self.0.write_all(clean.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_check_lets_through_whatever_a_pattern_matches() {
        // Pieces that make or break each pattern, joined in every order of three.
        let pieces = [
            "/wiki",
            "a",
            "token",
            "=",
            "s3cr3t",
            ":",
            "\"",
            "Bearer",
            " ",
            "\t",
            "\u{3000}",
            "\u{85}",
            "\u{a0}",
            "fdt_",
            "x9",
            "api-token",
            "cookie",
            ";",
            "&",
            "\x0b",
            "\x0c",
            "%20",
            "basic",
            "session",
            "\"pwd\"",
            "é",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    if ANY.is_match(&text) {
                        assert!(could_match(&text), "{text:?} matches but was let off");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, pieces.len().pow(3));
        assert!(!could_match("/wiki/Main_Page"));
        assert!(!could_match("alice@example.com"));
        assert_eq!(line("/r/fdt_abc"), "/r/[redacted]");
        assert_eq!(line("Bearer\u{3000}abc.def"), "Bearer [redacted]");
    }

    #[test]
    fn credentials_in_queries_forms_and_headers_are_replaced() {
        let l = line(
            "GET /cb?code=abc&state=xyz&page=2, Host: a; body: password=hunter2&client_secret=s3 \
             Authorization: Bearer eyJhbGciOi.x.y cookie frontdoor_session=deadbeef error_code=7",
        );
        for secret in ["abc", "xyz", "hunter2", "s3", "eyJhbGciOi", "deadbeef"] {
            assert!(!l.contains(secret), "{secret} in {l}");
        }
        assert!(l.contains("page=2"), "{l}");
        assert!(l.contains("code=[redacted]"), "{l}");
        assert!(l.contains("Authorization: [redacted]"), "{l}");
        assert!(line("token: Bearer abc.def").contains("Bearer [redacted]"));
        let h = line(
            r#"Request header: {"host": "a", "api-token": "abc", "x-contact-hash": "h1"} Api-Token: fdt_zzz"#,
        );
        for secret in ["abc", "h1", "fdt_zzz"] {
            assert!(!h.contains(secret), "{secret} in {h}");
        }
        assert!(h.contains(r#""host": "a""#), "{h}");
        // A field as a terminal shows it: name in italics, `=` dimmed.
        let t = line("\x1b[3mrefresh_token\x1b[0m\x1b[2m=\x1b[0mSECRET1 next");
        assert!(!t.contains("SECRET1"), "{t:?}");
        assert!(t.contains("next"), "{t:?}");
        // Nothing to redact: the line is not copied.
        assert!(matches!(
            line("listening on 127.0.0.1:8080"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn credential_fields_of_json_lines_are_replaced() {
        let l = line(
            r#"{"level":"INFO","refresh_token":"a\"b c","client_secret":"s3","user":"ann","message":"GET /cb?code=abc"}"#,
        );
        for secret in ["a\\\"b c", "s3", "abc"] {
            assert!(!l.contains(secret), "{secret} in {l}");
        }
        assert!(l.contains(r#""refresh_token":"[redacted]","#), "{l}");
        assert!(l.contains(r#""user":"ann""#), "{l}");
        assert!(serde_json::from_str::<serde_json::Value>(&l).is_ok(), "{l}");
    }

    #[test]
    fn targets_keep_the_path_and_the_parameter_names() {
        assert_eq!(target("/a/b"), "/a/b");
        assert_eq!(
            target("/a?access_token=x&flag&page=3"),
            "/a?access_token=[redacted]&flag&page=[redacted]"
        );
    }

    #[test]
    fn the_writer_writes_the_redacted_line() {
        let mut out = Redacting(Vec::new());
        let input = b"x refresh_token=SECRET y\n";
        assert_eq!(out.write(input).expect("write"), input.len());
        assert_eq!(
            String::from_utf8(out.0).expect("utf8"),
            "x refresh_token=[redacted] y\n"
        );
    }
}
