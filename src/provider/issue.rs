//! Minting tokens: RFC 9068 access tokens, OIDC ID tokens, rotated refresh tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::scopes;
use crate::clock::now;
use crate::error::Error;
use crate::secrets::time_ordered_token;
use crate::state::State;
use crate::store::{App, RefreshToken, User};
use crate::tokens::{ACCESS_TOKEN_TYP, AccessClaims, ID_TOKEN_TYP};

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    /// How the user authenticated (RFC 8176), and the level it reaches.
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'static str>,
    /// The frontdoor session the grant was made in (Back-Channel Logout 1.0 §2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
}

/// What one grant of a user's authorization issues.
pub struct UserGrant<'a> {
    /// The client.
    pub app: &'a App,
    /// The access token's audience (see `token::audience`).
    pub audience: &'a str,
    /// The user.
    pub user: &'a User,
    /// Grant family id.
    pub grant_id: &'a str,
    /// Scopes of this access token, space-separated.
    pub scope: &'a str,
    /// Scopes of the grant, which a new refresh token keeps (RFC 6749 §6), space-separated.
    pub refresh_scope: &'a str,
    /// OIDC nonce of the authorization request.
    pub nonce: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How (RFC 8176 `amr`, space-separated), when known: the ID token then carries `amr`
    /// and `acr`.
    pub amr: Option<&'a str>,
    /// The public identifier of the session the grant was made in, for the ID token.
    pub sid: Option<&'a str>,
    /// A refresh token already stored (rotated in the commit that spent its predecessor), to
    /// hand out instead of storing a new one.
    pub rotated_refresh: Option<&'a str>,
}

/// A successful token response (RFC 6749 §5.1), serialized as it is built.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// Space-separated; absent when empty on a `client_credentials` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Mints an access token.
pub fn access_token(state: &State, claims: &AccessClaims) -> Result<String, Error> {
    Ok(state.keys.sign(ACCESS_TOKEN_TYP, claims)?)
}

/// The token response of an authorization_code or refresh_token grant.
pub async fn user_tokens(state: &State, g: &UserGrant<'_>) -> Result<TokenResponse, Error> {
    let now = now();
    let ttl = state.config.tokens.access_token_ttl.0.as_secs() as i64;
    let access = access_token(
        state,
        &AccessClaims {
            iss: state.issuer.clone(),
            sub: g.user.id.clone(),
            aud: g.audience.to_string(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: crate::tokens::new_jti(),
            client_id: g.app.client_id.clone(),
            scope: g.scope.to_string(),
            gid: g.grant_id.to_string(),
            tnt: g.user.tenant.clone(),
            auth_time: Some(g.auth_time),
        },
    )?;
    let mut body = TokenResponse {
        id_token: None,
        refresh_token: None,
        scope: Some(g.scope.to_string()),
        expires_in: ttl,
        token_type: "Bearer",
        access_token: String::new(),
    };
    if scopes::contains(g.scope, "openid") {
        let has = |s| scopes::contains(g.scope, s);
        let id = IdClaims {
            iss: &state.issuer,
            sub: &g.user.id,
            aud: &g.app.client_id,
            azp: &g.app.client_id,
            exp: now + ttl,
            iat: now,
            auth_time: g.auth_time,
            at_hash: at_hash(&access),
            nonce: g.nonce,
            amr: g
                .amr
                .filter(|a| !a.is_empty())
                .map(|a| a.split(' ').collect()),
            acr: g.amr.map(crate::factors::acr),
            sid: g.sid,
            name: has("profile").then_some(g.user.name.as_str()),
            picture: if has("profile") {
                g.user.picture.as_deref()
            } else {
                None
            },
            email: has("email").then_some(g.user.email.as_str()),
            email_verified: has("email").then_some(true),
            groups: has("groups").then_some(g.user.groups.as_slice()),
            roles: has("roles").then_some(g.user.roles.as_slice()),
        };
        body.id_token = Some(state.keys.sign(ID_TOKEN_TYP, &id)?);
    }
    body.access_token = access;
    if let Some(refresh) = g.rotated_refresh {
        body.refresh_token = Some(refresh.to_string());
    } else if scopes::contains(g.refresh_scope, "offline_access")
        && g.app.grant_types.iter().any(|t| t == "refresh_token")
    {
        let (refresh, token_hash) = time_ordered_token();
        state
            .store
            .create_refresh_token(&RefreshToken {
                token_hash,
                grant_id: g.grant_id.to_string(),
                client_id: g.app.client_id.clone(),
                user_id: g.user.id.clone(),
                scope: g.refresh_scope.to_string(),
                expires_at: now + state.config.tokens.refresh_token_ttl.0.as_secs() as i64,
                auth_time: g.auth_time,
            })
            .await?;
        body.refresh_token = Some(refresh);
    }
    Ok(body)
}

/// OIDC `at_hash`: base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}
