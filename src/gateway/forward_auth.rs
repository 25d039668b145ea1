//! `GET /_frontdoor/auth`: forward-auth for people who keep their nginx (`auth_request`),
//! Traefik (`ForwardAuth`) or Caddy (`forward_auth`). The same routes, credentials and policy
//! as the inline proxy decide; the answer is 2xx with the identity headers, 401 or 403.

use url::Url;

use super::login;
use super::path::canonical;
use crate::auth::credentials;
use crate::config::{HeaderField, Policy};
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
        let authority = match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => return Err(ApiError::bad_request("X-Original-URL has no host")),
        };
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
    if !req.peer_ip.is_some_and(|ip| state.trusted.contains(ip)) {
        return ApiError::forbidden("forward-auth answers trusted proxies only (trusted_proxies)")
            .into_reply();
    }
    let o = match original(req) {
        Ok(o) => o,
        Err(e) => return e.into_reply(),
    };
    let Some(route) = state.routes.find(&o.host, &o.path).cloned() else {
        return ApiError::not_found("no route for this host and path").into_reply();
    };
    if route.policy == Policy::Public {
        return with_identity(&route, None);
    }
    let presented = credentials::presented(&req.headers, state.sessions.cookie_name());
    let identity = match credentials::resolve(
        state,
        presented,
        &req.headers,
        &o.host,
        &o.path,
        &route,
    )
    .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            crate::metrics::auth_decision("none", "challenge");
            if o.passes_redirects && super::policy::is_browser_navigation(&o.method, &req.headers) {
                let original_host = Request {
                    host: o.host.clone(),
                    authority: o.authority.clone(),
                    ..req.clone()
                };
                return login::start(state, &original_host, &o.path_and_query);
            }
            return ApiError::unauthorized("unauthenticated", "authentication required")
                .into_reply();
        }
        Err((kind, e)) => {
            super::policy::count_refusal(kind, &e);
            return e.into_reply();
        }
    };
    if let Err(e) = super::policy::allow(&identity, &route, &o.method, &req.headers) {
        return e.into_reply();
    }
    // The proxy in front copies these headers to the app: the same bound as when frontdoor
    // proxies itself.
    if let Err(e) = super::headers::check_identity_size(
        &route,
        &identity,
        state.config.max_identity_header_bytes,
    ) {
        tracing::warn!(user = %identity.user, error = %e, "forward-auth refused: identity header too large");
        return ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "identity_too_large",
            "the identity is too large to pass on",
        )
        .into_reply();
    }
    with_identity(&route, Some(&identity))
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
        reply.headers.push((name.clone(), value));
    }
    reply
}
