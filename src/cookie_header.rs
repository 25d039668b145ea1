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
    with_finder(name.as_bytes(), |finder| find_with(headers, name, finder))
}

/// Runs `f` with a searcher for `needle`, kept per thread: the names searched for are the few
/// configured ones, and building a searcher costs as much as searching kilobytes.
fn with_finder<R>(needle: &[u8], f: impl FnOnce(&memchr::memmem::Finder<'static>) -> R) -> R {
    thread_local! {
        static FINDERS: std::cell::RefCell<Vec<memchr::memmem::Finder<'static>>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    FINDERS.with_borrow_mut(|finders| {
        let at = match finders.iter().position(|f| f.needle() == needle) {
            Some(at) => at,
            None => {
                // A reload may name other cookies: the old searchers are not kept forever.
                if finders.len() >= 16 {
                    finders.clear();
                }
                finders.push(memchr::memmem::Finder::new(needle).into_owned());
                finders.len() - 1
            }
        };
        f(&finders[at])
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
            if let Some(after) = named_pair(bytes, at, name).and_then(|r| r.strip_prefix(b"=")) {
                let end = memchr::memchr(b';', after).unwrap_or(after.len());
                return std::str::from_utf8(after[..end].trim_ascii()).ok();
            }
        }
    }
    None
}

/// What follows the name of the pair named `name` at `at` (after space or tab: `=` and the
/// value, `;`, or nothing), when one is there: a pair starts at `at` (nothing but space or tab
/// back to the previous `;`), and `name` is all its name.
///
/// Searches give non-overlapping occurrences; none is missed here, since the names searched
/// for hold no `;`, space or tab (`session.cookie_name` is checked to be a token), so an
/// occurrence cannot overlap one that starts a pair.
fn named_pair<'a>(bytes: &'a [u8], at: usize, name: &str) -> Option<&'a [u8]> {
    let rest = bytes[at..]
        .strip_prefix(name.as_bytes())?
        .trim_ascii_start();
    let starts_pair = bytes[..at]
        .iter()
        .rev()
        .take_while(|&&b| b != b';')
        .all(|&b| b == b' ' || b == b'\t');
    (starts_pair && matches!(rest.first(), None | Some(b'=' | b';'))).then_some(rest)
}

/// The `Cookie` header without the pairs named in `own` (a pair without `=` counts under its
/// whole text, as a browser would send `name` back for `Set-Cookie: name`). `None` when
/// nothing is removed; `Some(None)` when nothing is left. A value that is not text is removed
/// whole.
pub fn without<'a>(
    headers: impl IntoIterator<Item = &'a HeaderValue>,
    own: &[&str],
) -> Option<Option<HeaderValue>> {
    let mut headers = headers.into_iter();
    let first = headers.next()?;
    match headers.next() {
        None if first.as_bytes().is_ascii() => cut(first.as_bytes(), own),
        None => Some(None),
        Some(second) => without_each_pair([first, second].into_iter().chain(headers), own),
    }
}

/// [`without`] for the one `Cookie` field an HTTP/1 browser sends: the own pairs are searched
/// for by name (SIMD) as [`find`] does, and what lies between them is kept as written, so a
/// header without them is left alone and one with them is copied once, its other pairs
/// neither split nor compared.
fn cut(bytes: &[u8], own: &[&str]) -> Option<Option<HeaderValue>> {
    let own = || own.iter().copied().filter(|n| !n.is_empty());
    // frontdoor's cookie names share a prefix (`frontdoor_`): one pass finds them all, in order.
    let prefix = own().skip(1).fold(own().next().unwrap_or(""), |p, n| {
        let common = p.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count();
        &p[..common]
    });
    if !prefix.is_empty() {
        return with_finder(prefix.as_bytes(), |finder| {
            let starts = finder
                .find_iter(bytes)
                .filter(|&at| own().any(|name| named_pair(bytes, at, name).is_some()));
            cut_at(bytes, starts)
        });
    }
    let mut starts = Vec::new();
    for name in own() {
        with_finder(name.as_bytes(), |finder| {
            starts.extend(
                finder
                    .find_iter(bytes)
                    .filter(|&at| named_pair(bytes, at, name).is_some()),
            );
        });
    }
    starts.sort_unstable();
    starts.dedup();
    cut_at(bytes, starts.into_iter())
}

/// `bytes` without the pairs that start at `starts` (in increasing order), each up to and
/// with the `;` after it; what lies between them is kept as written, trimmed of the separators
/// and space around it. `None` when `starts` is empty.
fn cut_at(bytes: &[u8], starts: impl Iterator<Item = usize>) -> Option<Option<HeaderValue>> {
    let mut kept = Vec::new();
    let mut from = None;
    for start in starts {
        push_piece(&mut kept, &bytes[from.unwrap_or(0)..start], bytes.len());
        from = Some(memchr::memchr(b';', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1));
    }
    push_piece(&mut kept, &bytes[from?..], bytes.len());
    Some(into_value(kept))
}

