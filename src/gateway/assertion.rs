//! The signed identity assertion (`routes[].assertion`): a short-lived JWT, signed with
//! frontdoor's keys and verifiable against `/oauth/jwks`, for upstreams that verify who is
//! calling instead of trusting the network the identity headers came over. Minted once per
//! identity and audience and reused while it has more than half its lifetime left, so a warm
//! request does not sign.

use http::HeaderValue;
use serde::Serialize;

use super::routes::{Route, RouteAssertion};
use crate::auth::Identity;
use crate::clock::now;
use crate::keys::KeyError;
use crate::state::State;

/// Its JWT `typ`: not an access token (`at+jwt`) or an ID token, so no relying party of
/// frontdoor's can be made to take one for either.
pub const ASSERTION_TYP: &str = "frontdoor-assertion+jwt";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    email: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    groups: &'a [String],
    roles: &'a [String],
    tenant: &'a str,
    iat: i64,
    exp: i64,
}

/// The audience of a route's assertion: the configured one, else the route's host, else (on a
/// `*` route) the request's normalised host.
pub fn audience<'a>(route: &'a Route, assertion: &'a RouteAssertion, host: &'a str) -> &'a str {
    match &assertion.audience {
        Some(aud) => aud,
        None if route.host != "*" => &route.host,
        None => host,
    }
}

/// The assertion of `identity` on `route` for a request to `host`.
pub fn value(
    state: &State,
    route: &Route,
    assertion: &RouteAssertion,
    identity: &Identity,
    host: &str,
) -> Result<HeaderValue, KeyError> {
    let aud = audience(route, assertion, host);
    let now = now();
    let lifetime = i64::try_from(assertion.lifetime.as_secs()).unwrap_or(300);
    identity.minted.get_or_mint(aud, now, || {
        let exp = now + lifetime;
        let jwt = state.keys.sign(
            ASSERTION_TYP,
            &Claims {
                iss: &state.issuer,
                aud,
                sub: &identity.subject,
                email: &identity.email,
                name: &identity.name,
                groups: &identity.groups,
                roles: &identity.roles,
                tenant: &identity.tenant,
                iat: now,
                exp,
            },
        )?;
        let value = HeaderValue::from_str(&jwt).map_err(|e| KeyError::Sign(e.to_string()))?;
        // Reused while more than half its lifetime is left: what an upstream receives is
        // always valid for a while yet.
        Ok((value, exp - lifetime / 2))
    })
}
