//! The session cookie: a browser's `Cookie` header, the value frontdoor finds in it, and its
//! decryption. A cookie that decrypts was sealed with our key (one of the seeds); every raw id
//! sealed with our key opens back to itself.
#![no_main]

use frontdoor::endpoint::cookie_value;
use frontdoor_fuzz::{SEED_SESSION_IDS, SESSION_COOKIE, keys};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn check_opened(raw: Option<String>) {
    if let Some(raw) = raw {
        assert!(
            SEED_SESSION_IDS.contains(&raw.as_str()),
            "a cookie not sealed with our key decrypted to {raw:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    // As the gateway sees it: every Cookie header, then the session cookie's value.
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(http::header::COOKIE, v);
        }
    }
    // The quick search finds what reading every pair finds.
    let by_pairs = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(frontdoor::cookie_header::pairs)
        .flatten()
        .find(|p| p.value.is_some() && p.name == SESSION_COOKIE.as_bytes())
        .and_then(|p| p.value);
    assert_eq!(
        frontdoor::cookie_header::find(headers.get_all(http::header::COOKIE), SESSION_COOKIE)
            .map(str::as_bytes),
        by_pairs
    );
    if let Some(value) = cookie_value(&headers, SESSION_COOKIE) {
        check_opened(keys.open(SESSION_COOKIE, &value));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The bare value too, and under another cookie name (the name is bound to the value).
    check_opened(keys.open(SESSION_COOKIE, text));
    if let Some(raw) = keys.open("frontdoor_csrf", text) {
        panic!("a session cookie opened under another name: {raw:?}");
    }
    // Round trip: whatever id we seal opens back to itself, also after the browser's
    // percent-encoded round trip through a Cookie header.
    let sealed = keys.seal(SESSION_COOKIE, text);
    assert_eq!(
        keys.open(SESSION_COOKIE, sealed.value()).as_deref(),
        Some(text)
    );
    let mut headers = HeaderMap::new();
    let header = format!("other=1; {}", sealed.encoded());
    headers.append(
        http::header::COOKIE,
        HeaderValue::from_str(&header).expect("an encoded cookie is a valid header value"),
    );
    let value = cookie_value(&headers, SESSION_COOKIE).expect("cookie found");
    assert_eq!(
        keys.open(SESSION_COOKIE, &value).as_deref(),
        Some(text)
    );
});
