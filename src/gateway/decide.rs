//! The gateway's one decision — which route a request is for, who is calling, and whether they
//! may — taken alike for a request frontdoor proxies itself and for one a proxy in front
//! describes to forward-auth. Both callers only translate the verdict into their answer, so the
//! two modes cannot drift apart in what they allow, refuse or count.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};

use super::routes::Route;
use super::rules::{Caller, Match, RulePolicy, Target, Who, first_match};
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
    /// The client's address: `X-Forwarded-For`'s only when the peer is a trusted proxy.
    pub client: Option<IpAddr>,
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
    /// A one-factor session navigated to a route that needs two: send it to step up (the
    /// sign-in round trip asking for two factors).
    StepUp,
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

/// The answer to a caller with one factor where two are needed (no browser to step up).
pub fn two_factors_needed() -> Error {
    Error::Forbidden(
        "this needs a session signed in with two factors; sign in again in a browser".into(),
    )
}

/// The answer when no route serves the request.
pub fn no_route() -> Error {
    Error::NotFound("no route for this host and path".into())
}

/// What a route says of a request once the caller is known, before the caller's identity is
/// checked against the header bound.
pub enum Ruling {
    /// Pass with the caller's identity.
    Allow,
    /// Pass without asking for a credential (a public route, a `bypass` rule).
    Bypass,
    /// A credential is needed and none was sent.
    Challenge,
    /// Two factors are needed and the caller proved one: a session may step up.
    StepUp,
    /// Refused: the metrics outcome and the answer.
    Refuse(&'static str, Error),
}

/// The rule that decides (`None` for a route without rules) and what it says, for a caller
/// already known (verified, or `None` for no credential); `frontdoor explain` prints it.
pub fn judged(
    route: &Route,
    facts: &Facts<'_>,
    identity: Option<&Identity>,
) -> (Option<Match>, Ruling) {
    let matched = (!route.rules.is_empty()).then(|| {
        let caller = match identity {
            Some(id) => Caller::Known(who(id)),
            None => Caller::Anonymous,
        };
        first_match(&route.rules, &target(facts), &caller)
    });
    (matched, ruling(route, matched, facts, identity))
}

fn target<'a>(facts: &Facts<'a>) -> Target<'a> {
    Target {
        method: facts.method,
        path: facts.path,
        client: facts.client,
    }
}

fn who(id: &Identity) -> Who<'_> {
    Who {
        user: &id.user,
        email: &id.email,
        groups: &id.groups,
        roles: &id.roles,
    }
}

fn ruling(
    route: &Route,
    matched: Option<Match>,
    facts: &Facts<'_>,
    identity: Option<&Identity>,
) -> Ruling {
    let index = match matched {
        // Without rules, the route's policy, groups and roles, as before rules existed.
        None => {
            return match identity {
                _ if route.policy == Policy::Public => Ruling::Bypass,
                None => Ruling::Challenge,
                Some(id) => match super::policy::check(id, route, facts.method, facts.headers) {
                    Ok(()) => Ruling::Allow,
                    Err((outcome, e)) => Ruling::Refuse(outcome, e),
                },
            };
        }
        Some(Match::Nothing) => {
            return Ruling::Refuse(
                "no_rule",
                Error::Forbidden("no access rule allows this request".into()),
            );
        }
        // Only when the caller was not looked at: never asked with a known caller.
        Some(Match::NeedsCaller) => return Ruling::Challenge,
        Some(Match::Rule(i)) => i,
    };
    let Some(rule) = route.rules.get(index) else {
        return Ruling::Challenge;
    };
    // A rule about users, groups or roles can only be decided once the caller signs in.
    if rule.about_caller() && identity.is_none() {
        return Ruling::Challenge;
    }
    match (rule.policy, identity) {
        (RulePolicy::Deny, _) => Ruling::Refuse(
            "denied",
            Error::Forbidden("an access rule denies this request".into()),
        ),
        (RulePolicy::Bypass, _) => Ruling::Bypass,
        (_, None) => Ruling::Challenge,
        (RulePolicy::TwoFactor, Some(id)) if !id.two_factor() => Ruling::StepUp,
        (RulePolicy::ReadWrite, Some(id)) if id.access == crate::auth::Access::ReadOnly => {
            Ruling::Refuse(
                "read_only",
                Error::Forbidden("this needs a read-write credential".into()),
            )
        }
        (_, Some(id))
            if id.access == crate::auth::Access::ReadOnly
                && super::policy::writes(facts.method, facts.headers) =>
        {
            let (outcome, e) = super::policy::read_only();
            Ruling::Refuse(outcome, e)
        }
        (_, Some(_)) => Ruling::Allow,
    }
}

