//! frontdoor's own endpoints: one table of method and path to handler, for the OAuth 2.0 /
//! OpenID Connect provider, the JSON APIs, the sign-in and settings pages, forward-auth and
//! upstream sign-in. The proxy asks `own_path` which requests are frontdoor's (the host model)
//! and hands them to `handle`.

use http::Method;

use crate::accounts::{invite, reset};
use crate::api;
use crate::config::{Config, OWN_HOST_PATHS, OWN_PREFIX};
use crate::endpoint::{Reply, Request, json, oauth};
use crate::error::Error;
use crate::provider::{authorize, discovery, introspect, logout, token, userinfo};
use crate::state::State;
use crate::web::{invitation, password, sign_in};

/// What frontdoor answers under the reserved prefix on a host that only routes to an app: the
/// end of its sign-in round trip, signing out, forward-auth and the assets of its pages.
/// Everything else it has (the provider, the APIs, the sign-in and settings pages) lives on
/// its own hosts.
const ON_APP_HOSTS: [&str; 4] = ["callback", "logout", "auth", "static/"];

/// The host model: whether a request is frontdoor's own, and then its path in the form the
/// endpoint table knows (`/_frontdoor/…` for one under `reserved_prefix`). `host` is the
/// normalised host of `gateway::host`, `path` the canonical path of `gateway::path`.
///
/// On frontdoor's own hosts (`public_url`'s and the tenants') it keeps every path it has
/// always kept and the reserved prefix; on any other host only the reserved prefix, so an
/// app's `/api/v1/…`, `/oauth/…` and `/.well-known/…` reach the app.
pub fn own_path(config: &Config, host: &str, path: &str) -> Option<String> {
    if let Some(own) = config.reserved_prefix.to_own(path) {
        return Some(own);
    }
    if config.is_own_host(host) && is_own_host_path(path) {
        return Some(path.to_string());
    }
    None
}

/// Whether a path is one frontdoor keeps on its own hosts.
fn is_own_host_path(path: &str) -> bool {
    OWN_HOST_PATHS.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p)
        } else {
            path == *p
        }
    })
}

/// Whether an endpoint (in the table's `/_frontdoor/…` form) answers on a host that only
/// routes to an app.
pub fn serves_app_hosts(path: &str) -> bool {
    path.strip_prefix(OWN_PREFIX).is_some_and(|rest| {
        ON_APP_HOSTS
            .iter()
            .any(|e| rest == *e || e.ends_with('/') && rest.starts_with(e))
    })
}

