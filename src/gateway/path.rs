//! The one canonical path that routing and policy decide on.
//!
//! Decoded once; anything a server behind us could read differently is refused rather than
//! guessed: encoded `/`, `\` or `;`, backslashes, NUL and control characters, dot segments and
//! empty segments.
//!
//! Path parameters (`/admin;jsessionid=1/x`) are removed from each segment before routing, as
//! Tomcat, Jetty and Spring remove them before dispatching: routes, rules and contact links
//! then judge the path such an upstream serves. A segment that is a dot segment once its
//! parameters are gone (`..;`, `..;x`, `.;`) or empty (`/;x/admin`) is refused like a plain one.

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ambiguous request path: {0}")]
pub struct AmbiguousPath(pub &'static str);

/// The percent-decoded path, or why it is refused.
pub fn canonical(raw: &str) -> Result<String, AmbiguousPath> {
    if !raw.starts_with('/') {
        return Err(AmbiguousPath("the path must start with /"));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(AmbiguousPath("invalid percent-encoding"))?;
            match hex {
                b'/' => return Err(AmbiguousPath("encoded / in a segment")),
                b'\\' => return Err(AmbiguousPath("encoded \\ in a segment")),
                // Tomcat keeps an encoded `;` in the segment, Jetty and Spring differ: no guess.
                b';' => return Err(AmbiguousPath("encoded ; in a segment")),
                0 => return Err(AmbiguousPath("NUL byte")),
                _ => out.push(hex),
            }
            i += 3;
        } else {
            if b == b'\\' {
                return Err(AmbiguousPath("backslash"));
            }
            out.push(b);
            i += 1;
        }
    }
    let path = String::from_utf8(out).map_err(|_| AmbiguousPath("not UTF-8"))?;
    if path.chars().any(char::is_control) {
        return Err(AmbiguousPath("control character"));
    }
    // Each segment without its `;` parameters.
    let segments = || {
        path[1..]
            .split('/')
            .map(|s| s.split_once(';').map_or(s, |(name, _params)| name))
    };
    let mut checked = segments().peekable();
    while let Some(s) = checked.next() {
        if s == "." || s == ".." {
            return Err(AmbiguousPath("dot segment"));
        }
        if s.is_empty() && checked.peek().is_some() {
            return Err(AmbiguousPath("empty segment"));
        }
    }
    if !path.contains(';') {
        return Ok(path);
    }
    Ok(format!("/{}", segments().collect::<Vec<_>>().join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_decode_once() {
        assert_eq!(canonical("/").as_deref(), Ok("/"));
        assert_eq!(
            canonical("/wiki/Main%20Page").as_deref(),
            Ok("/wiki/Main Page")
        );
        assert_eq!(canonical("/a/b/").as_deref(), Ok("/a/b/"));
        // Decoded once only: %2525 is a literal %25.
        assert_eq!(canonical("/x%2525").as_deref(), Ok("/x%25"));
    }

    #[test]
    fn path_parameters_are_removed_as_tomcat_removes_them() {
        assert_eq!(canonical("/admin;x/secret").as_deref(), Ok("/admin/secret"));
        assert_eq!(canonical("/admin;").as_deref(), Ok("/admin"));
        assert_eq!(canonical("/a;x=1;y/b;c/").as_deref(), Ok("/a/b/"));
        assert_eq!(canonical("/a/;x").as_deref(), Ok("/a/"));
        assert_eq!(canonical("/a%20b;v").as_deref(), Ok("/a b"));
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/admin%2fsecret",
            "/admin%2Fsecret",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a/../admin",
            "/a/%2e%2e/admin",
            "/./admin",
            "//admin",
            "/a//b",
            "/%zz",
            "/%",
            "/a%0d%0a",
            "relative",
            "/%ff",
            "/public/..;/admin",
            "/public/..;x=1/admin",
            "/public/.;/x",
            "/public/%2e%2e;/admin",
            "/a;x/../admin",
            "/;x/admin",
            "/admin%3bx/secret",
            "/admin%3Bx",
        ] {
            assert!(canonical(bad).is_err(), "{bad}");
        }
    }
}
