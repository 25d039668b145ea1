//! The `Cookie` request header read the one way frontdoor reads it everywhere: where its own
//! cookies are looked up (`endpoint::raw_cookie`) and where they are cut out before
//! the request goes upstream (`gateway::headers::strip`). One reading for both keeps "the
//! cookie frontdoor believed" and "the cookie it removed" the same cookie.
//!
//! A corporate domain's browsers send kilobytes of other cookies with every request, so the
//! header is only split, never parsed cookie by cookie: `;` and `=` are found with `memchr`
//! (SIMD), and only a pair's name is compared.

use http::HeaderValue;

/// One pair of a `Cookie` header, space and tab trimmed (the only whitespace a header value
/// can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The pair as the client wrote it, trimmed.
    pub whole: &'a [u8],
    /// What stands before the first `=`, trimmed; the whole pair when there is no `=`.
    pub name: &'a [u8],
    /// What follows the first `=`, trimmed (quotes kept); `None` without a `=`.
    pub value: Option<&'a [u8]>,
}

/// The non-empty pairs of one `Cookie` header value; `None` when the value is not text
/// (bytes above 0x7F, which no cookie frontdoor sets can hold).
pub fn pairs(header: &HeaderValue) -> Option<impl Iterator<Item = Pair<'_>>> {
    let bytes = header.as_bytes();
    // A `HeaderValue` holds no control character but tab, so ASCII is exactly what
    // `HeaderValue::to_str` accepts; `is_ascii` checks a word at a time.
    if !bytes.is_ascii() {
        return None;
    }
    let mut start = 0;
    let ends = memchr::memchr_iter(b';', bytes).chain(std::iter::once(bytes.len()));
    Some(
        ends.map(move |end| {
            let pair = bytes[start..end].trim_ascii();
            start = end + 1;
            pair
        })
        .filter(|p| !p.is_empty())
        .map(|whole| match memchr::memchr(b'=', whole) {
            Some(i) => Pair {
                whole,
                name: whole[..i].trim_ascii(),
                value: Some(whole[i + 1..].trim_ascii()),
            },
            None => Pair {
                whole,
                name: whole,
                value: None,
            },
        }),
    )
}

/// The value, as sent, of the first cookie called `name` in any of `headers` (`Cookie`
/// fields); names are compared as sent, never decoded.
///
/// What [`pairs`] would find, without splitting every pair: the name is searched for (SIMD),
/// and an occurrence counts only where a pair starts (nothing but space or tab back to the
/// previous `;`) and `=` follows (after space or tab), as the pair's own name would read.
pub fn find<'a>(headers: impl IntoIterator<Item = &'a HeaderValue>, name: &str) -> Option<&'a str> {
    if name.is_empty() {
        return None;
    }
    // The names asked for are the few configured ones: the searcher built for the last name a
    // thread asked for is kept, since building one costs as much as searching kilobytes.
    thread_local! {
        static LAST: std::cell::RefCell<Option<memchr::memmem::Finder<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        let finder = match last {
            Some(f) if f.needle() == name.as_bytes() => f,
            _ => last.insert(memchr::memmem::Finder::new(name.as_bytes()).into_owned()),
        };
        find_with(headers, name, finder)
    })
}

fn find_with<'a>(
    headers: impl IntoIterator<Item = &'a HeaderValue>,
    name: &str,
    finder: &memchr::memmem::Finder<'_>,
) -> Option<&'a str> {
    for header in headers {
        let bytes = header.as_bytes();
        if !bytes.is_ascii() {
            continue;
        }
        for at in finder.find_iter(bytes) {
            let starts_pair = bytes[..at]
                .iter()
                .rev()
                .take_while(|&&b| b != b';')
                .all(|&b| b == b' ' || b == b'\t');
            if !starts_pair {
                continue;
            }
            if let Some(after) = bytes[at + name.len()..]
                .trim_ascii_start()
                .strip_prefix(b"=")
            {
                let end = memchr::memchr(b';', after).unwrap_or(after.len());
                return std::str::from_utf8(after[..end].trim_ascii()).ok();
            }
        }
    }
    None
}

