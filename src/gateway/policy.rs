//! A route's requirements for a verified caller: groups, roles, and read-only credentials.

use http::{HeaderMap, Method};

use super::headers::normalised_starts_with;
use super::routes::Route;
use crate::auth::{Access, Identity};
use crate::error::Error;

/// Prefixes (normalised) of the headers frameworks read as the real method:
/// `X-HTTP-Method-Override`, `X-HTTP-Method` (OData, Microsoft), `X-Method-Override`.
const METHOD_OVERRIDES: [&str; 2] = ["x-http-method", "x-method-override"];

/// Whether the caller may send `method` to a route without rules; a refusal comes with its
/// metrics outcome (`gateway::decide` counts, `frontdoor explain` does not).
pub fn check(
    identity: &Identity,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), (&'static str, Error)> {
    if !identity.in_any_group(&route.groups) || !identity.has_any_role(&route.roles) {
        return Err((
            "forbidden",
            Error::Forbidden("you are not allowed to use this resource".into()),
        ));
    }
    if identity.access == Access::ReadOnly && writes(method, headers) {
        return Err(read_only());
    }
    Ok(())
}

/// The refusal of a read-only credential.
pub fn read_only() -> (&'static str, Error) {
    (
        "read_only",
        Error::Forbidden("this credential is read-only".into()),
    )
}

/// Whether a request may write, as read-only credentials are judged: an allowlist of safe
/// methods, and no method override, named in any spelling an upstream may read as one (`_` and
/// `.` for `-`, as CGI and PHP do). An upgrade turns a GET into a two-way channel: a write too.
pub fn writes(method: &Method, headers: &HeaderMap) -> bool {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let override_header = headers.keys().any(|k| {
        let n = k.as_str().as_bytes();
        METHOD_OVERRIDES
            .iter()
            .any(|o| normalised_starts_with(n, o.as_bytes(), false))
    });
    let upgrade = headers.contains_key(http::header::UPGRADE);
    !safe || override_header || upgrade
}

/// Whether a request without a credential is a top-level browser navigation (sent to sign in)
/// rather than an API or XHR call (answered `401`): `Sec-Fetch-Mode: navigate` when the browser
/// sends it, else a GET or HEAD that accepts HTML and is not marked `X-Requested-With`. The one
/// test for the inline proxy and forward-auth.
pub fn is_browser_navigation(method: &Method, headers: &HeaderMap) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) || headers.contains_key("x-requested-with") {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode.as_bytes() == b"navigate";
    }
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Counts a presented credential that was refused (`invalid`, or `error` when the store could
/// not answer), for the inline proxy and forward-auth alike.
pub fn count_refusal(kind: &'static str, e: &Error) {
    let outcome = if e.status() == http::StatusCode::SERVICE_UNAVAILABLE {
        "error"
    } else {
        "invalid"
    };
    crate::metrics::auth_decision(kind, outcome);
}
