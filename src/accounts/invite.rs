//! Invitations: an administrator invites an email address into their tenant with groups and
//! roles; the invitee opens the mailed single-use link (`accounts.invite_ttl`, 7 days by
//! default), chooses a name and a password, and the account is created in the invitation's
//! tenant (the link works on that tenant's hosts only). An invitation can be sent again (a
//! new link, the old one dead) or revoked while it is pending.

use crate::clock::now;
use crate::error::Error;
use crate::mail_templates::MailTemplate;
use crate::secrets::{hash_secret, random_token};
use crate::state::State;
use crate::store::{AccountToken, AccountTokenKind, Consumed, StoreError, User};

/// The path of the page an invitation opens (its secret in the `token` query parameter).
pub const INVITE_PATH: &str = "/_frontdoor/invitation";

/// The words for any link that cannot be used (unknown, used, expired, revoked, another
/// tenant's): all read the same.
const NOT_USABLE: &str = "This invitation cannot be used: it was used already, it expired or it was withdrawn. Ask for a new one.";

/// What an administrator asks for.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Who is invited.
    pub email: String,
    /// Groups the account gets.
    pub groups: Vec<String>,
    /// Roles the account gets (`ROLE_USER` when none are given).
    pub roles: Vec<String>,
}

/// Who sends an invitation: their user id (none for the CLI) and the name the mail shows.
#[derive(Debug, Clone, Copy)]
pub struct Inviter<'a> {
    /// User id, kept with the invitation.
    pub id: Option<&'a str>,
    /// Shown in the mail.
    pub name: &'a str,
    /// The host the request came on, for the link (see `accounts::link`).
    pub host: Option<&'a str>,
}

/// Invites `new.email` into `tenant` and mails the link. 409 when the tenant has an account
/// with that address already.
pub async fn create(
    state: &State,
    tenant: &str,
    inviter: Inviter<'_>,
    new: NewInvite,
) -> Result<AccountToken, Error> {
    let email = crate::email::typed(&new.email)
        .map_err(|_| Error::InvalidField("email: not an email address".into()))?;
    let groups = super::users::names("groups", &new.groups)?;
    let mut roles = super::users::names("roles", &new.roles)?;
    if roles.is_empty() {
        roles.push("ROLE_USER".to_string());
    }
    if state
        .store
        .find_user_by_email(tenant, &email)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "{email} has an account in this tenant already"
        )));
    }
    let at = now();
    let token = AccountToken {
        token_hash: String::new(),
        id: uuid::Uuid::new_v4().to_string(),
        kind: AccountTokenKind::Invite,
        tenant: tenant.to_string(),
        email,
        user_id: None,
        groups,
        roles,
        created_by: inviter.id.map(str::to_string),
        created_at: at,
        expires_at: at,
        used: false,
    };
    issue(state, token, inviter).await
}

/// Stores `token` with a fresh secret and lifetime, and mails its link.
async fn issue(
    state: &State,
    mut token: AccountToken,
    inviter: Inviter<'_>,
) -> Result<AccountToken, Error> {
    let secret = random_token();
    let ttl = super::secs(state.config.accounts.invite_ttl.0);
    token.token_hash = hash_secret(&secret);
    token.created_at = now();
    token.expires_at = token.created_at + ttl;
    state.store.create_account_token(&token).await?;
    let mut link = super::link(&state.config, inviter.host, &token.tenant, INVITE_PATH);
    link.query_pairs_mut().append_pair("token", &secret);
    let values = serde_json::json!({
        "org": state.config.organization, "email": token.email, "inviter": inviter.name,
        "link": link.as_str(), "days": ttl.div_euclid(86_400).max(1),
    });
    if let Err(e) = state
        .mailer
        .send_template(&token.email, MailTemplate::Invitation, &values)
        .await
    {
        tracing::error!(error = %e, invitation = %token.id, "could not send an invitation");
        return Err(Error::Unavailable(
            "the invitation is saved but its mail could not be sent; send it again".into(),
        ));
    }
    tracing::info!(invitation = %token.id, tenant = %token.tenant, "invitation sent");
    Ok(token)
}

