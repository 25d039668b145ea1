//! Which credential a request carries (`Api-Token`, `Authorization: Bearer`,
//! `X-Contact-Hash`, the session cookie) and the store key derived from it. The credential
//! chosen is the first present in precedence order, trimmed and never empty.
#![no_main]

use frontdoor::auth::credentials::{Presented, presented};
use frontdoor::endpoint::raw_cookie;
use frontdoor::secrets::hash_secret;
use frontdoor::tokens::bearer;
use frontdoor_fuzz::{SESSION_COOKIE, headers};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn stored_key(credential: &str) {
    let h = hash_secret(credential);
    assert_eq!(h.len(), 43, "SHA-256 in base64url");
    assert!(
        h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
}

fuzz_target!(|data: &[u8]| {
    let h = headers(data);
    match presented(&h, SESSION_COOKIE) {
        Presented::ApiToken(t) => {
            assert_eq!(Some(t), text(&h, "api-token"));
            stored_key(t);
        }
        Presented::Bearer(t) => {
            assert!(text(&h, "api-token").is_none());
            assert_eq!(Some(t), bearer(&h));
            assert!(!t.is_empty() && t.trim() == t);
        }
        Presented::ContactHash(c) => {
            assert!(text(&h, "api-token").is_none() && bearer(&h).is_none());
            assert_eq!(Some(c), text(&h, "x-contact-hash"));
            stored_key(c);
        }
        Presented::Session(value) => {
            assert!(text(&h, "api-token").is_none() && bearer(&h).is_none());
            assert!(text(&h, "x-contact-hash").is_none());
            assert!(h.get_all(http::header::COOKIE).iter().any(|v| {
                v.as_bytes()
                    .windows(SESSION_COOKIE.len())
                    .any(|w| w == SESSION_COOKIE.as_bytes())
            }));
            // The value the session lookup opens is the one every other reader finds.
            assert_eq!(Some(value), raw_cookie(&h, SESSION_COOKIE));
        }
        Presented::None => {
            assert!(text(&h, "api-token").is_none() && bearer(&h).is_none());
            assert!(text(&h, "x-contact-hash").is_none());
            // A session cookie the gateway would read is never overlooked.
            if raw_cookie(&h, SESSION_COOKIE).is_some()
                || frontdoor::endpoint::cookie_value(&h, SESSION_COOKIE).is_some()
            {
                panic!("session cookie present but not presented");
            }
        }
    }
});