/// Answers a request to one of frontdoor's own endpoints.
pub async fn handle(state: &State, req: &Request) -> Reply {
    let m = &req.method;
    if !serves_app_hosts(&req.path) && !state.config.is_own_host(&req.host) {
        return json(Err(Error::NotFound(format!(
            "{} is on frontdoor's own host, not on {}",
            req.path, req.host
        ))));
    }
    if let Some(reply) = rate_limited(state, req) {
        return reply;
    }
    if let Some(reply) = api::manage::handle(state, req).await {
        return reply;
    }
    if let Some(reply) = crate::web::two_factor::handle(state, req).await {
        return reply;
    }
    if let Some(reply) = api::users::handle(state, req).await {
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
        "/_frontdoor/login/second-factor" if m == Method::POST => {
            sign_in::second_factor_submit(state, req).await
        }
        password::FORGOT_PATH if is_get(m) => password::forgot_page(state, req),
        password::FORGOT_PATH if m == Method::POST => password::forgot_submit(state, req).await,
        reset::RESET_PATH if is_get(m) => password::reset_page(state, req).await,
        reset::RESET_PATH if m == Method::POST => password::reset_submit(state, req).await,
        invite::INVITE_PATH if is_get(m) => invitation::page(state, req).await,
        invite::INVITE_PATH if m == Method::POST => invitation::submit(state, req).await,
        "/_frontdoor/callback" if is_get(m) => crate::gateway::login::callback(state, req).await,
        "/_frontdoor/logout" if is_get(m) || m == Method::POST => {
            logout::frontdoor_logout(state, req).await
        }
        "/_frontdoor/static/style.css" if is_get(m) => crate::web::style(),
        "/_frontdoor/static/settings.js" if is_get(m) => crate::web::settings_script(),
        "/_frontdoor/static/passkeys.js" if is_get(m) => crate::web::passkeys_script(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: &str) -> Config {
        Config::from_yaml(&format!(
            "listen: 127.0.0.1:8080\n\
             admin_listen: 127.0.0.1:9090\n\
             public_url: https://sso.example.com/\n\
             reserved_prefix: {prefix}\n\
             tenants: [{{ id: acme, hosts: [acme.example.com] }}]\n\
             routes:\n\
             - {{ host: wiki.example.com, path_prefix: /, upstream: 'http://127.0.0.1:1' }}\n"
        ))
        .expect("valid config")
    }

    #[test]
    fn own_hosts_keep_every_own_path_app_hosts_only_the_prefix() {
        let c = config("/_frontdoor/");
        let own = |host: &str, path: &str| own_path(&c, host, path);
        for host in ["sso.example.com", "acme.example.com"] {
            for path in [
                "/oauth/token",
                "/.well-known/openid-configuration",
                "/api/v1/login-check",
                "/_frontdoor/login",
                "/oauth2-token",
            ] {
                assert_eq!(own(host, path).as_deref(), Some(path), "{host}{path}");
            }
            assert_eq!(own(host, "/oauth2-tokens"), None);
            assert_eq!(own(host, "/wiki"), None);
        }
        for path in [
            "/oauth/token",
            "/.well-known/x",
            "/api/v1/issues",
            "/oauth2-token",
        ] {
            assert_eq!(own("wiki.example.com", path), None, "{path}");
            assert_eq!(own("anything.example", path), None, "{path}");
        }
        assert_eq!(
            own("wiki.example.com", "/_frontdoor/callback").as_deref(),
            Some("/_frontdoor/callback")
        );
    }

    #[test]
    fn a_non_default_prefix_is_read_as_the_endpoint_table_knows_it() {
        let c = config("/_sso/");
        let own = |host: &str, path: &str| own_path(&c, host, path);
        assert_eq!(
            own("wiki.example.com", "/_sso/callback").as_deref(),
            Some("/_frontdoor/callback")
        );
        assert_eq!(own("wiki.example.com", "/_frontdoor/callback"), None);
        assert_eq!(
            own("sso.example.com", "/_frontdoor/login").as_deref(),
            Some("/_frontdoor/login")
        );
        assert_eq!(
            own("sso.example.com", "/_sso/login").as_deref(),
            Some("/_frontdoor/login")
        );
    }

    #[test]
    fn app_hosts_get_only_what_they_need_of_the_prefix() {
        for path in [
            "/_frontdoor/callback",
            "/_frontdoor/logout",
            "/_frontdoor/auth",
            "/_frontdoor/static/style.css",
        ] {
            assert!(serves_app_hosts(path), "{path}");
        }
        for path in [
            "/_frontdoor/login",
            "/_frontdoor/settings",
            "/_frontdoor/admin",
            "/_frontdoor/callbackx",
            "/_frontdoor/idp/corp/start",
            "/oauth/token",
        ] {
            assert!(!serves_app_hosts(path), "{path}");
        }
    }

    #[test]
    fn own_hosts_are_compared_normalised() {
        let c = config("/_frontdoor/");
        assert!(c.is_own_host("sso.example.com"));
        assert!(c.is_own_host("ACME.example.com."));
        assert!(!c.is_own_host("wiki.example.com"));
        assert!(!c.is_own_host("sso.example.com.evil"));
        let v6 = Config::from_yaml(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://[::1]:8080/\n",
        )
        .expect("valid config");
        assert!(v6.is_own_host("::1"));
    }

    #[test]
    fn check_config_names_the_paths_kept_on_an_own_host_route() {
        let c = Config::from_yaml(
            "listen: 127.0.0.1:8080\n\
             admin_listen: 127.0.0.1:9090\n\
             public_url: https://sso.example.com/\n\
             reserved_prefix: /_sso/\n\
             routes:\n\
             - { host: wiki.example.com, path_prefix: /, upstream: 'http://127.0.0.1:1' }\n\
             - { host: SSO.example.com, path_prefix: /api/, upstream: 'http://127.0.0.1:1' }\n\
             - { host: '*', path_prefix: /docs, upstream: 'http://127.0.0.1:1' }\n\
             - { host: '*', path_prefix: /oa, upstream: 'http://127.0.0.1:1' }\n",
        )
        .expect("valid config");
        assert_eq!(
            c.kept_paths(),
            [
                "routes[1] (path_prefix `/api/`): on `SSO.example.com`, one of frontdoor's own hosts, frontdoor keeps /api/v1/"
            ]
        );
    }
}
