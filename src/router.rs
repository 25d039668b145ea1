//! frontdoor's own endpoints: one table of method and path to handler, for the OAuth 2.0 /
//! OpenID Connect provider, the JSON APIs, the sign-in and settings pages, forward-auth and
//! upstream sign-in. The proxy asks `is_own_path` and hands such requests to `handle`.

use http::Method;

use crate::api;
use crate::endpoint::{Reply, Request, json, oauth};
use crate::error::Error;
use crate::provider::{authorize, discovery, introspect, logout, token, userinfo};
use crate::state::State;
use crate::web::sign_in;

/// Whether a path belongs to frontdoor itself rather than to a proxied route.
pub fn is_own_path(path: &str) -> bool {
    path.starts_with("/oauth/")
        || path.starts_with("/.well-known/")
        || path.starts_with("/api/v1/")
        || path.starts_with("/_frontdoor/")
        || path == "/oauth2-token"
}

/// Answers a request to one of frontdoor's own endpoints.
pub async fn handle(state: &State, req: &Request) -> Reply {
    let m = &req.method;
    if let Some(reply) = rate_limited(state, req) {
        return reply;
    }
    if let Some(reply) = api::manage::handle(state, req).await {
        return reply;
    }
    if let Some(reply) = crate::web::settings::handle(state, req).await {
        return reply;
    }
    match req.path.as_str() {
        "/.well-known/openid-configuration" if is_get(m) => discovery::openid_configuration(state),
        "/.well-known/oauth-authorization-server" if is_get(m) => discovery::oauth_metadata(state),
        "/oauth/jwks" if is_get(m) => discovery::jwks(state),
        "/oauth/docs" if is_get(m) => crate::web::pages::render(
            http::StatusCode::OK,
            &crate::web::pages::DocsPage {
                org: state.org(),
                issuer: &state.issuer,
                code_ttl: state.config.tokens.code_ttl.0.as_secs(),
                access_ttl: state.config.tokens.access_token_ttl.0.as_secs(),
            },
        ),
        "/oauth/authorize" if is_get(m) || m == Method::POST => {
            authorize::authorize(state, req).await
        }
        "/oauth/token" | "/oauth2-token" => token::token(state, req).await,
        "/oauth/userinfo" if is_get(m) || m == Method::POST => userinfo::userinfo(state, req).await,
        "/oauth/introspect" => introspect::introspect(state, req).await,
        "/oauth/revoke" => introspect::revoke(state, req).await,
        "/oauth/logout" if is_get(m) || m == Method::POST => logout::rp_logout(state, req).await,
        "/api/v1/login-check" => api::login::login_check(state, req).await,
        "/api/v1/token/refresh" => api::login::refresh(state, req).await,
        "/api/v1/request-login-otp" => api::login::request_otp(state, req).await,
        "/api/v1/verify-login-otp" => api::login::verify_otp(state, req).await,
        "/_frontdoor/login" if is_get(m) => sign_in::login_page(state, req),
        "/_frontdoor/login" if m == Method::POST => sign_in::login_submit(state, req).await,
        "/_frontdoor/login/code" if m == Method::POST => sign_in::code_submit(state, req).await,
        "/_frontdoor/callback" if is_get(m) => crate::gateway::login::callback(state, req).await,
        "/_frontdoor/logout" if is_get(m) || m == Method::POST => {
            logout::frontdoor_logout(state, req).await
        }
        "/_frontdoor/static/style.css" if is_get(m) => crate::web::style(),
        "/_frontdoor/static/settings.js" if is_get(m) => crate::web::settings_script(),
        "/_frontdoor/auth" if is_get(m) => crate::gateway::forward_auth::check(state, req).await,
        p if p.starts_with("/_frontdoor/idp/") => idp_endpoint(state, req, m).await,
        _ => no_endpoint(req),
    }
}

/// The per-address rate limits of the token endpoints and the sign-in API (the login forms
/// check theirs themselves, to answer with the page): 429 with `Retry-After` past them, in the
/// OAuth shape on the token endpoint and in the envelope on the JSON API.
fn rate_limited(state: &State, req: &Request) -> Option<Reply> {
    let regulation = &state.regulation;
    let (limit, kind, is_oauth) = match req.path.as_str() {
        "/oauth/token" | "/oauth2-token" => (&regulation.token_rate, "token", true),
        "/api/v1/token/refresh" => (&regulation.token_rate, "token", false),
        "/api/v1/login-check" | "/api/v1/request-login-otp" | "/api/v1/verify-login-otp" => {
            (&regulation.login_rate, "login", false)
        }
        _ => return None,
    };
    let wait = limit.check(req.client_ip)?;
    crate::metrics::rate_limited(kind);
    let refused: Result<Reply, Error> = Err(Error::TooMany {
        code: "too_many_requests",
        message: "too many requests from this address; slow down".into(),
        retry_after: wait,
    });
    Some(if is_oauth {
        oauth(refused)
    } else {
        json(refused)
    })
}

fn no_endpoint(req: &Request) -> Reply {
    json(Err(Error::NotFound(format!(
        "no endpoint {} {}",
        req.method, req.path
    ))))
}

/// `/_frontdoor/idp/<id>/{start,callback,backchannel-logout}`.
async fn idp_endpoint(state: &State, req: &Request, m: &Method) -> Reply {
    let rest = req.path.trim_start_matches("/_frontdoor/idp/");
    match rest.split_once('/') {
        Some((id, "start")) if is_get(m) => crate::federation::login::start(state, req, id),
        Some((id, "callback")) if is_get(m) => {
            crate::federation::login::callback(state, req, id).await
        }
        Some((id, "backchannel-logout")) if m == Method::POST => {
            crate::federation::backchannel::backchannel_logout(state, req, id).await
        }
        _ => no_endpoint(req),
    }
}

fn is_get(m: &Method) -> bool {
    m == Method::GET || m == Method::HEAD
}
