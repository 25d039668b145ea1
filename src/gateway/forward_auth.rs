//! `GET /_frontdoor/auth`: forward-auth for people who keep their nginx (`auth_request`),
//! Traefik (`ForwardAuth`) or Caddy (`forward_auth`). The same routes, credentials and policy
//! as the inline proxy decide; the answer is 2xx with the identity headers, 401 or 403.

use url::Url;

use super::decide::{Decision, Facts, Verdict, decide, no_route, unauthenticated};
use super::login;
use super::path::canonical;
use crate::config::HeaderField;
use crate::endpoint::{ApiError, Reply, Request};
use crate::state::State;

/// The original request, as the proxy in front describes it.
struct Original {
    method: http::Method,
    host: String,
    authority: String,
    path: String,
    path_and_query: String,
    /// Traefik and Caddy style (`X-Forwarded-Uri`): they pass a redirect on to the browser;
    /// nginx's `auth_request` only understands 2xx, 401 and 403.
    passes_redirects: bool,
}

fn original(req: &Request) -> Result<Original, ApiError> {
    let h = |name: &str| req.header(name).map(str::trim).filter(|v| !v.is_empty());
    let method = h("x-original-method")
        .or_else(|| h("x-forwarded-method"))
        .unwrap_or("GET")
        .parse::<http::Method>()
        .map_err(|_| ApiError::bad_request("X-Original-Method is not a method"))?;
    let (authority, path_and_query, passes_redirects) = if let Some(url) = h("x-original-url") {
        let u = Url::parse(url)
            .map_err(|_| ApiError::bad_request("X-Original-URL is not an absolute URL"))?;
        if u.host_str().is_none() {
            return Err(ApiError::bad_request("X-Original-URL has no host"));
        }
        // `Url` drops a scheme's default port; user information is refused by `host::parse`.
        let authority = u.authority().to_string();
        let pq = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        (authority, pq, false)
    } else {
        let host = h("x-forwarded-host").ok_or_else(|| {
            ApiError::bad_request("send X-Original-URL, or X-Forwarded-Host and X-Forwarded-Uri")
        })?;
        (
            host.to_string(),
            h("x-forwarded-uri").unwrap_or("/").to_string(),
            true,
        )
    };
    let raw_path = path_and_query.split(['?', '#']).next().unwrap_or("/");
    let path = canonical(raw_path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The same host rules as the inline proxy: a host it would refuse is refused here.
    let host = super::host::parse(&authority).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let authority = host.authority();
    let host = host.name;
    Ok(Original {
        method,
        host,
        authority,
        path,
        path_and_query,
        passes_redirects,
    })
}

/// `GET /_frontdoor/auth`.
pub async fn check(state: &State, req: &Request) -> Reply {
    // The forwarded headers say which request to judge: believed only from trusted proxies.
    if !req
        .peer_ip
        .is_some_and(|ip| state.gateway.trusted.contains(ip))
    {
        return ApiError::forbidden("forward-auth answers trusted proxies only (trusted_proxies)")
            .into_reply();
    }
    let o = match original(req) {
        Ok(o) => o,
        Err(e) => return e.into_reply(),
    };
    // The peer is a trusted proxy: the client is found in `X-Forwarded-For` as the inline
    // proxy finds it.
    let client = req.peer_ip.map(|peer| {
        state
            .gateway
            .trusted
            .client_ip(peer, req.header("x-forwarded-for"))
    });
    let facts = Facts {
        method: &o.method,
        headers: &req.headers,
        host: &o.host,
        path: &o.path,
        client,
    };
    let (route, verdict) = match decide(state, &facts).await {
        Decision::NoRoute => return ApiError::from(no_route()).into_reply(),
        Decision::Route(route, verdict) => (route, verdict),
    };
    match verdict {
        Verdict::Allow(identity) => {
            let mut reply = with_identity(&route, identity.as_deref());
            // The proxy in front copies it upstream like the identity headers.
            if let (Some(a), Some(identity)) = (&route.assertion, identity.as_deref()) {
                match super::assertion::value(state, &route, a, identity, &o.host) {
                    Ok(v) => reply.headers.push((a.header.name().clone(), v)),
                    Err(e) => return ApiError::from(crate::error::Error::from(e)).into_reply(),
                }
            }
            reply
        }
        Verdict::SignIn | Verdict::StepUp if o.passes_redirects => {
            let original_host = Request {
                host: o.host.clone(),
                authority: o.authority.clone(),
                ..req.clone()
            };
            if matches!(verdict, Verdict::StepUp) {
                login::step_up(state, &original_host, &o.path_and_query)
            } else {
                login::start(state, &original_host, &o.path_and_query)
            }
        }
        // nginx's `auth_request` turns anything but 2xx, 401 and 403 into a 500: a browser
        // there is challenged like an API client, and nginx's `error_page 401` sends it on.
        Verdict::SignIn => ApiError::from(unauthenticated()).into_reply(),
        Verdict::StepUp => ApiError::from(super::decide::two_factors_needed()).into_reply(),
        Verdict::Refuse(e) => ApiError::from(e).into_reply(),
    }
}

/// 200 with every identity header, empty where there is no value: proxies that copy named
/// headers (Caddy's `copy_headers`) would otherwise leave their own placeholder text.
fn with_identity(route: &super::routes::Route, identity: Option<&crate::auth::Identity>) -> Reply {
    let mut reply = Reply::new(http::StatusCode::OK, "text/plain; charset=utf-8", "").no_store();
    for field in HeaderField::ALL {
        let Some(name) = &route.header_names[field as usize] else {
            continue;
        };
        let value = identity
            .and_then(|i| i.header_value(field))
            .cloned()
            .unwrap_or_else(|| http::HeaderValue::from_static(""));
        reply.headers.push((name.name().clone(), value));
    }
    reply
}
