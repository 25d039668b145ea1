//! `POST /oauth/token` (alias `/oauth2-token`): client authentication and the grants.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;

use super::access::{RedeemError, Redeemed, RedeemedCode};
use super::issue::{self, TokenResponse, UserGrant};
use super::scopes;
use crate::clock::now;
use crate::endpoint::{OAuthError, Reply, Request, oauth};
use crate::error::Error;
use crate::secrets::{time_ordered_token, verify_secret};
use crate::state::State;
use crate::store::{App, Successor};

/// `POST /oauth/token`.
pub async fn token(state: &State, req: &Request) -> Reply {
    oauth(
        run(state, req)
            .await
            .map(|body| Reply::json(StatusCode::OK, &body)),
    )
}

/// Reads a form body with unique parameters.
pub fn read_form(req: &Request) -> Result<HashMap<String, String>, OAuthError> {
    if req.method != http::Method::POST {
        return Err(OAuthError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            ..OAuthError::invalid_request("use POST")
        });
    }
    if !req.is_form() {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    super::unique_params(req.form_pairs()).map_err(OAuthError::invalid_request)
}

async fn run(state: &State, req: &Request) -> Result<TokenResponse, OAuthError> {
    let form = read_form(req)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?
        .clone();
    if !state.keys.can_sign() {
        return Err(Error::Unavailable(crate::keys::KEYS_MISSING_MESSAGE.into()).into());
    }
    let app = authenticate_client(state, req, &form).await?;
    let allowed = |g: &str| app.grant_types.iter().any(|t| t == g);
    match grant_type.as_str() {
        "authorization_code" if allowed("authorization_code") => {
            authorization_code(state, &app, &form).await
        }
        "refresh_token" if allowed("refresh_token") => refresh_token(state, &app, &form).await,
        "client_credentials" if allowed("client_credentials") => {
            client_credentials(state, &app, &form)
        }
        "authorization_code" | "refresh_token" | "client_credentials" => Err(OAuthError::new(
            "unauthorized_client",
            format!("this application may not use the {grant_type} grant"),
        )),
        other => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
    }
}

/// Authenticates the client: `client_secret_basic`, `client_secret_post`, or a public client
/// identified by `client_id` alone. Exactly one method may be used.
pub async fn authenticate_client(
    state: &State,
    req: &Request,
    form: &HashMap<String, String>,
) -> Result<Arc<App>, OAuthError> {
    let basic = basic_credentials(req)?;
    let post_secret = form.get("client_secret");
    let (client_id, secret) = match (basic, form.get("client_id")) {
        (Some(_), _) if post_secret.is_some() => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, s)), Some(form_id)) if *form_id != id => {
            let _ = s;
            return Err(OAuthError::invalid_request(
                "client_id does not match the Authorization header",
            ));
        }
        (Some((id, s)), _) => (id, Some(s)),
        (None, Some(id)) => (id.clone(), post_secret.cloned()),
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "client authentication is missing",
            ));
        }
    };
    let app = state
        .grants
        .app(&client_id)
        .await?
        .filter(|a| a.active)
        .ok_or_else(|| OAuthError::invalid_client("unknown or inactive client"))?;
    match (&app.secret_hash, secret) {
        (Some(hash), Some(s)) if verify_secret(&s, hash) => Ok(app),
        (Some(_), _) => Err(OAuthError::invalid_client("client authentication failed")),
        (None, None) => Ok(app),
        (None, Some(_)) => Err(OAuthError::invalid_client("public clients have no secret")),
    }
}

/// The client id and secret of an `Authorization: Basic` header, when the request has one.
pub fn basic_credentials(req: &Request) -> Result<Option<(String, String)>, OAuthError> {
    match req.header(http::header::AUTHORIZATION) {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
            parse_basic(&h[6..]).map(Some)
        }
        _ => Ok(None),
    }
}

/// RFC 6749 §2.3.1: base64 of `urlencode(id):urlencode(secret)` (the part after `Basic `);
/// public for the fuzz targets.
pub fn parse_basic(b64: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok((decode(id)?, decode(secret)?))
}

async fn authorization_code(
    state: &State,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .or_else(|| form.get("redirect_url"))
        .map(String::as_str);
    let verifier = form.get("code_verifier").map(String::as_str);
    let RedeemedCode {
        code: record,
        grant,
        user,
    } = super::access::redeem_code(state, code, &app.client_id, redirect_uri, verifier)
        .await?
        .map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
    let audience = audience(state, app, form)?;
    let body = issue::user_tokens(
        state,
        &UserGrant {
            app,
            audience: &audience,
            user: &user,
            grant_id: &grant.id,
            scope: &record.scope,
            refresh_scope: &record.scope,
            nonce: record.nonce.as_deref(),
            auth_time: record.auth_time,
            amr: Some(&record.amr),
            sid: grant.sid.as_deref(),
            rotated_refresh: None,
        },
    )
    .await?;
    crate::metrics::token_issued("authorization_code");
    Ok(body)
}

