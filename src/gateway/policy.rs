//! A route's rules for a verified caller: groups, roles, and read-only credentials.

use http::{HeaderMap, Method};

use super::routes::Route;
use crate::auth::{Access, Identity};
use crate::endpoint::ApiError;

/// Whether the caller may send `method` to `route`; counts the decision in the metrics.
pub fn allow(
    identity: &Identity,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let kind = identity.kind.label();
    if !identity.in_any_group(&route.groups) || !identity.has_any_role(&route.roles) {
        crate::metrics::auth_decision(kind, "forbidden");
        return Err(ApiError::forbidden(
            "you are not allowed to use this resource",
        ));
    }
    if identity.access == Access::ReadOnly {
        // An allowlist of safe methods, and no method override for read-only credentials.
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let override_header = headers.keys().any(|k| {
            let n = k.as_str();
            n.starts_with("x-http-method") || n == "x-method-override"
        });
        if !safe || override_header {
            crate::metrics::auth_decision(kind, "read_only");
            return Err(ApiError::forbidden("this credential is read-only"));
        }
    }
    crate::metrics::auth_decision(kind, "allowed");
    Ok(())
}