async fn judge(state: &State, facts: &Facts<'_>, route: &Route) -> Verdict {
    // Rules that need no credential decide without touching the store; a route without rules
    // costs what it did before them (no matching, no allocation).
    let first = (!route.rules.is_empty())
        .then(|| first_match(&route.rules, &target(facts), &Caller::Unresolved));
    let needs_caller = match first {
        None => route.policy != Policy::Public,
        Some(m) => m == Match::NeedsCaller,
    };
    if !needs_caller {
        return verdict(state, facts, route, ruling(route, first, facts, None), None);
    }
    let presented = credentials::presented(facts.headers, state.sessions.cookie_name());
    let resolved = credentials::resolve(state, presented, facts.host, facts.path, route).await;
    let identity = match resolved {
        Ok(identity) => identity,
        Err((kind, e)) => {
            super::policy::count_refusal(kind, &e);
            return Verdict::Refuse(e);
        }
    };
    let (_, ruled) = judged(route, facts, identity.as_deref());
    verdict(state, facts, route, ruled, identity)
}

/// Whether the caller is a one-factor session of a tenant whose `second_factor` is
/// `required`: it reaches no route until it steps up (or enrols).
fn tenant_requires_two(state: &State, identity: &Identity) -> bool {
    identity.kind == crate::auth::CredentialKind::Session
        && !identity.two_factor()
        && state.config.second_factor_of(&identity.tenant) == crate::config::SecondFactor::Required
}

/// The verdict of a ruling, counted in the metrics.
fn verdict(
    state: &State,
    facts: &Facts<'_>,
    route: &Route,
    ruled: Ruling,
    identity: Option<Arc<Identity>>,
) -> Verdict {
    let kind = identity.as_ref().map_or("none", |id| id.kind.label());
    match ruled {
        Ruling::Bypass => {
            // A public route was never counted; a `bypass` rule is a decision of its own.
            if !route.rules.is_empty() {
                crate::metrics::auth_decision(kind, "bypass");
            }
            Verdict::Allow(None)
        }
        Ruling::Challenge => {
            crate::metrics::auth_decision(kind, "challenge");
            if super::policy::is_browser_navigation(facts.method, facts.headers) {
                Verdict::SignIn
            } else {
                Verdict::Refuse(unauthenticated())
            }
        }
        Ruling::StepUp => {
            crate::metrics::auth_decision(kind, "step_up");
            let session = identity
                .as_ref()
                .is_some_and(|id| id.kind == crate::auth::CredentialKind::Session);
            if session && super::policy::is_browser_navigation(facts.method, facts.headers) {
                Verdict::StepUp
            } else {
                Verdict::Refuse(two_factors_needed())
            }
        }
        Ruling::Refuse(outcome, e) => {
            crate::metrics::auth_decision(kind, outcome);
            Verdict::Refuse(e)
        }
        Ruling::Allow => {
            let Some(identity) = identity else {
                crate::metrics::auth_decision(kind, "challenge");
                return Verdict::Refuse(unauthenticated());
            };
            if tenant_requires_two(state, &identity) {
                return verdict(state, facts, route, Ruling::StepUp, Some(identity));
            }
            crate::metrics::auth_decision(kind, "allowed");
            // Checked before anything is sent on: the identity headers go upstream, or to the
            // proxy in front that copies them upstream.
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
    }
}