/// The machine-to-machine grant: a token for the app itself, for one of its audiences.
fn client_credentials(
    state: &State,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let user_only = |s: &str| s == "openid" || s == "offline_access";
    let scopes = match form.get("scope").or_else(|| form.get("scopes")) {
        Some(asked) => {
            let asked = scopes::parse(asked);
            if let Some(bad) = asked
                .iter()
                .find(|s| user_only(s) || !app.scopes.contains(s))
            {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("the application was not granted `{bad}`"),
                ));
            }
            asked
        }
        None => app
            .scopes
            .iter()
            .filter(|s| !user_only(s))
            .cloned()
            .collect(),
    };
    let audience = audience(state, app, form)?;
    let now = now();
    let ttl = state.config.tokens.access_token_ttl.0.as_secs() as i64;
    let scope = scopes.join(" ");
    let token = issue::access_token(
        state,
        &crate::tokens::AccessClaims {
            iss: state.issuer.clone(),
            sub: app.client_id.clone(),
            aud: audience,
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: crate::tokens::new_jti(),
            client_id: app.client_id.clone(),
            scope: scope.clone(),
            gid: format!("{}{}", crate::tokens::APP_GRANT_PREFIX, app.client_id),
            tnt: app.tenant.clone(),
            auth_time: None,
        },
    )?;
    crate::metrics::token_issued("client_credentials");
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: (!scope.is_empty()).then_some(scope),
        id_token: None,
        refresh_token: None,
    })
}

/// The audience of an app's access token: RFC 8707 `resource` (or `audience`) picks one of the
/// audiences an administrator granted the app; without one, the app's first granted audience,
/// else its own client id. Never frontdoor's issuer: that audience is for frontdoor's own
/// first-party tokens, which its management API and audience-less routes take, so an app's
/// token never works there.
fn audience(
    state: &State,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let mut granted = app.audiences.iter().filter(|a| **a != state.issuer);
    match form.get("resource").or_else(|| form.get("audience")) {
        Some(r) if granted.any(|a| a == r) => Ok(r.clone()),
        Some(r) => Err(OAuthError::new(
            "invalid_target",
            format!("the application may not get tokens for `{r}`"),
        )),
        None => Ok(granted
            .next()
            .cloned()
            .unwrap_or_else(|| app.client_id.clone())),
    }
}

async fn refresh_token(
    state: &State,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    // The successor is stored in the commit that spends the presented token (one durable
    // write per rotation). It keeps the family's grant, user, full scope and auth_time.
    let (next, next_hash) = time_ordered_token();
    let now = now();
    let refresh_ttl = state.config.tokens.refresh_token_ttl.0.as_secs() as i64;
    let successor = Successor {
        token_hash: next_hash,
        client_id: app.client_id.clone(),
        now,
        expires_at: now + refresh_ttl,
    };
    let Redeemed {
        token: record,
        grant,
        user,
    } = super::access::redeem_refresh_token(state, presented, &app.client_id, Some(successor))
        .await?
        .map_err(|e| {
            OAuthError::invalid_grant(match e {
                RedeemError::Unknown => "unknown refresh token",
                RedeemError::Reused => {
                    "the refresh token was already used; the whole grant is revoked"
                }
                RedeemError::OtherClient => "the refresh token belongs to another client",
                RedeemError::Expired => "the refresh token expired",
                RedeemError::Revoked => "the authorization was revoked",
                RedeemError::UserGone => "the user no longer exists",
            })
        })?;
    let scope = match form.get("scope").or_else(|| form.get("scopes")) {
        Some(s) => {
            let asked = scopes::parse(s);
            if let Some(extra) = asked.iter().find(|a| !scopes::contains(&record.scope, a)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("`{extra}` was not granted"),
                ));
            }
            asked.join(" ")
        }
        None => record.scope.clone(),
    };
    let audience = audience(state, app, form)?;
    // The new refresh token keeps the family's full scope, so narrowing is per access token.
    let body = issue::user_tokens(
        state,
        &UserGrant {
            app,
            audience: &audience,
            user: &user,
            grant_id: &grant.id,
            scope: &scope,
            refresh_scope: &record.scope,
            nonce: None,
            auth_time: record.auth_time,
            // A refresh token does not remember how its session signed in.
            amr: None,
            sid: grant.sid.as_deref(),
            rotated_refresh: Some(&next),
        },
    )
    .await?;
    crate::metrics::token_issued("refresh_token");
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let b = STANDARD.encode("my%20app:s%3Acret");
        assert_eq!(
            parse_basic(&b).expect("ok"),
            ("my app".into(), "s:cret".into())
        );
        assert!(parse_basic("!!!").is_err());
        assert!(parse_basic(&STANDARD.encode("nocolon")).is_err());
    }
}