/// The `Cookie` header without the pairs named in `own` (a pair without `=` counts under its
/// whole text, as a browser would send `name` back for `Set-Cookie: name`). `None` when
/// nothing is removed; `Some(None)` when nothing is left. A value that is not text is removed
/// whole.
pub fn without<'a>(
    headers: impl IntoIterator<Item = &'a HeaderValue>,
    own: &[&str],
) -> Option<Option<HeaderValue>> {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut removed = false;
    let mut len = 0;
    for header in headers {
        let Some(pairs) = pairs(header) else {
            removed = true;
            continue;
        };
        for p in pairs {
            if own.iter().any(|o| o.as_bytes() == p.name) {
                removed = true;
            } else {
                len += p.whole.len() + 2;
                kept.push(p.whole);
            }
        }
    }
    if !removed {
        return None;
    }
    if kept.is_empty() {
        return Some(None);
    }
    let mut joined = Vec::with_capacity(len);
    for (i, p) in kept.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(p);
    }
    // SAFETY: `joined` is made of sub-slices of `HeaderValue`s, which hold only valid header
    // bytes, with `; ` between them; the slices do not start or end inside anything (they
    // are whole pairs). Checking every byte again (kilobytes of other cookies on a corporate
    // domain, on every request) would only find them valid; debug builds do check it.
    Some(Some(unsafe {
        HeaderValue::from_maybe_shared_unchecked(bytes::Bytes::from(joined))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header value")
    }

    #[test]
    fn pairs_are_split_trimmed_and_named_before_the_first_equals_sign() {
        let h = hv(" a=1 ;b = \"x=y\" ;;\tflag ; =v;c=");
        let got: Vec<Pair<'_>> = pairs(&h).expect("text").collect();
        assert_eq!(
            got,
            vec![
                Pair {
                    whole: b"a=1",
                    name: b"a",
                    value: Some(b"1")
                },
                Pair {
                    whole: b"b = \"x=y\"",
                    name: b"b",
                    value: Some(b"\"x=y\"")
                },
                Pair {
                    whole: b"flag",
                    name: b"flag",
                    value: None
                },
                Pair {
                    whole: b"=v",
                    name: b"",
                    value: Some(b"v")
                },
                Pair {
                    whole: b"c=",
                    name: b"c",
                    value: Some(b"")
                },
            ]
        );
        assert!(pairs(&HeaderValue::from_bytes(b"a=\xff").expect("obs-text")).is_none());
    }

    #[test]
    fn the_first_cookie_of_the_name_is_found_across_fields() {
        let (a, b) = (
            hv("x=0; frontdoor_session=one"),
            hv("frontdoor_session=two"),
        );
        assert_eq!(find([&a, &b], "frontdoor_session"), Some("one"));
        assert_eq!(find([&b, &a], "frontdoor_session"), Some("two"));
        // A pair without `=` carries no value, an empty name is no cookie.
        assert_eq!(
            find([&hv("frontdoor_session; =x")], "frontdoor_session"),
            None
        );
        assert_eq!(find([&hv("=x")], ""), None);
        // Names are compared as sent.
        assert_eq!(
            find([&hv("Frontdoor_Session=1")], "frontdoor_session"),
            None
        );
        // One name after another on the same thread: each is searched for, not the last one.
        let both = hv("frontdoor_csrf=c; frontdoor_session=s");
        for _ in 0..2 {
            assert_eq!(find([&both], "frontdoor_session"), Some("s"));
            assert_eq!(find([&both], "frontdoor_csrf"), Some("c"));
            assert_eq!(find([&both], "frontdoor"), None);
        }
        let odd = HeaderValue::from_bytes(b"frontdoor_session=\xff").expect("obs-text");
        assert_eq!(find([&odd, &a], "frontdoor_session"), Some("one"));
        // Only where a pair starts, and only its name.
        for (header, want) in [
            ("a=frontdoor_session=x; frontdoor_session=y", Some("y")),
            ("frontdoor_session frontdoor_session=x", None),
            ("frontdoor_sessionX=1; frontdoor_session =\t2 ;", Some("2")),
            ("x=1;frontdoor_session;frontdoor_session=3", Some("3")),
            ("=frontdoor_session=x", None),
            ("frontdoor_session=", Some("")),
        ] {
            let value = hv(header);
            assert_eq!(find([&value], "frontdoor_session"), want, "{header}");
            // The same answer as reading every pair.
            let by_pairs = pairs(&value)
                .expect("text")
                .find(|p| p.value.is_some() && p.name == b"frontdoor_session")
                .and_then(|p| p.value)
                .map(|v| std::str::from_utf8(v).expect("ascii"));
            assert_eq!(
                find([&hv(header)], "frontdoor_session"),
                by_pairs,
                "{header}"
            );
        }
    }

    #[test]
    fn own_cookies_are_cut_out_and_the_rest_kept_as_written() {
        let own = ["frontdoor_session", "frontdoor_csrf"];
        assert_eq!(without([&hv("a=1; b=2")], &own), None);
        let cut = without(
            [
                &hv("a=1;  frontdoor_session=s ;b = 2"),
                &hv("frontdoor_csrf=c; c"),
            ],
            &own,
        );
        assert_eq!(cut, Some(Some(hv("a=1; b = 2; c"))));
        assert_eq!(without([&hv("frontdoor_session")], &own), Some(None));
        let odd = HeaderValue::from_bytes(b"a=\xff").expect("obs-text");
        assert_eq!(without([&odd, &hv("b=1")], &own), Some(Some(hv("b=1"))));
        // Many foreign cookies around ours: all of them kept, in order.
        let foreign: Vec<String> = (0..40)
            .map(|i| format!("_p{i}={}", "v".repeat(90)))
            .collect();
        let header = format!(
            "{}; frontdoor_session=s; {}",
            foreign[..20].join("; "),
            foreign[20..].join("; ")
        );
        assert_eq!(
            without([&hv(&header)], &own),
            Some(Some(hv(&foreign.join("; "))))
        );
    }
}
