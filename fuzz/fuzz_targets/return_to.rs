//! Return URLs after login (`return_to`, `rd`): only a local path on this host passes, so no
//! redirect parameter can send a browser to another origin.
#![no_main]

use frontdoor::web::return_to::{is_safe, sanitize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let kept = sanitize(Some(target));
    assert_eq!(is_safe(target), kept == target);
    assert!(is_safe(&kept));
    // From any page of any origin, the browser resolves it to that same origin.
    for base in [
        "http://frontdoor.invalid/",
        "https://sso.example.com:8443/oauth/authorize?x=1",
        "http://[::1]/a/b/c",
    ] {
        let base = url::Url::parse(base).expect("base");
        let resolved = base.join(&kept).expect("a safe target joins");
        assert_eq!(resolved.origin(), base.origin(), "{kept:?} leaves {base}");
    }
    assert!(kept.starts_with('/') && !kept.starts_with("//"));
});
