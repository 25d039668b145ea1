//! "Forgot password": a single-use link, mailed to the account's address, that sets a new
//! password and signs nobody in.
//!
//! - The link's secret is random (`secrets::random_token`); the store keeps only its hash.
//! - Asking answers the same whether or not the address has an account: the lookup, the link
//!   and the mail happen in the background, after the same throttles for everyone (the
//!   per-address sign-in rate, and the per-account and per-address mail throttle of the
//!   emailed codes, counted for unknown addresses too).
//! - A link works in its tenant only, once, until `accounts.reset_link_ttl`; its host is the
//!   host it was asked on, which the router has checked is one of frontdoor's own (never a
//!   `Host` an attacker chose).
//! - Using it stores the new password, drops the user's other unused reset links and ends
//!   every session of the user (with back-channel logout). Forgotten sign-in failures stay
//!   counted: a reset is not a way around a ban.

use std::net::IpAddr;

use url::Url;

use crate::clock::now;
use crate::error::Error;
use crate::mail_templates::MailTemplate;
use crate::secrets::{hash_secret, random_token};
use crate::state::State;
use crate::store::{AccountToken, AccountTokenKind, Consumed, StoreError, User};

/// The path of the page a link opens (its secret in the `token` query parameter).
pub const RESET_PATH: &str = "/_frontdoor/password/reset";

/// The words for any link that cannot be used, whatever the reason: unknown, used, expired,
/// replaced or for another tenant all read the same.
const NOT_USABLE: &str = "This link cannot be used: it was used already, it expired, or a newer one replaced it. Ask for a new one.";

/// Asks for a reset link for `email` in `tenant`, from `client_ip`, on `host` (a host of
/// frontdoor's own, checked by the router). Answers before anything is looked up; an error
/// only for the throttles, which everyone meets alike.
pub async fn request(
    state: &State,
    tenant: &str,
    email: &str,
    host: &str,
    client_ip: Option<IpAddr>,
) -> Result<(), Error> {
    let allowed = state
        .regulation
        .code_mail_allowed(&*state.store, tenant, email, client_ip)
        .await?;
    if !allowed {
        tracing::info!(tenant, "password reset mail throttled");
        return Ok(());
    }
    let job = Job {
        store: state.store.clone(),
        mailer: state.mailer.clone(),
        org: state.config.organization.clone(),
        ttl: super::secs(state.config.accounts.reset_link_ttl.0),
        link: super::link(&state.config, Some(host), tenant, RESET_PATH),
        tenant: tenant.to_string(),
        email: email.to_string(),
    };
    tokio::spawn(async move {
        if let Err(e) = job.run().await {
            tracing::error!(error = %e, "could not send a password reset link");
        }
    });
    Ok(())
}

/// What the background part of a request needs.
struct Job {
    store: crate::store::DynStore,
    mailer: std::sync::Arc<crate::mail::Mailer>,
    org: String,
    ttl: i64,
    link: Url,
    tenant: String,
    email: String,
}

impl Job {
    async fn run(self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(user) = self
            .store
            .find_user_by_email(&self.tenant, &self.email)
            .await?
            .filter(|u| u.active)
        else {
            tracing::info!(tenant = %self.tenant, "password reset asked for no active account");
            return Ok(());
        };
        let link = issue_link(&self.store, &user, self.ttl, self.link).await?;
        let values = serde_json::json!({
            "org": self.org, "name": user.name, "email": user.email,
            "link": link.as_str(), "minutes": (self.ttl + 59) / 60,
        });
        self.mailer
            .send_template(&user.email, MailTemplate::PasswordReset, &values)
            .await?;
        tracing::info!(user = %user.id, "password reset link sent");
        Ok(())
    }
}

/// Stores a new reset of `user`, valid for `ttl` seconds; its link is `page` with the secret.
async fn issue_link(
    store: &crate::store::DynStore,
    user: &User,
    ttl: i64,
    mut page: Url,
) -> Result<Url, StoreError> {
    let secret = random_token();
    let at = now();
    store
        .create_account_token(&AccountToken {
            token_hash: hash_secret(&secret),
            id: uuid::Uuid::new_v4().to_string(),
            kind: AccountTokenKind::Reset,
            tenant: user.tenant.clone(),
            email: user.email.clone(),
            user_id: Some(user.id.clone()),
            groups: Vec::new(),
            roles: Vec::new(),
            created_by: None,
            created_at: at,
            expires_at: at + ttl,
            used: false,
        })
        .await?;
    page.query_pairs_mut().append_pair("token", &secret);
    Ok(page)
}

