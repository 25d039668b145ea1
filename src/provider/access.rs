//! Verifying access tokens where they are used: userinfo, introspection, proxied routes.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::clock::now;
use crate::keys::{JwtError, LEEWAY};
use crate::state::State;
use crate::store::{Consumed, Grant, RefreshToken, StoreError, Successor};
use crate::tokens::{ACCESS_TOKEN_TYP, APP_GRANT_PREFIX, AccessClaims, OWN_CLIENT_ID};

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Malformed, forged, wrong type or audience.
    #[error("invalid token")]
    Invalid,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued for another audience (resource).
    #[error("token not meant for this audience")]
    WrongAudience,
    /// Its grant was revoked or its app deactivated.
    #[error("token revoked")]
    Revoked,
    /// The store could not be asked.
    #[error("store unavailable")]
    Unavailable,
}

/// Verifies signature, type, issuer, expiry, the audience when given, and that the grant
/// still stands.
///
/// A token whose signature checked out is remembered (by its SHA-256) for
/// `session.cache_ttl`: an RSA verification costs more than the rest of an introspection.
/// Expiry, issuer, audience and the grant's standing are checked again on every call, so a
/// remembered token is refused exactly when a freshly verified one would be.
pub async fn verify(
    state: &State,
    token: &str,
    audience: Option<&str>,
) -> Result<Arc<AccessClaims>, AccessError> {
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let claims = match state.verified_access.get(&key) {
        Some(c) => {
            if c.exp + LEEWAY < now() {
                return Err(AccessError::Expired);
            }
            if c.iss != state.issuer || audience.is_some_and(|a| a != c.aud) {
                return Err(AccessError::WrongAudience);
            }
            c
        }
        None => {
            let claims: AccessClaims = state
                .keys
                .verify(token, ACCESS_TOKEN_TYP, &state.issuer, audience)
                .map_err(|e| match e {
                    JwtError::Expired => AccessError::Expired,
                    JwtError::WrongAudience => AccessError::WrongAudience,
                    _ => AccessError::Invalid,
                })?;
            let claims = Arc::new(claims);
            state.verified_access.insert(key, claims.clone());
            claims
        }
    };
    match grant_active(state, &claims.gid, &claims.client_id).await {
        Ok(true) => Ok(claims),
        Ok(false) => Err(AccessError::Revoked),
        Err(_) => Err(AccessError::Unavailable),
    }
}

/// Whether a grant is unrevoked and its app active; cached for the configured bound.
pub async fn grant_active(state: &State, gid: &str, client_id: &str) -> Result<bool, StoreError> {
    if let Some(ok) = state.grant_status.get(gid) {
        return Ok(ok);
    }
    if let Some(app_id) = gid.strip_prefix(APP_GRANT_PREFIX) {
        // client_credentials tokens stand as long as their app is active.
        let ok = app_id == client_id
            && state
                .store
                .get_app(client_id)
                .await?
                .is_some_and(|a| a.active);
        state.grant_status.insert(gid.to_string(), ok);
        return Ok(ok);
    }
    let ok = match state.store.get_grant(gid).await? {
        // frontdoor's own grants (gateway, login API) have no app to check.
        Some(g) if !g.revoked && g.client_id == client_id && client_id == OWN_CLIENT_ID => true,
        Some(g) if !g.revoked && g.client_id == client_id => {
            match state.store.get_app(client_id).await? {
                Some(app) => app.active,
                None => false,
            }
        }
        _ => false,
    };
    state.grant_status.insert(gid.to_string(), ok);
    Ok(ok)
}

/// Revokes a grant in the store and forgets its cached status.
pub async fn revoke_grant(state: &State, gid: &str) -> Result<(), StoreError> {
    state.store.revoke_grant(gid).await?;
    state.forget_grant(gid);
    Ok(())
}

/// A grant that was not revoked when last read, from the cache or the store.
async fn live_grant(state: &State, gid: &str) -> Result<Option<Arc<Grant>>, StoreError> {
    if let Some(g) = state.grants.get(gid) {
        return Ok(Some(g));
    }
    match state.store.get_grant(gid).await? {
        Some(g) if !g.revoked => {
            let g = Arc::new(g);
            state.grants.insert(gid.to_string(), g.clone());
            Ok(Some(g))
        }
        _ => Ok(None),
    }
}

/// Why a refresh token could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemError {
    /// Unknown token.
    Unknown,
    /// Used before: its whole grant is now revoked.
    Reused,
    /// Issued to another client (it is spent all the same).
    OtherClient,
    /// Past its expiry.
    Expired,
    /// Its grant was revoked.
    Revoked,
}

/// Redeems a refresh token for `client_id`: single use (rotation), and a reused token revokes
/// its family. Shared by the token endpoint and the login API so both follow one rule.
/// `successor`, when the used token accepts it, is stored in the same commit that spends it.
pub async fn redeem_refresh_token(
    state: &State,
    presented: &str,
    client_id: &str,
    successor: Option<Successor>,
) -> Result<Result<(RefreshToken, Arc<Grant>), RedeemError>, StoreError> {
    let record = match state
        .store
        .rotate_refresh_token(&crate::secrets::hash_secret(presented), successor)
        .await?
    {
        Consumed::Fresh(r) => r,
        Consumed::Replayed(r) => {
            if r.client_id == client_id {
                revoke_grant(state, &r.grant_id).await?;
                tracing::warn!(client_id, "refresh token reused; its grant is revoked");
                return Ok(Err(RedeemError::Reused));
            }
            return Ok(Err(RedeemError::Unknown));
        }
        Consumed::Missing => return Ok(Err(RedeemError::Unknown)),
    };
    if record.client_id != client_id {
        return Ok(Err(RedeemError::OtherClient));
    }
    if record.expires_at <= crate::clock::now() {
        return Ok(Err(RedeemError::Expired));
    }
    match live_grant(state, &record.grant_id).await? {
        Some(g) => Ok(Ok((record, g))),
        None => Ok(Err(RedeemError::Revoked)),
    }
}
