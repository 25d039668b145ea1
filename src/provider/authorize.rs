//! `GET|POST /oauth/authorize`: the authorization endpoint, its login hand-off and consent.
//!
//! Until the client and its redirect URI are known to be right, every error is a page and
//! never a redirect (RFC 6749 §4.1.2.1); after that, errors go back as `error` + `state`.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use url::Url;

use super::clients::{self, Client};
use super::scopes;
use crate::clock::now;
use crate::endpoint::{OAuthError, Reply, Request};
use crate::error::Error;
use crate::secrets::{hash_secret, is_valid_pkce_challenge, random_token};
use crate::session::ActiveSession;
use crate::state::State;
use crate::store::{AuthCode, Grant};
use crate::web::{csrf, pages};

/// Parameters of an authorization request, aliases resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    client_id: String,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    /// The highest age of the authentication the client accepts, in seconds (OIDC Core §3.1.2.1).
    max_age: Option<String>,
    /// Authentication context classes the client asks for, space-separated: asking for
    /// `urn:frontdoor:acr:2fa` sends a one-factor session to the step-up page first.
    acr_values: Option<String>,
    form: Option<String>,
    /// A request object (OIDC Core §6.1), refused: kept only to say so.
    request: Option<String>,
    /// A request object by reference (§6.2), refused likewise.
    request_uri: Option<String>,
}

/// An authorization request as received: its parameters and the consent form's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The OAuth parameters.
    pub params: Params,
    /// The consent form's `decision`.
    pub decision: Option<String>,
    /// The consent form's CSRF token.
    pub csrf_token: Option<String>,
}

/// Parses the decoded query or form pairs of an authorization request (repeated parameters,
/// disagreeing aliases and a missing `client_id` are refused). The endpoint's parser of network
/// input; public for the fuzz targets.
pub fn parse(raw: Vec<(String, String)>) -> Result<Received, String> {
    let mut map = super::unique_params(raw)?;
    let decision = map.remove("decision");
    let csrf_token = map.remove(csrf::CSRF_FIELD);
    Ok(Received {
        params: Params::from_map(map)?,
        decision,
        csrf_token,
    })
}

impl Params {
    /// The client asking.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The redirect URI asked for, if any.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// The `prompt` values asked for.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    fn from_map(mut m: HashMap<String, String>) -> Result<Params, String> {
        let alias =
            |m: &mut HashMap<String, String>, a: &str, b: &str| -> Result<Option<String>, String> {
                match (m.remove(a), m.remove(b)) {
                    (Some(x), Some(y)) if x != y => Err(format!("`{a}` and `{b}` disagree")),
                    (x, y) => Ok(x.or(y)),
                }
            };
        let redirect_uri = alias(&mut m, "redirect_uri", "redirect_url")?;
        let scope = alias(&mut m, "scope", "scopes")?;
        let client_id = m
            .remove("client_id")
            .filter(|c| !c.is_empty())
            .ok_or("client_id is missing")?;
        Ok(Params {
            client_id,
            redirect_uri,
            scope,
            response_type: m.remove("response_type"),
            state: m.remove("state"),
            nonce: m.remove("nonce"),
            code_challenge: m.remove("code_challenge"),
            code_challenge_method: m.remove("code_challenge_method"),
            prompt: m.remove("prompt"),
            max_age: m.remove("max_age"),
            acr_values: m.remove("acr_values"),
            form: m.remove("form"),
            request: m.remove("request"),
            request_uri: m.remove("request_uri"),
        })
    }

    /// The request as canonical parameters, for the login round trip and the consent form.
    pub fn pairs(&self, redirect_uri: &str, drop_login_prompt: bool) -> Vec<(String, String)> {
        let mut v = vec![
            ("client_id".to_string(), self.client_id.clone()),
            ("redirect_uri".to_string(), redirect_uri.to_string()),
        ];
        let mut push = |k: &str, val: &Option<String>| {
            if let Some(x) = val {
                v.push((k.to_string(), x.clone()));
            }
        };
        push("response_type", &self.response_type);
        push("scope", &self.scope);
        push("state", &self.state);
        push("nonce", &self.nonce);
        push("code_challenge", &self.code_challenge);
        push("code_challenge_method", &self.code_challenge_method);
        push("form", &self.form);
        push("acr_values", &self.acr_values);
        // A fresh sign-in answers `max_age` as it answers `prompt=login`: the request that
        // comes back from it must not send the user to sign in once more.
        if !drop_login_prompt {
            push("max_age", &self.max_age);
        }
        let prompt = if drop_login_prompt {
            self.prompt.as_ref().map(|p| {
                p.split(' ')
                    .filter(|x| *x != "login" && !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        } else {
            self.prompt.clone()
        };
        push("prompt", &prompt.filter(|p| !p.is_empty()));
        v
    }
}

/// Where errors go once the redirect URI is trusted: the redirect rendering of an OAuth error.
struct Back<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl Back<'_> {
    fn with(&self, pairs: &[(&str, &str)]) -> Reply {
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            return Reply::html(StatusCode::BAD_REQUEST, "invalid redirect_uri".into());
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", self.issuer);
        }
        Reply::redirect(url.as_str())
    }

    fn error(&self, e: &OAuthError) -> Reply {
        self.with(&[("error", e.error), ("error_description", &e.description)])
    }
}

