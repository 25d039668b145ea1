//! The gateway's one decision — which route a request is for, who is calling, and whether they
//! may — taken alike for a request frontdoor proxies itself and for one a proxy in front
//! describes to forward-auth. Both callers only translate the verdict into their answer, so the
//! two modes cannot drift apart in what they allow, refuse or count.

use std::sync::Arc;

use http::{HeaderMap, Method};

use super::routes::Route;
use crate::auth::{Identity, credentials};
use crate::config::Policy;
use crate::error::Error;
use crate::state::State;

/// What is known of the request to judge, each value already normalised and checked: the
/// host by `gateway::host`, the path by `gateway::path`.
pub struct Facts<'a> {
    /// The method the application will see.
    pub method: &'a Method,
    /// The headers carrying the credential (and the browser's navigation hints).
    pub headers: &'a HeaderMap,
    /// Host without port, lowercased.
    pub host: &'a str,
    /// Canonical path.
    pub path: &'a str,
}

/// The decision.
pub enum Decision {
    /// No route serves this host and path: answered with `no_route()`.
    NoRoute,
    /// The route that serves the request (metrics label the request by it) and its verdict.
    Route(Arc<Route>, Verdict),
}

/// What to do with the request.
pub enum Verdict {
    /// Pass it on: with the caller's identity, or none on a public route.
    Allow(Option<Arc<Identity>>),
    /// No credential, and a browser navigated here: send it to sign in.
    SignIn,
    /// Answer with this error.
    Refuse(Error),
}

/// Decides on a request, counting the decision in the metrics.
pub async fn decide(state: &State, facts: &Facts<'_>) -> Decision {
    let Some(route) = state.gateway.routes.find(facts.host, facts.path).cloned() else {
        return Decision::NoRoute;
    };
    let verdict = judge(state, facts, &route).await;
    Decision::Route(route, verdict)
}

/// The answer to a request without a credential that is not sent to sign in.
pub fn unauthenticated() -> Error {
    Error::unauthenticated("unauthenticated", "authentication required")
}

/// The answer when no route serves the request.
pub fn no_route() -> Error {
    Error::NotFound("no route for this host and path".into())
}

async fn judge(state: &State, facts: &Facts<'_>, route: &Route) -> Verdict {
    if route.policy == Policy::Public {
        return Verdict::Allow(None);
    }
    let presented = credentials::presented(facts.headers, state.sessions.cookie_name());
    let resolved = credentials::resolve(
        state,
        presented,
        facts.headers,
        facts.host,
        facts.path,
        route,
    )
    .await;
    let identity = match resolved {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            crate::metrics::auth_decision("none", "challenge");
            return if super::policy::is_browser_navigation(facts.method, facts.headers) {
                Verdict::SignIn
            } else {
                Verdict::Refuse(unauthenticated())
            };
        }
        Err((kind, e)) => {
            super::policy::count_refusal(kind, &e);
            return Verdict::Refuse(e);
        }
    };
    if let Err(e) = super::policy::allow(&identity, route, facts.method, facts.headers) {
        return Verdict::Refuse(e);
    }
    // Checked before anything is sent on: the identity headers go upstream, or to the proxy
    // in front that copies them upstream.
    if let Err(e) = super::headers::check_identity_size(
        route,
        &identity,
        state.config.max_identity_header_bytes,
    ) {
        tracing::warn!(user = %identity.user, error = %e, "request refused: identity header too large");
        return Verdict::Refuse(Error::IdentityTooLarge);
    }
    Verdict::Allow(Some(identity))
}