/// The tenant's pending invitations (expired ones included), newest first.
pub async fn pending(state: &State, tenant: &str) -> Result<Vec<AccountToken>, Error> {
    let mut all = state
        .store
        .list_account_tokens(tenant, AccountTokenKind::Invite)
        .await?;
    all.retain(|t| !t.used);
    Ok(all)
}

/// A pending invitation of the tenant by id, or 404.
async fn pending_one(state: &State, tenant: &str, id: &str) -> Result<AccountToken, Error> {
    state
        .store
        .get_account_token_by_id(id)
        .await?
        .filter(|t| t.kind == AccountTokenKind::Invite && t.tenant == tenant && !t.used)
        .ok_or_else(|| Error::NotFound("no such pending invitation".into()))
}

/// Sends an invitation again: a new link with a new lifetime; the old link is dead.
pub async fn resend(
    state: &State,
    tenant: &str,
    id: &str,
    inviter: Inviter<'_>,
) -> Result<AccountToken, Error> {
    let old = pending_one(state, tenant, id).await?;
    if !state.store.delete_account_token(&old.id).await? {
        return Err(Error::NotFound("no such pending invitation".into()));
    }
    issue(state, old, inviter).await
}

/// Withdraws a pending invitation.
pub async fn revoke(state: &State, tenant: &str, id: &str) -> Result<(), Error> {
    let old = pending_one(state, tenant, id).await?;
    if !state.store.delete_account_token(&old.id).await? {
        return Err(Error::NotFound("no such pending invitation".into()));
    }
    tracing::info!(invitation = %old.id, "invitation withdrawn");
    Ok(())
}

/// The invitation a link stands for, when it can still be used in `tenant`.
pub async fn find(state: &State, tenant: &str, secret: &str) -> Result<AccountToken, Error> {
    state
        .store
        .get_account_token(&hash_secret(secret))
        .await?
        .filter(|t| !t.used && fits(t, tenant, now()))
        .ok_or_else(|| Error::Invalid(NOT_USABLE.into()))
}

/// What the invitee chooses.
pub struct Acceptance<'a> {
    /// Display name.
    pub name: &'a str,
    /// Password.
    pub password: &'a str,
    /// The password again.
    pub repeated: &'a str,
}

/// Creates the account of an invitation: the link is spent (once, whoever comes first) and
/// the user created in the invitation's tenant with its groups and roles. Signs nobody in.
pub async fn accept(
    state: &State,
    tenant: &str,
    secret: &str,
    answer: Acceptance<'_>,
) -> Result<User, Error> {
    // Checked before the link is spent, so that a typo does not cost the link.
    find(state, tenant, secret).await?;
    let name = super::users::display_name(answer.name)?;
    super::password::check_new(answer.password, answer.repeated)?;
    let hash = super::password::hash(answer.password.to_string()).await?;
    let token = match state
        .store
        .spend_account_token(&hash_secret(secret))
        .await?
    {
        Consumed::Fresh(t) if fits(&t, tenant, now()) => t,
        _ => return Err(Error::Invalid(NOT_USABLE.into())),
    };
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: token.tenant,
        email: token.email,
        name,
        picture: None,
        groups: token.groups,
        roles: token.roles,
        password_hash: Some(hash),
        active: true,
        created_at: now(),
    };
    match state.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(Error::Conflict(
                "An account with this address exists already: sign in, or reset its password."
                    .into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user = %user.id, invitation = %token.id, "invitation accepted");
    Ok(user)
}

/// Whether a stored link is a invitation of `tenant` that has not expired (used or not).
fn fits(t: &AccountToken, tenant: &str, now: i64) -> bool {
    t.fits(AccountTokenKind::Invite, tenant, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_fits_its_tenant_before_it_expires() {
        let t = AccountToken {
            token_hash: "h".into(),
            id: "i".into(),
            kind: AccountTokenKind::Invite,
            tenant: "acme".into(),
            email: "a@example.com".into(),
            user_id: None,
            groups: Vec::new(),
            roles: Vec::new(),
            created_by: None,
            created_at: 0,
            expires_at: 100,
            used: false,
        };
        assert!(fits(&t, "acme", 99));
        assert!(!fits(&t, "acme", 100));
        assert!(!fits(&t, "other", 50));
        let reset = AccountToken {
            kind: AccountTokenKind::Reset,
            ..t
        };
        assert!(!fits(&reset, "acme", 50), "a reset link is no invitation");
    }
}