/// A request whose client and redirect URI were checked.
struct Trusted {
    received: Received,
    client: Client,
    redirect_uri: String,
}

/// `GET|POST /oauth/authorize`.
pub async fn authorize(state: &State, req: &Request) -> Reply {
    let page = invalid_link(state);
    let trusted = match trust(state, req).await {
        Ok(t) => t,
        Err(e) => return page.render(&e),
    };
    let back = Back {
        redirect_uri: &trusted.redirect_uri,
        state: trusted.received.params.state.as_deref(),
        issuer: &state.issuer,
    };
    answer(state, req, &trusted, &back)
        .await
        .unwrap_or_else(|e| back.error(&e))
}

/// Errors before the redirect URI is trusted are pages, never redirects (RFC 6749 §4.1.2.1).
fn invalid_link(state: &State) -> pages::ErrorPage<'_> {
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title: "This sign-in link is not valid",
        link: None,
    }
}

/// Reads the request and checks its client and redirect URI.
async fn trust(state: &State, req: &Request) -> Result<Trusted, Error> {
    let raw = if req.method == http::Method::POST {
        if !req.is_form() {
            return Err(Error::Invalid("The request was not a form.".into()));
        }
        req.form_pairs()
    } else {
        req.query_pairs()
    };
    let received = parse(raw).map_err(Error::Invalid)?;
    let params = &received.params;
    let client = clients::find_for_authorize(state, req, &params.client_id)
        .await?
        .ok_or_else(|| Error::Invalid("The application is unknown or not active.".into()))?;
    if !matches!(client, Client::Own) && !state.keys.can_sign() {
        return Err(Error::Unavailable(crate::keys::KEYS_MISSING_MESSAGE.into()));
    }
    let redirect_uri = params
        .redirect_uri
        .clone()
        .ok_or_else(|| Error::Invalid("redirect_uri is missing.".into()))?;
    if !clients::redirect_allowed(state, &client, &redirect_uri) {
        return Err(Error::Invalid(
            "The redirect_uri does not match any URI registered for this application.".into(),
        ));
    }
    Ok(Trusted {
        received,
        client,
        redirect_uri,
    })
}

