//! Passwords: the rules a new one must meet, hashing it off the proxy's workers, and the
//! change of one's own password (which asks the current one and ends the other sessions).

use crate::error::Error;
use crate::session::ActiveSession;
use crate::state::State;

/// The fewest characters a password may have (as `frontdoor users add` has always asked).
pub const MIN_CHARS: usize = 8;
/// The most bytes: Argon2 hashes anything, but nobody's password is longer, and a huge one
/// would only cost the server.
pub const MAX_BYTES: usize = 1024;

/// Checks a new password and its repetition against the rules.
pub fn check_new(new: &str, repeated: &str) -> Result<(), Error> {
    if new.chars().count() < MIN_CHARS {
        return Err(Error::InvalidField(format!(
            "The new password must have at least {MIN_CHARS} characters."
        )));
    }
    if new.len() > MAX_BYTES {
        return Err(Error::InvalidField(format!(
            "The new password must have at most {MAX_BYTES} bytes."
        )));
    }
    if new != repeated {
        return Err(Error::InvalidField(
            "The two new passwords are not the same.".into(),
        ));
    }
    Ok(())
}

/// The Argon2id hash of a password, computed on the blocking pool.
pub async fn hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || crate::secrets::hash_password(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            Error::internal()
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            Error::internal()
        })
}

/// What a password change asks.
pub struct Change<'a> {
    /// The password the user has now.
    pub current: &'a str,
    /// The new one.
    pub new: &'a str,
    /// The new one again.
    pub repeated: &'a str,
}

/// Changes the password of the signed-in user of `session` (whose raw id is `raw_id`): the
/// current password is checked within the sign-in regulation (a wrong one counts as a failed
/// sign-in), then the new hash is stored, every other session of the user is ended, and this
/// one gets a new id. Returns that id, for the cookie.
pub async fn change(
    state: &State,
    req: &crate::endpoint::Request,
    raw_id: &str,
    session: &ActiveSession,
    change: Change<'_>,
) -> Result<String, Error> {
    check_new(change.new, change.repeated)?;
    let identity = &session.identity;
    let checked = crate::api::login::check_password(
        state,
        req,
        &identity.tenant,
        &identity.email,
        change.current.to_string(),
        "password_change",
    )
    .await;
    let mut user = match checked {
        Ok(first) if first.user.id == identity.subject => first.user,
        Ok(_) | Err(Error::Unauthenticated { .. }) => {
            return Err(Error::unauthenticated(
                "invalid_credentials",
                "Your current password is not right.",
            ));
        }
        Err(e) => return Err(e),
    };
    user.password_hash = Some(hash(change.new.to_string()).await?);
    if !state.store.update_user(&user).await? {
        return Err(Error::NotFound("Your account no longer exists.".into()));
    }
    let ended = super::end_sessions(state, &user.id, Some(raw_id)).await?;
    let rotated = state.sessions.rekey(raw_id).await?.ok_or_else(|| {
        Error::unauthenticated(
            "unauthenticated",
            "Your session ended meanwhile. Sign in again.",
        )
    })?;
    tracing::info!(user = %user.id, other_sessions_ended = ended, "password changed");
    Ok(rotated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_follow_the_rules() {
        assert!(check_new("longenough", "longenough").is_ok());
        assert!(
            check_new("ünïcödé!", "ünïcödé!").is_ok(),
            "characters, not bytes"
        );
        for (new, repeated) in [("short", "short"), ("longenough", "longenougH")] {
            let e = check_new(new, repeated).unwrap_err();
            assert_eq!(e.code(), "invalid_field", "{new}/{repeated}");
        }
        let huge = "x".repeat(MAX_BYTES + 1);
        assert!(check_new(&huge, &huge).is_err());
    }
}
