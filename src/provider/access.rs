//! Redeeming what the token endpoint (and the gateway's own sign-in callback, and the login
//! API) take in exchange for tokens: authorization codes, with PKCE, and refresh tokens.

use std::sync::Arc;

use crate::clock::now;
use crate::secrets::{ct_eq, hash_secret, is_valid_pkce_verifier, pkce_s256};
use crate::state::State;
use crate::store::{AuthCode, Consumed, Grant, RefreshToken, StoreError, Successor, User};

/// Why an authorization code could not be redeemed (RFC 6749 `invalid_grant`; the texts are
/// the token endpoint's `error_description`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefused {
    /// Unknown code.
    #[error("unknown code")]
    Unknown,
    /// Used before: what it issued is revoked.
    #[error("the code was already used; the tokens it issued are revoked")]
    Replayed,
    /// Issued to another client (it is burned all the same).
    #[error("the code was issued to another client")]
    OtherClient,
    /// Past its expiry.
    #[error("the code expired")]
    Expired,
    /// Not the redirect URI of the authorization request.
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    /// The PKCE verifier is wrong or missing (or sent without a challenge).
    #[error("{0}")]
    Pkce(&'static str),
    /// Its grant was revoked meanwhile.
    #[error("the authorization was revoked")]
    Revoked,
    /// Its user was removed or deactivated.
    #[error("the user no longer exists")]
    UserGone,
}

/// What a redeemed code stands for.
pub struct RedeemedCode {
    /// The code's record.
    pub code: AuthCode,
    /// Its grant, not revoked.
    pub grant: Grant,
    /// Its user, active.
    pub user: User,
}

/// Redeems an authorization code for `client_id` at `redirect_uri` with the PKCE `verifier`:
/// single use, and a replay by the same client revokes the grant the code created. The one
/// redemption of the token endpoint and of the gateway's own sign-in callback.
pub async fn redeem_code(
    state: &State,
    code: &str,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<Result<RedeemedCode, CodeRefused>, StoreError> {
    let record = match state.store.consume_code(&hash_secret(code)).await? {
        Consumed::Fresh(c) => c,
        Consumed::Replayed(c) => {
            if c.client_id == client_id {
                state.grants.revoke(&c.grant_id).await?;
                tracing::warn!(
                    client_id,
                    "authorization code replayed; its grant is revoked"
                );
            }
            return Ok(Err(CodeRefused::Replayed));
        }
        Consumed::Missing => return Ok(Err(CodeRefused::Unknown)),
    };
    // From here on the code is burned, whatever goes wrong.
    if record.client_id != client_id {
        return Ok(Err(CodeRefused::OtherClient));
    }
    if record.expires_at <= now() {
        return Ok(Err(CodeRefused::Expired));
    }
    if redirect_uri.is_none_or(|r| !ct_eq(r, &record.redirect_uri)) {
        return Ok(Err(CodeRefused::RedirectMismatch));
    }
    if let Err(why) = check_pkce(record.code_challenge.as_deref(), verifier) {
        return Ok(Err(CodeRefused::Pkce(why)));
    }
    let Some(grant) = state
        .store
        .get_grant(&record.grant_id)
        .await?
        .filter(|g| !g.revoked)
    else {
        return Ok(Err(CodeRefused::Revoked));
    };
    let Some(user) = state
        .store
        .get_user(&record.user_id)
        .await?
        .filter(|u| u.active)
    else {
        return Ok(Err(CodeRefused::UserGone));
    };
    Ok(Ok(RedeemedCode {
        code: record,
        grant,
        user,
    }))
}

/// PKCE (RFC 7636): S256 only; a verifier is required iff a challenge was sent. The error is
/// the reason, for an `error_description`.
pub fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), &'static str> {
    match (challenge, verifier) {
        (Some(c), Some(v)) if is_valid_pkce_verifier(v) && ct_eq(&pkce_s256(v), c) => Ok(()),
        (Some(_), Some(_)) => Err("code_verifier does not match the code_challenge"),
        (Some(_), None) => Err("code_verifier is missing"),
        (None, Some(_)) => {
            Err("code_verifier sent but the authorization request had no code_challenge")
        }
        (None, None) => Ok(()),
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
    /// Its user was deleted or deactivated.
    UserGone,
}

/// A redeemed refresh token: the spent record, its grant and its (active) user.
#[derive(Debug)]
pub struct Redeemed {
    pub token: RefreshToken,
    pub grant: Arc<Grant>,
    pub user: User,
}

/// Redeems a refresh token for `client_id`: single use (rotation), and a reused token revokes
/// its family. Shared by the token endpoint and the login API so both follow one rule.
/// `successor`, when the used token accepts it, is stored in the same commit that spends it.
pub async fn redeem_refresh_token(
    state: &State,
    presented: &str,
    client_id: &str,
    successor: Option<Successor>,
) -> Result<Result<Redeemed, RedeemError>, StoreError> {
    let rotated = state
        .store
        .rotate_refresh_token(&crate::secrets::time_ordered_key(presented), successor)
        .await?;
    let record = match rotated.token {
        Consumed::Fresh(r) => r,
        Consumed::Replayed(r) => {
            if r.client_id == client_id {
                state.grants.revoke(&r.grant_id).await?;
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
    let Some(grant) = state.grants.live(&record.grant_id).await? else {
        return Ok(Err(RedeemError::Revoked));
    };
    match rotated.user.filter(|u| u.active) {
        Some(user) => Ok(Ok(Redeemed {
            token: record,
            grant,
            user,
        })),
        None => Ok(Err(RedeemError::UserGone)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rules() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = pkce_s256(v);
        assert!(check_pkce(Some(&c), Some(v)).is_ok());
        assert!(check_pkce(Some(&c), Some("x".repeat(43).as_str())).is_err());
        assert!(check_pkce(Some(&c), None).is_err());
        assert!(check_pkce(None, Some(v)).is_err());
        assert!(check_pkce(None, None).is_ok());
        // A verifier equal to the challenge (what `plain` would accept) fails.
        assert!(check_pkce(Some(&c), Some(&c)).is_err());
    }
}
