//! Second factors: TOTP authenticator apps (`totp`), their secrets sealed at rest (`seal`),
//! recovery codes (`recovery`) and passkeys (`passkey`); the checks the sign-in, step-up and enrolment pages share,
//! and how a session's `amr` says what was proved.

pub mod passkey;
pub mod recovery;
pub mod seal;
pub mod totp;

use crate::error::Error;
use crate::keys::Keys;
use crate::store::Store;

/// `amr` (RFC 8176) of a password.
pub const PWD: &str = "pwd";
/// `amr` of a one-time code: an emailed code, a TOTP or a recovery code.
pub const OTP: &str = "otp";
/// `amr` of more than one factor.
pub const MFA: &str = "mfa";

/// The `acr` of a session with one factor.
pub const ACR_1FA: &str = "urn:frontdoor:acr:1fa";
/// The `acr` of a session with two factors.
pub const ACR_2FA: &str = "urn:frontdoor:acr:2fa";

/// Whether an `amr` (space-separated) proves two factors.
pub fn is_two_factor(amr: &str) -> bool {
    amr.split(' ').any(|m| m == MFA)
}

/// The `acr` of an `amr`.
pub fn acr(amr: &str) -> &'static str {
    if is_two_factor(amr) { ACR_2FA } else { ACR_1FA }
}

/// The `amr` once a second factor is added to `first`: its methods, `otp`, and `mfa`.
pub fn with_second(first: &str) -> String {
    with_second_method(first, OTP)
}

/// The `amr` once a second factor of `method` (`otp`, `swk`) is added to `first`.
pub fn with_second_method(first: &str, method: &str) -> String {
    let mut methods: Vec<&str> = first.split(' ').filter(|m| !m.is_empty()).collect();
    for m in [method, MFA] {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    methods.join(" ")
}

/// Whether the user has a second factor (a confirmed authenticator app or a passkey).
pub async fn enrolled(store: &dyn Store, user_id: &str) -> Result<bool, Error> {
    Ok(totp_enrolled(store, user_id).await? || !store.list_passkeys(user_id).await?.is_empty())
}

/// Whether the user has a confirmed authenticator app.
pub async fn totp_enrolled(store: &dyn Store, user_id: &str) -> Result<bool, Error> {
    Ok(store.get_totp(user_id).await?.is_some_and(|t| t.confirmed))
}

/// Checks a second factor typed by the user: a TOTP code (of a confirmed app, a step after the
/// last one accepted) or an unused recovery code, spent by this call. `false` for anything
/// else, without saying which.
pub async fn check(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    typed: &str,
    now: i64,
) -> Result<bool, Error> {
    let typed = typed.trim();
    if totp::looks_like_code(typed) {
        return check_totp(store, keys, user_id, typed, now, true).await;
    }
    let code = recovery::normalize(typed);
    if code.is_empty() || code.len() > 64 {
        return Ok(false);
    }
    Ok(store
        .use_recovery_code(user_id, &recovery::hash(keys, user_id, &code))
        .await?)
}

/// Checks a TOTP code of the user's app (`confirmed`: only of a confirmed one; else the
/// enrolment's first code, which confirms it). A step is accepted once.
pub async fn check_totp(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
    code: &str,
    now: i64,
    confirmed: bool,
) -> Result<bool, Error> {
    let Some(factor) = store.get_totp(user_id).await? else {
        return Ok(false);
    };
    if factor.confirmed != confirmed {
        return Ok(false);
    }
    let secret = seal::open(keys, user_id, &factor.secret_sealed).map_err(|e| {
        tracing::error!(user = %user_id, error = %e, "a TOTP secret does not open");
        Error::internal()
    })?;
    let Some(step) = totp::matched_step(&secret, code, now) else {
        return Ok(false);
    };
    Ok(store.accept_totp_step(user_id, step).await?)
}

/// A new set of recovery codes for the user, replacing the old ones; the codes to show once.
pub async fn new_recovery_codes(
    store: &dyn Store,
    keys: &Keys,
    user_id: &str,
) -> Result<Vec<String>, Error> {
    let codes = recovery::generate();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| recovery::hash(keys, user_id, c))
        .collect();
    store.replace_recovery_codes(user_id, &hashes).await?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_levels() {
        assert_eq!(with_second("pwd"), "pwd otp mfa");
        assert_eq!(with_second("otp"), "otp mfa");
        assert_eq!(with_second_method("pwd", passkey::SWK), "pwd swk mfa");
        assert_eq!(with_second(""), "otp mfa");
        assert!(is_two_factor("pwd otp mfa"));
        assert!(!is_two_factor("pwd"));
        assert!(!is_two_factor("pwd mfax"));
        assert_eq!(acr("pwd"), ACR_1FA);
        assert_eq!(acr("otp mfa"), ACR_2FA);
    }
}
