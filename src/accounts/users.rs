//! A tenant's users as its administrators see them: list and search, edit name, groups and
//! roles, deactivate and activate. Every operation names the tenant it acts in and finds
//! nothing of another (404), so an administrator of one tenant can neither see nor change
//! another's users. Who is an administrator is `manage::owned`'s rule (`ROLE_ADMIN` of the
//! tenant), the one that already decides who sees all of a tenant's apps.

use crate::error::Error;
use crate::manage::owned::Caller;
use crate::state::State;
use crate::store::User;
use crate::store::notify::Revoked;

/// The most groups or roles a user may have: they travel in one identity header each.
pub const MAX_ENTRIES: usize = 100;
/// The longest group or role name, and the longest display name.
pub const MAX_CHARS: usize = 200;

/// The tenant a caller administers, or 403.
pub fn administered(caller: &Caller) -> Result<&str, Error> {
    if caller.is_admin() {
        Ok(&caller.identity.tenant)
    } else {
        Err(Error::Forbidden(
            "only an administrator of the tenant manages its users".into(),
        ))
    }
}

/// What an edit changes (`None`: unchanged).
#[derive(Debug, Default, Clone)]
pub struct Edit {
    /// Display name.
    pub name: Option<String>,
    /// Groups.
    pub groups: Option<Vec<String>>,
    /// Roles.
    pub roles: Option<Vec<String>>,
    /// Active or not.
    pub active: Option<bool>,
}

/// Removes every second factor of a user of the tenant (an authenticator app lost with its
/// recovery codes): they sign in with their password alone until they enrol again, or are sent
/// to enrol where the tenant requires a second factor. Their sessions end (with back-channel
/// logout): whoever holds the lost device may hold a session too. Whether they had a factor.
pub async fn reset_factors(state: &State, tenant: &str, id: &str) -> Result<bool, Error> {
    let user = get(state, tenant, id).await?;
    let had = state.store.delete_factors(&user.id).await?;
    let ended = super::end_sessions(state, &user.id, None).await?;
    tracing::info!(user = %user.id, tenant, had_factors = had, sessions_ended = ended, "second factors reset by an administrator");
    crate::audit::user("factors_reset", &user.id, &user.email, "administrator");
    Ok(had)
}

/// The tenant's users whose email or name contains `query` (any case), by email.
pub async fn list(state: &State, tenant: &str, query: &str) -> Result<Vec<User>, Error> {
    let mut users = state.store.list_users(Some(tenant)).await?;
    let q = query.trim().to_lowercase();
    if !q.is_empty() {
        users.retain(|u| u.email.contains(&q) || u.name.to_lowercase().contains(&q));
    }
    Ok(users)
}

/// A user of the tenant, or 404 (also for another tenant's).
pub async fn get(state: &State, tenant: &str, id: &str) -> Result<User, Error> {
    state
        .store
        .get_user(id)
        .await?
        .filter(|u| u.tenant == tenant)
        .ok_or_else(|| Error::NotFound("no such user".into()))
}

/// Applies an edit to a user of the tenant. `actor` (a user id) may not deactivate
/// themselves. A change of groups or roles reaches upstreams with the next request; a
/// deactivation ends every session of the user (with back-channel logout) and refuses their
/// tokens.
pub async fn edit(
    state: &State,
    tenant: &str,
    actor: Option<&str>,
    id: &str,
    edit: Edit,
) -> Result<User, Error> {
    let mut user = get(state, tenant, id).await?;
    if let Some(name) = &edit.name {
        user.name = display_name(name)?;
    }
    if let Some(groups) = &edit.groups {
        user.groups = names("groups", groups)?;
    }
    if let Some(roles) = &edit.roles {
        user.roles = names("roles", roles)?;
    }
    if let Some(active) = edit.active {
        if !active && actor == Some(user.id.as_str()) {
            return Err(Error::Conflict("you cannot deactivate yourself".into()));
        }
        user.active = active;
    }
    if !state.store.update_user(&user).await? {
        return Err(Error::NotFound("no such user".into()));
    }
    // The store tells the other nodes; this one forgets the cached identity now.
    crate::revocation::apply(state, &Revoked::User(user.id.clone()));
    if !user.active {
        super::end_sessions(state, &user.id, None).await?;
    }
    let action = match edit.active {
        Some(false) => "deactivated",
        Some(true) => "activated",
        None => "edited",
    };
    crate::audit::user(action, &user.id, &user.email, actor.unwrap_or("cli"));
    Ok(user)
}

/// A display name: trimmed, not empty, not too long.
pub fn display_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_CHARS || name.chars().any(char::is_control) {
        return Err(Error::InvalidField(format!(
            "name: between 1 and {MAX_CHARS} characters, no control characters"
        )));
    }
    Ok(name.to_string())
}

/// Group or role names: trimmed, empty ones dropped, duplicates removed; no comma (they are
/// joined with commas in the identity headers) and no control character.
pub fn names(field: &str, values: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if v.contains(',') || v.chars().any(char::is_control) || v.chars().count() > MAX_CHARS {
            return Err(Error::InvalidField(format!(
                "{field}: `{}` must have at most {MAX_CHARS} characters, without commas or control characters",
                v.escape_debug()
            )));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    if out.len() > MAX_ENTRIES {
        return Err(Error::InvalidField(format!(
            "{field}: at most {MAX_ENTRIES} entries"
        )));
    }
    Ok(out)
}

/// A comma-separated form field as a list.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_checked() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names("groups", &list(&[" wiki ", "", "ops", "wiki"])).unwrap(),
            ["wiki", "ops"]
        );
        for bad in ["a,b", "tab\there"] {
            let e = names("roles", &list(&[bad])).unwrap_err();
            assert_eq!(e.code(), "invalid_field", "{bad}");
            assert!(e.to_string().starts_with("roles:"), "{e}");
        }
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("g{i}")).collect();
        assert!(names("groups", &many).is_err());
        assert_eq!(split_list("a, b,,c"), ["a", "b", "", "c"]);
        assert_eq!(display_name("  Ann  ").unwrap(), "Ann");
        assert!(display_name("   ").is_err());
        assert!(display_name(&"x".repeat(MAX_CHARS + 1)).is_err());
    }
}
