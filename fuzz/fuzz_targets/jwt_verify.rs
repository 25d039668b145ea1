//! Bearer JWTs: `Authorization: Bearer` extraction and RS256 verification of access tokens
//! (and of `id_token_hint`, expiry ignored). A token that verifies was signed with our key
//! (one of the seeds) and carries our issuer and audience.
#![no_main]

use frontdoor::keys::LEEWAY;
use frontdoor::tokens::bearer;
use frontdoor::tokens::{ACCESS_TOKEN_TYP, AccessClaims, ID_TOKEN_TYP};
use frontdoor_fuzz::{ISSUER, SEED_JTI_PREFIX, keys};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn verify(token: &str) {
    let keys = keys();
    if let Ok(c) = keys.verify::<AccessClaims>(token, ACCESS_TOKEN_TYP, ISSUER, Some(ISSUER)) {
        assert!(
            c.jti.starts_with(SEED_JTI_PREFIX),
            "forged token verified: {c:?}"
        );
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.aud, ISSUER);
        assert!(
            c.exp + LEEWAY > frontdoor::clock::now(),
            "expired token verified"
        );
    }
    // Another audience never verifies an access token of ours.
    if let Ok(c) = keys.verify::<AccessClaims>(token, ACCESS_TOKEN_TYP, ISSUER, Some("other")) {
        panic!("token for {} verified for audience `other`", c.aud);
    }
    if let Ok(c) = keys.verify_ignoring_expiry::<serde_json::Value>(token, ID_TOKEN_TYP, ISSUER) {
        assert!(
            c["jti"]
                .as_str()
                .is_some_and(|j| j.starts_with(SEED_JTI_PREFIX)),
            "forged id token verified: {c}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    verify(text);
    // As a header: `Bearer <token>` in any case, whitespace trimmed.
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(text) {
        headers.insert(http::header::AUTHORIZATION, v);
        if let Some(t) = bearer(&headers) {
            assert!(!t.is_empty() && t.trim() == t);
            verify(t);
        }
    }
});