/// A reset link for `user`, not mailed: for an operator to hand over (`frontdoor users
/// reset-link`).
pub async fn issue(state: &State, user: &User, host: Option<&str>) -> Result<Url, Error> {
    let ttl = super::secs(state.config.accounts.reset_link_ttl.0);
    let page = super::link(&state.config, host, &user.tenant, RESET_PATH);
    Ok(issue_link(&state.store, user, ttl, page).await?)
}

/// Sets `user`'s password to `new` (after the rules), drops their unused reset links and ends
/// every session of theirs; returns how many sessions ended.
pub async fn set_password(state: &State, mut user: User, new: &str) -> Result<usize, Error> {
    super::password::check_new(new, new)?;
    user.password_hash = Some(super::password::hash(new.to_string()).await?);
    if !state.store.update_user(&user).await? {
        return Err(Error::NotFound("no such user".into()));
    }
    state
        .store
        .drop_account_tokens(&user.id, AccountTokenKind::Reset)
        .await?;
    super::end_sessions(state, &user.id, None).await
}

/// The reset a link stands for, when it can still be used in `tenant` (without using it).
pub async fn find(state: &State, tenant: &str, secret: &str) -> Result<AccountToken, Error> {
    let token = state.store.get_account_token(&hash_secret(secret)).await?;
    token
        .filter(|t| !t.used && fits(t, tenant, now()))
        .ok_or_else(|| Error::Invalid(NOT_USABLE.into()))
}

/// Sets a new password with the link `secret` in `tenant`: the link is spent (once, whoever
/// comes first), the user's other reset links dropped and every session of theirs ended.
/// Signs nobody in.
pub async fn redeem(
    state: &State,
    tenant: &str,
    secret: &str,
    new: &str,
    repeated: &str,
) -> Result<User, Error> {
    // Checked before the link is spent, so that a typo does not cost the link.
    find(state, tenant, secret).await?;
    super::password::check_new(new, repeated)?;
    let token = match state
        .store
        .spend_account_token(&hash_secret(secret))
        .await?
    {
        Consumed::Fresh(t) if fits(&t, tenant, now()) => t,
        _ => return Err(Error::Invalid(NOT_USABLE.into())),
    };
    let user_id = token.user_id.as_deref().unwrap_or_default();
    let user = state
        .store
        .get_user(user_id)
        .await?
        .filter(|u| u.active && u.tenant == token.tenant)
        .ok_or_else(|| Error::Invalid(NOT_USABLE.into()))?;
    let ended = set_password(state, user.clone(), new).await?;
    tracing::info!(user = %user.id, sessions_ended = ended, "password reset");
    Ok(user)
}

/// Whether a stored link is a reset of `tenant` that has not expired (used or not).
fn fits(t: &AccountToken, tenant: &str, now: i64) -> bool {
    t.fits(AccountTokenKind::Reset, tenant, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kind: AccountTokenKind, tenant: &str, expires_at: i64) -> AccountToken {
        AccountToken {
            token_hash: "h".into(),
            id: "i".into(),
            kind,
            tenant: tenant.into(),
            email: "a@example.com".into(),
            user_id: Some("u".into()),
            groups: Vec::new(),
            roles: Vec::new(),
            created_by: None,
            created_at: 0,
            expires_at,
            used: false,
        }
    }

    #[test]
    fn a_link_fits_its_tenant_before_it_expires() {
        assert!(fits(
            &token(AccountTokenKind::Reset, "acme", 100),
            "acme",
            99
        ));
        assert!(!fits(
            &token(AccountTokenKind::Reset, "acme", 100),
            "acme",
            100
        ));
        assert!(!fits(
            &token(AccountTokenKind::Reset, "acme", 100),
            "other",
            50
        ));
        assert!(!fits(
            &token(AccountTokenKind::Invite, "acme", 100),
            "acme",
            50
        ));
    }
}