/// The answer to a trusted request; its errors go back to the client.
async fn answer(
    state: &State,
    req: &Request,
    t: &Trusted,
    back: &Back<'_>,
) -> Result<Reply, OAuthError> {
    let (params, client, redirect_uri) = (&t.received.params, &t.client, &t.redirect_uri);
    // A request object could carry parameters other than those checked here (scope, redirect
    // URI, claims); ignoring it silently would let the client believe they applied.
    if params.request.is_some() {
        return Err(OAuthError::new(
            "request_not_supported",
            "request objects are not supported; send the parameters in the query",
        ));
    }
    if params.request_uri.is_some() {
        return Err(OAuthError::new(
            "request_uri_not_supported",
            "request_uri is not supported; send the parameters in the query",
        ));
    }
    if params.response_type.as_deref() != Some("code") {
        return Err(OAuthError::new(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let requested = scopes::parse(params.scope.as_deref().unwrap_or(""));
    if requested.is_empty() {
        return Err(OAuthError::new("invalid_scope", "scope is required"));
    }
    if let Some(bad) = requested.iter().find(|s| !scopes::is_supported(s)) {
        return Err(OAuthError::new(
            "invalid_scope",
            format!("unknown scope `{bad}`"),
        ));
    }
    if let Some(bad) = requested.iter().find(|s| !client.allows_scope(s)) {
        return Err(OAuthError::new(
            "invalid_scope",
            format!("the application may not ask for `{bad}`"),
        ));
    }
    check_pkce(params, client)?;
    let prompts: Vec<&str> = params
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }

    let max_age =
        match params.max_age.as_deref() {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                OAuthError::invalid_request("max_age must be a number of seconds")
            })?),
        };
    let session = state
        .sessions
        .from_headers(&req.headers)
        .await?
        .filter(|(_, s)| s.identity.tenant == state.config.tenant_for_host(&req.host));
    // `max_age=0` is `prompt=login` (OIDC Core §3.1.2.1), however recent the session.
    let fresh_enough =
        |s: &ActiveSession| max_age.is_none_or(|age| age > 0 && now() - s.created_at <= age);
    let Some((_, session)) =
        session.filter(|(_, s)| !prompts.contains(&"login") && fresh_enough(s))
    else {
        if prompts.contains(&"none") {
            return Err(OAuthError::new(
                "login_required",
                "the user is not signed in",
            ));
        }
        let target = format!(
            "/oauth/authorize?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.pairs(redirect_uri, true))
                .finish()
        );
        let login = format!(
            "/_frontdoor/login?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &target)
                .finish()
        );
        return Ok(Reply::redirect(&login));
    };

    if wants_two_factors(params) && !session.identity.two_factor() {
        if prompts.contains(&"none") {
            return Err(OAuthError::new(
                "interaction_required",
                "the session has one factor and the client asked for two",
            ));
        }
        let target = format!(
            "/oauth/authorize?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.pairs(redirect_uri, false))
                .finish()
        );
        return Ok(Reply::redirect(&crate::web::two_factor::step_up_href(
            &target,
        )));
    }

    if !client.skips_consent() {
        let user_id = &session.identity.subject;
        match t.received.decision.as_deref() {
            Some(d) => {
                if req.method != http::Method::POST
                    || !csrf::verify(req, &state.keys, t.received.csrf_token.as_deref())
                {
                    return Ok(invalid_link(state).render(&Error::Forbidden(
                        "The form expired or did not come from this site. Go back and try again."
                            .into(),
                    )));
                }
                if d != "approve" {
                    return Err(OAuthError::new("access_denied", "the user declined"));
                }
                state
                    .store
                    .save_consent(user_id, client.id(), &requested)
                    .await?;
            }
            None => {
                let granted = state.store.get_consent(user_id, client.id()).await?;
                let covered = requested.iter().all(|s| granted.contains(s));
                if !covered || prompts.contains(&"consent") {
                    if prompts.contains(&"none") {
                        return Err(OAuthError::new(
                            "consent_required",
                            "the user has not approved this application",
                        ));
                    }
                    return Ok(consent_page(
                        state,
                        req,
                        client,
                        &session,
                        &requested,
                        params.pairs(redirect_uri, true),
                    ));
                }
            }
        }
    }

    let code = issue_code(state, client, &session, redirect_uri, &requested, params).await?;
    Ok(back.with(&[("code", &code)]))
}

/// Whether the client asked for two factors (`acr_values` naming frontdoor's 2fa class).
fn wants_two_factors(params: &Params) -> bool {
    params
        .acr_values
        .as_deref()
        .is_some_and(|v| v.split(' ').any(|a| a == crate::factors::ACR_2FA))
}

