//! `reserved_prefix`: the one path prefix frontdoor keeps for itself on hosts that only route
//! to an app (its sign-in callback, logout, forward-auth and assets); every other path there
//! belongs to the app.

use serde::Deserialize;

/// The prefix frontdoor's endpoints have always lived under; on frontdoor's own hosts it
/// always answers, whatever `reserved_prefix` says.
pub const OWN_PREFIX: &str = "/_frontdoor/";

/// Paths frontdoor answers on its own hosts besides the reserved prefix: the OAuth/OIDC
/// provider, discovery and the JSON APIs. A prefix may not overlap them, or a request for one
/// would be read as a request under the other.
pub const OWN_HOST_PATHS: [&str; 5] = [
    "/oauth/",
    "/.well-known/",
    "/api/v1/",
    OWN_PREFIX,
    "/oauth2-token",
];

/// A checked `reserved_prefix`: `/`, one or more plain segments, `/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ReservedPrefix {
    prefix: String,
    /// The stylesheet under the prefix, made once: pages that app hosts show link it.
    style: String,
}

impl ReservedPrefix {
    fn new(prefix: String) -> Self {
        let style = format!("{prefix}static/style.css");
        ReservedPrefix { prefix, style }
    }
}

impl Default for ReservedPrefix {
    fn default() -> Self {
        ReservedPrefix::new(OWN_PREFIX.to_string())
    }
}

impl TryFrom<String> for ReservedPrefix {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let inner = value
            .strip_prefix('/')
            .and_then(|v| v.strip_suffix('/'))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("`{value}` must start and end with `/`, such as `/_sso/`"))?;
        // Requests are matched on their canonical path: only segments that are already in that
        // form (no escapes, parameters or dot segments) can ever match.
        let plain = inner.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        });
        if !plain {
            return Err(format!(
                "`{value}` must be plain path segments of letters, digits, `-`, `_`, `.` or `~`"
            ));
        }
        if value != OWN_PREFIX
            && let Some(own) = OWN_HOST_PATHS
                .iter()
                .find(|own| own.starts_with(&value) || value.starts_with(*own))
        {
            return Err(format!(
                "`{value}` overlaps `{own}`, which frontdoor answers on its own hosts"
            ));
        }
        Ok(ReservedPrefix::new(value))
    }
}

impl ReservedPrefix {
    /// The prefix, with its leading and trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The stylesheet's path under the prefix, for pages that can be shown on app hosts (the
    /// sign-in callback's errors, logout): there `/_frontdoor/` belongs to the app when the
    /// prefix is another, and the prefix answers on every host.
    pub fn style_href(&self) -> &str {
        &self.style
    }

    /// The path of one of frontdoor's endpoints under the prefix, e.g. `callback`.
    pub fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// A path under the prefix in the form frontdoor's endpoint table knows (`/_frontdoor/…`).
    pub fn to_own(&self, path: &str) -> Option<String> {
        path.strip_prefix(self.prefix.as_str())
            .map(|rest| format!("{OWN_PREFIX}{rest}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_and_clear_of_frontdoors_own_paths() {
        let p = |v: &str| ReservedPrefix::try_from(v.to_string());
        assert_eq!(
            p("/_frontdoor/").map(|p| p.prefix),
            Ok(OWN_PREFIX.to_string())
        );
        assert!(p("/_sso/").is_ok());
        assert!(p("/.sso/auth/").is_ok());
        for bad in [
            "",
            "/",
            "//",
            "_sso/",
            "/_sso",
            "/a//b/",
            "/./",
            "/../",
            "/a%2f/",
            "/a;b/",
            "/a b/",
            "/oauth/",
            "/api/",
            "/api/v1/x/",
            "/.well-known/",
            "/_frontdoor/x/",
            "/oauth2-token/",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        let sso = p("/_sso/").expect("valid");
        assert_eq!(
            sso.to_own("/_sso/callback").as_deref(),
            Some("/_frontdoor/callback")
        );
        assert_eq!(sso.to_own("/_sso"), None);
        assert_eq!(sso.to_own("/_frontdoor/callback"), None);
        assert_eq!(sso.path("logout"), "/_sso/logout");
    }
}
