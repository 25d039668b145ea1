//! Signing out: frontdoor's own `/_frontdoor/logout` and OIDC RP-initiated `/oauth/logout`.
//!
//! Both end the session in the store and the cache, and tell the apps that got tokens in it
//! (`backchannel`, in the background). A logout without proof that the user asked for it (a
//! valid `id_token_hint`) is confirmed by a POST form with a CSRF token.

use http::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::state::State;
use crate::tokens::ID_TOKEN_TYP;
use crate::web::{csrf, pages};

/// `GET|POST /_frontdoor/logout`.
pub async fn frontdoor_logout(state: &State, req: &Request) -> Reply {
    if req.method != http::Method::POST {
        // Posted back under the prefix that answers on this host too (an app host has only it).
        let action = state.config.reserved_prefix.path("logout");
        return confirm(state, req, &action, Vec::new());
    }
    let token = req
        .form_pairs()
        .into_iter()
        .find(|(k, _)| k == csrf::CSRF_FIELD)
        .map(|(_, v)| v);
    if !csrf::verify(req, &state.keys, token.as_deref()) {
        return failed(state).render(&Error::Forbidden(
            "The form expired or did not come from this site. Go back and try again.".into(),
        ));
    }
    let upstream = upstream_logout(state, req).await;
    end_session(state, req).await;
    match upstream {
        // Log out at the upstream identity provider too (RP-initiated logout).
        Some(url) => Reply::redirect(&url).cookie(&state.sessions.removal_cookie()),
        None => signed_out(state),
    }
}

/// The upstream provider's logout URL when this session came from one that advertises it.
async fn upstream_logout(state: &State, req: &Request) -> Option<String> {
    let raw = req
        .cookie(state.sessions.cookie_name())
        .and_then(|v| state.sessions.id_from_cookie_value(&v))?;
    let record = state
        .store
        .get_idp_session(&crate::secrets::hash_secret(&raw))
        .await
        .ok()
        .flatten()?;
    let provider = state.federation.get(&record.idp)?;
    let endpoint = provider.current()?.end_session_endpoint.clone()?;
    let mut url = Url::parse(&endpoint).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("id_token_hint", &record.id_token);
        q.append_pair("client_id", &provider.config.client_id);
        if let Some(after) = &provider.config.post_logout_redirect_uri {
            q.append_pair("post_logout_redirect_uri", after);
        }
    }
    Some(url.to_string())
}

/// How a refused sign-out reads.
fn failed(state: &State) -> pages::ErrorPage<'_> {
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title: "Sign-out failed",
        link: None,
    }
}

/// `GET|POST /oauth/logout`: `id_token_hint`, `post_logout_redirect_uri`, `state`, `client_id`.
pub async fn rp_logout(state: &State, req: &Request) -> Reply {
    rp_logout_checked(state, req)
        .await
        .unwrap_or_else(|e| failed(state).render(&e))
}

async fn rp_logout_checked(state: &State, req: &Request) -> Result<Reply, Error> {
    let pairs = if req.method == http::Method::POST {
        req.form_pairs()
    } else {
        req.query_pairs()
    };
    let mut params = super::unique_params(pairs).map_err(Error::Invalid)?;
    let csrf_token = params.remove(csrf::CSRF_FIELD);
    let hint = params.get("id_token_hint").and_then(|t| {
        state
            .keys
            .verify_ignoring_expiry::<IdHint>(t, ID_TOKEN_TYP, &state.issuer)
            .ok()
    });
    if params.contains_key("id_token_hint") && hint.is_none() {
        return Err(Error::Invalid(
            "The id_token_hint is not a valid ID token of this provider.".into(),
        ));
    }
    let client_id = match (params.get("client_id"), &hint) {
        (Some(c), Some(h)) if *c != h.aud => {
            return Err(Error::Invalid(
                "client_id does not match the id_token_hint.".into(),
            ));
        }
        (Some(c), _) => Some(c.clone()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = match &client_id {
                Some(id) => state
                    .store
                    .get_app(id)
                    .await
                    .ok()
                    .flatten()
                    .filter(|a| a.active),
                None => None,
            };
            match registered {
                Some(app) if app.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                    Some(uri.clone())
                }
                _ => {
                    return Err(Error::Invalid(
                        "post_logout_redirect_uri is not registered for this application.".into(),
                    ));
                }
            }
        }
    };
    let current = state
        .sessions
        .from_headers(&req.headers)
        .await
        .ok()
        .flatten();
    let hinted_user_matches = match (&hint, &current) {
        (Some(h), Some((_, s))) => h.sub == s.identity.subject,
        (Some(_), None) => true,
        _ => false,
    };
    let confirmed =
        req.method == http::Method::POST && csrf::verify(req, &state.keys, csrf_token.as_deref());
    if !hinted_user_matches && !confirmed && current.is_some() {
        let carried: Vec<(String, String)> = params.into_iter().collect();
        return Ok(confirm(state, req, "/oauth/logout", carried));
    }
    end_session(state, req).await;
    Ok(match redirect {
        Some(uri) => {
            let mut url = match Url::parse(&uri) {
                Ok(u) => u,
                Err(_) => return Ok(signed_out(state)),
            };
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            Reply::redirect(url.as_str()).cookie(&state.sessions.removal_cookie())
        }
        None => signed_out(state),
    })
}

#[derive(Deserialize)]
struct IdHint {
    sub: String,
    aud: String,
}

fn confirm(state: &State, req: &Request, action: &str, params: Vec<(String, String)>) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        StatusCode::OK,
        &pages::LogoutPage {
            org: state.org(),
            style: state.style_href(),
            action,
            csrf_token: &form.token,
            params,
        },
    );
    form.attach(reply)
}

async fn end_session(state: &State, req: &Request) {
    let raw = req
        .cookie(state.sessions.cookie_name())
        .and_then(|v| state.sessions.id_from_cookie_value(&v));
    let Some(raw) = raw else { return };
    match state.sessions.end(&raw).await {
        Ok(ended) => {
            if let Some(e) = &ended {
                let how = if req.path.starts_with("/oauth/") {
                    "rp_logout"
                } else {
                    "logout"
                };
                crate::audit::logged_out(req.client_ip, &e.user_id, how);
            }
            super::backchannel::Notifier::of(state).sessions_ended(ended.into_iter().collect())
        }
        Err(e) => tracing::error!(error = %e, "could not end session in the store"),
    }
}

fn signed_out(state: &State) -> Reply {
    pages::render(
        StatusCode::OK,
        &pages::MessagePage {
            org: state.org(),
            style: state.style_href(),
            title: "Signed out",
            message: "You are signed out.",
            link: Some(("/", "Sign in again")),
        },
    )
    .cookie(&state.sessions.removal_cookie())
}
