//! Return URLs after login: only a single absolute path on this host, never an open redirect.

/// Accepts `/path?query` and refuses everything that a browser could resolve to another
/// origin: `//host`, `/\host`, schemes, control characters, and backslashes anywhere.
pub fn is_safe(target: &str) -> bool {
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return false;
    }
    if target
        .chars()
        .any(|c| c.is_control() || c == '\\' || c.is_whitespace())
    {
        return false;
    }
    // Resolve against a dummy origin: the result must stay on it.
    match url::Url::parse("http://frontdoor.invalid").and_then(|base| base.join(target)) {
        Ok(u) => u.host_str() == Some("frontdoor.invalid") && u.scheme() == "http",
        Err(_) => false,
    }
}

/// The target, or `/` when unsafe or absent.
pub fn sanitize(target: Option<&str>) -> String {
    match target {
        Some(t) if is_safe(t) => t.to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_pass() {
        for ok in [
            "/",
            "/wiki/Page?x=1&y=%2F",
            "/oauth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fx",
        ] {
            assert!(is_safe(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "evil.example",
            "/\tevil",
            "/a\r\nSet-Cookie: x=1",
            "",
            "javascript:alert(1)",
            "/%0d%0a",
        ] {
            let safe = is_safe(bad);
            // %0d%0a stays percent-encoded in the Location header, which is harmless.
            if bad == "/%0d%0a" {
                assert!(safe);
            } else {
                assert!(!safe, "{bad:?}");
            }
        }
        assert_eq!(sanitize(Some("//evil.example")), "/");
    }
}