/// PKCE: S256 only; required unless the client may skip it.
fn check_pkce(params: &Params, client: &Client) -> Result<(), OAuthError> {
    let refuse = |m: &str| Err(OAuthError::invalid_request(m));
    match (
        &params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) if is_valid_pkce_challenge(c) => Ok(()),
        (Some(_), Some("S256")) => refuse("code_challenge is not a valid S256 challenge"),
        (Some(_), Some("plain")) | (Some(_), None) => {
            refuse("code_challenge_method must be S256; plain is not supported")
        }
        (Some(_), Some(_)) => refuse("code_challenge_method must be S256"),
        (None, Some(_)) => refuse("code_challenge_method without code_challenge"),
        (None, None) if client.requires_pkce() => {
            refuse("PKCE is required: send code_challenge with code_challenge_method=S256")
        }
        (None, None) => Ok(()),
    }
}

fn consent_page(
    state: &State,
    req: &Request,
    client: &Client,
    session: &ActiveSession,
    requested: &[String],
    params: Vec<(String, String)>,
) -> Reply {
    let form = csrf::issue(req, &state.keys, state.secure_cookies());
    let description = match client {
        Client::App(a) => a.description.as_str(),
        Client::Own => "",
    };
    let reply = pages::render(
        StatusCode::OK,
        &pages::ConsentPage {
            org: state.org(),
            app_name: client.name(state),
            app_description: description,
            user_email: &session.identity.email,
            scopes: requested
                .iter()
                .filter_map(|s| pages::scope_words(s))
                .collect(),
            csrf_token: &form.token,
            params,
        },
    );
    form.attach(reply)
}

async fn issue_code(
    state: &State,
    client: &Client,
    session: &Arc<ActiveSession>,
    redirect_uri: &str,
    requested: &[String],
    params: &Params,
) -> Result<String, crate::store::StoreError> {
    let code = random_token();
    let now = now();
    let scope = requested.join(" ");
    let grant_id = uuid::Uuid::new_v4().to_string();
    // The grant exists before the exchange, so that a replay racing the first exchange
    // revokes it either way.
    state
        .store
        .create_grant(&Grant {
            id: grant_id.clone(),
            client_id: client.id().to_string(),
            user_id: session.identity.subject.clone(),
            tenant: session.identity.tenant.clone(),
            scope: scope.clone(),
            created_at: now,
            revoked: false,
            sid: Some(session.sid.to_string()),
        })
        .await?;
    state
        .store
        .create_code(&AuthCode {
            code_hash: hash_secret(&code),
            client_id: client.id().to_string(),
            user_id: session.identity.subject.clone(),
            session_id_hash: Some(session.id_hash.to_string()),
            redirect_uri: redirect_uri.to_string(),
            scope,
            nonce: params.nonce.clone(),
            code_challenge: params.code_challenge.clone(),
            auth_time: session.created_at,
            expires_at: now + state.config.tokens.code_ttl.0.as_secs() as i64,
            grant_id,
            amr: session.identity.amr.clone(),
        })
        .await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(raw).expect("parsed").params
    }

    #[test]
    fn the_sign_in_round_trip_keeps_acr_values_and_answers_prompt_login_and_max_age() {
        let p = params(&[
            ("client_id", "app"),
            ("prompt", "login consent"),
            ("max_age", "0"),
            ("acr_values", "urn:frontdoor:acr:2fa"),
        ]);
        assert!(wants_two_factors(&p));
        let back = p.pairs("https://app/cb", true);
        let get = |k: &str| back.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("prompt"), Some("consent"));
        assert_eq!(get("max_age"), None, "the fresh sign-in answered it");
        assert_eq!(get("acr_values"), Some("urn:frontdoor:acr:2fa"));
        let kept = p.pairs("https://app/cb", false);
        assert!(kept.iter().any(|(k, v)| k == "max_age" && v == "0"));
        assert!(!wants_two_factors(&params(&[
            ("client_id", "app"),
            ("acr_values", "urn:frontdoor:acr:1fa"),
        ])));
    }
}
