//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).
//!
//! A client learns about and revokes only its own tokens.

use super::token::{authenticate_client, read_form};
use http::StatusCode;

use crate::endpoint::{OAuthError, Reply, Request, oauth};
use crate::secrets::time_ordered_key;
use crate::state::State;

/// `POST /oauth/introspect`.
pub async fn introspect(state: &State, req: &Request) -> Reply {
    oauth(
        run_introspect(state, req)
            .await
            .map(|body| Reply::json(StatusCode::OK, &body)),
    )
}

async fn run_introspect(state: &State, req: &Request) -> Result<serde_json::Value, OAuthError> {
    let form = read_form(req)?;
    let app = authenticate_client(state, req, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let inactive = serde_json::json!({ "active": false });
    if let Ok(c) = state.grants.verify(token, None).await {
        if c.client_id != app.client_id {
            return Ok(inactive);
        }
        return Ok(serde_json::json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "nbf": c.nbf, "jti": c.jti,
        }));
    }
    let token_hash = time_ordered_key(token);
    if let Some(r) = state.store.get_refresh_token(&token_hash).await? {
        // A rotated-away refresh token is spent: presenting it would revoke its family.
        let live = r.client_id == app.client_id
            && r.expires_at > crate::clock::now()
            && !state.store.refresh_token_used(&token_hash).await?
            && state.grants.active(&r.grant_id, &r.client_id).await?;
        if live {
            return Ok(serde_json::json!({
                "active": true, "token_type": "refresh_token", "scope": r.scope, "client_id": r.client_id,
                "sub": r.user_id, "exp": r.expires_at, "iss": state.issuer,
            }));
        }
    }
    Ok(inactive)
}

/// `POST /oauth/revoke`: revokes the token's whole grant; always 200 for unknown tokens.
pub async fn revoke(state: &State, req: &Request) -> Reply {
    oauth(
        run_revoke(state, req)
            .await
            .map(|()| Reply::json(StatusCode::OK, &serde_json::json!({}))),
    )
}

async fn run_revoke(state: &State, req: &Request) -> Result<(), OAuthError> {
    let form = read_form(req)?;
    let app = authenticate_client(state, req, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    if let Some(r) = state
        .store
        .get_refresh_token(&time_ordered_key(token))
        .await?
    {
        if r.client_id == app.client_id {
            state.grants.revoke(&r.grant_id).await?;
        }
        return Ok(());
    }
    if let Ok(c) = state.grants.verify(token, None).await
        && c.client_id == app.client_id
    {
        state.grants.revoke(&c.gid).await?;
    }
    Ok(())
}
