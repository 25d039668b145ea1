//! The authorization request (`/oauth/authorize` query or form): decoding, duplicate and
//! alias rules, scope and prompt parsing, and the canonical parameters frontdoor sends through
//! the login round trip and the consent form, which must parse back to the same request.
#![no_main]

use frontdoor::provider::authorize::parse;
use frontdoor::provider::scopes;
use frontdoor::secrets::is_valid_pkce_challenge;
use libfuzzer_sys::fuzz_target;

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let Ok(received) = parse(pairs.clone()) else {
        return;
    };
    let params = &received.params;
    assert!(!params.client_id().is_empty());
    assert!(
        pairs
            .iter()
            .any(|(k, v)| k == "client_id" && v == params.client_id())
    );
    if let Some((_, scope)) = pairs.iter().find(|(k, _)| k == "scope" || k == "scopes") {
        let parsed = scopes::parse(scope);
        assert!(parsed.iter().all(|s| !s.is_empty() && !s.contains(' ')));
        let mut dedup = parsed.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), parsed.len(), "scopes are unique");
    }
    if let Some((_, c)) = pairs.iter().find(|(k, _)| k == "code_challenge") {
        let _ = is_valid_pkce_challenge(c);
    }
    // The login round trip and the consent form carry the canonical pairs.
    let redirect = params.redirect_uri().unwrap_or("https://app.invalid/cb");
    for drop_login in [false, true] {
        let canonical = params.pairs(redirect, drop_login);
        let back = parse(
            form_urlencoded::parse(encode(&canonical).as_bytes())
                .into_owned()
                .collect(),
        )
        .unwrap_or_else(|e| panic!("canonical pairs {canonical:?} refused: {e}"));
        assert_eq!(back.decision, None);
        assert_eq!(back.csrf_token, None);
        assert_eq!(back.params.client_id(), params.client_id());
        assert_eq!(back.params.redirect_uri(), Some(redirect));
        if drop_login {
            assert!(
                !back
                    .params
                    .prompt()
                    .is_some_and(|p| p.split(' ').any(|x| x == "login")),
                "prompt=login survived the login round trip"
            );
        }
        // Canonical pairs are a fixed point.
        assert_eq!(
            back.params.pairs(redirect, drop_login),
            back.params.pairs(redirect, false)
        );
        assert_eq!(back.params.pairs(redirect, drop_login), canonical);
    }
});