/// Appends `piece`, trimmed of the space, tab and `;` around it, to the pairs `kept` holds,
/// after `; `; nothing when that leaves nothing. The first piece reserves `capacity`.
fn push_piece(kept: &mut Vec<u8>, piece: &[u8], capacity: usize) {
    let separator = |b: &u8| matches!(b, b' ' | b'\t' | b';');
    let Some(start) = piece.iter().position(|b| !separator(b)) else {
        return;
    };
    let end = piece
        .iter()
        .rposition(|b| !separator(b))
        .map_or(start, |i| i + 1);
    if kept.is_empty() {
        kept.reserve(capacity);
    } else {
        kept.extend_from_slice(b"; ");
    }
    kept.extend_from_slice(&piece[start..end]);
}

/// [`without`] for several `Cookie` fields (HTTP/2 may send one per cookie): every pair is
/// read, and the kept ones are joined into one field.
fn without_each_pair<'a>(
    headers: impl Iterator<Item = &'a HeaderValue>,
    own: &[&str],
) -> Option<Option<HeaderValue>> {
    let mut kept = Vec::new();
    let mut removed = false;
    for header in headers {
        let Some(pairs) = pairs(header) else {
            removed = true;
            continue;
        };
        for p in pairs {
            if own.iter().any(|o| o.as_bytes() == p.name) {
                removed = true;
            } else {
                push_piece(&mut kept, p.whole, header.len());
            }
        }
    }
    removed.then(|| into_value(kept))
}

/// The field of the pairs `push_piece` gathered; `None` when there are none.
fn into_value(kept: Vec<u8>) -> Option<HeaderValue> {
    if kept.is_empty() {
        return None;
    }
    // SAFETY: `kept` is made of sub-slices of `HeaderValue`s, which hold only valid header
    // bytes, with `; ` between them; it neither starts nor ends with space (`push_piece` trims
    // each slice). Checking every byte again (kilobytes of other cookies on a corporate domain,
    // on every request) would only find them valid; debug builds do check it.
    Some(unsafe { HeaderValue::from_maybe_shared_unchecked(bytes::Bytes::from(kept)) })
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

    /// The one-field path (names searched for, the rest kept as written) keeps exactly the
    /// pairs that reading every pair keeps, in order, for any mix of spacing, empty pairs,
    /// names inside names and values; for the `; `-separated fields browsers send, byte for
    /// byte the same field.
    #[test]
    fn cutting_one_field_keeps_what_reading_every_pair_keeps() {
        // frontdoor's names, which share a prefix, and a configured session cookie name that
        // shares none with the others.
        for own in [
            ["frontdoor_session", "frontdoor_csrf"],
            ["sid", "frontdoor_csrf"],
        ] {
            cut_matches_reading_every_pair(&own);
        }
    }

    fn cut_matches_reading_every_pair(own: &[&str]) {
        let fragments = [
            "sid=1",
            "sid",
            "xsid=2",
            "sid x",
            "a=1",
            "frontdoor_session=s",
            "frontdoor_session",
            " frontdoor_session =x",
            "xfrontdoor_session=1",
            "frontdoor_sessionx=1",
            "frontdoor_session x=1",
            "a=frontdoor_session=x",
            "frontdoor_csrf=c",
            "b = 2",
            "c",
            "q=\"x",
            "y\"",
            "",
            " \t",
            "=v",
        ];
        let separators = [";", "; ", " ;", ";;", "\t; ", "; ;"];
        let read_every_pair = |v: &HeaderValue| {
            let twice = [v, &hv("zz=0")];
            without_each_pair(twice.into_iter(), own)
        };
        let names = |v: &Option<HeaderValue>| -> Vec<Vec<u8>> {
            v.iter()
                .flat_map(|v| pairs(v).expect("text").map(|p| p.whole.to_vec()))
                .collect()
        };
        let mut seed = 0x2545_f491_u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize % n
        };
        for case in 0..5_000 {
            let canonical = case % 2 == 0;
            let mut header = String::new();
            for i in 0..1 + next(8) {
                if i > 0 {
                    header.push_str(if canonical {
                        "; "
                    } else {
                        separators[next(separators.len())]
                    });
                }
                let fragment = fragments[next(fragments.len())];
                if canonical && (fragment.trim().is_empty() || fragment != fragment.trim()) {
                    header.push_str("d=4");
                } else {
                    header.push_str(fragment);
                }
            }
            let Ok(value) = HeaderValue::from_str(header.trim()) else {
                continue;
            };
            let cut = without([&value], own);
            // The reference reads a second field too (`zz=0`), which it always keeps last.
            let reference = read_every_pair(&value).map(|kept| {
                let mut kept = names(&kept);
                assert_eq!(kept.pop().as_deref(), Some(&b"zz=0"[..]));
                kept
            });
            match (&cut, reference) {
                (None, None) => {}
                (Some(field), Some(kept)) => {
                    assert_eq!(names(field), kept, "{header:?}");
                    if canonical {
                        let joined = kept.join(&b"; "[..]);
                        assert_eq!(
                            field.as_ref().map_or(&b""[..], |f| f.as_bytes()),
                            joined,
                            "{header:?}"
                        );
                    }
                }
                (cut, reference) => panic!("{header:?}: {cut:?} vs {reference:?}"),
            }
        }
    }
}
