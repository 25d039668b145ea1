//! The gateway's canonical path: decoded once, and anything a server behind frontdoor could
//! read differently refused. A canonical path is absolute, has no `.`/`..` or empty segments,
//! no `\`, NUL or control characters, no `;` path parameters (removed, as Tomcat removes them),
//! and route prefixes match it segment-wise.
#![no_main]

use frontdoor::gateway::path::canonical;
use frontdoor::gateway::routes::prefix_matches;
use frontdoor_fuzz::split_once;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (raw, prefix) = split_once(data, b'\n');
    let Ok(raw) = std::str::from_utf8(raw) else {
        return;
    };
    let Ok(path) = canonical(raw) else {
        return;
    };
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    assert!(!path.contains('\\'), "{path:?}");
    assert!(!path.chars().any(char::is_control), "{path:?}");
    assert!(!path.contains(';'), "{path:?}");
    for segment in path[1..].split('/') {
        assert!(segment != "." && segment != "..", "{path:?}");
    }
    // What an upstream resolves (WHATWG URL rules) is this very path: nothing left to
    // normalise, no dot segment in any spelling.
    let encoded = percent_encode(&path);
    let resolved = url::Url::parse("http://upstream.invalid")
        .and_then(|b| b.join(&encoded))
        .expect("joins");
    assert_eq!(resolved.host_str(), Some("upstream.invalid"), "{path:?}");
    assert_eq!(resolved.path(), encoded, "{path:?}");
    // A prefix only matches at a segment boundary, and never on a path that escapes it.
    if let Ok(prefix) = std::str::from_utf8(prefix)
        && prefix.starts_with('/')
        && prefix_matches(prefix, &path)
    {
        assert!(path.starts_with(prefix));
        let rest = &path[prefix.len()..];
        assert!(prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'));
    }
});

/// Re-encodes the path for the upstream request line (only what cannot appear raw).
fn percent_encode(path: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    percent_encoding::utf8_percent_encode(path, SET).to_string()
}
