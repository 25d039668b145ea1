//! From a provider's claims to a frontdoor user: groups and roles mapping, allowed email
//! domains, linking by subject (or verified email), just-in-time provisioning.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::clock::now;
use crate::config::IdentityProviderConfig;
use crate::store::{DynStore, StoreError, User};

/// What the provider told us about the person.
#[derive(Debug, Clone, Default)]
pub struct ProviderClaims {
    /// `sub`.
    pub subject: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: Option<String>,
    /// `picture`.
    pub picture: Option<String>,
    /// Every other claim (groups, roles, sid, …).
    pub extra: serde_json::Map<String, Value>,
}

/// Why a person cannot sign in through the provider.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The email is outside the allowed domains.
    #[error("{0}")]
    Domain(String),
    /// Unknown person and provisioning is off.
    #[error("{0}")]
    Unknown(String),
    /// The linked account is disabled.
    #[error("{0}")]
    Disabled(String),
    /// An account has this email, but the provider does not vouch for the address.
    #[error("{0}")]
    Unverified(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Strings of a claim that is an array of strings or one string (space- or comma-separated).
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        Value::String(s) => Some(
            s.split([' ', ','])
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

fn map_names(names: Vec<String>, table: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let mapped = if table.is_empty() {
            Some(n)
        } else {
            table.get(&n).cloned()
        };
        if let Some(m) = mapped {
            let full = format!("{prefix}{m}");
            if !out.contains(&full) {
                out.push(full);
            }
        }
    }
    out
}

/// Groups from the configured claim, mapped; `None` when the provider sends no groups claim.
pub fn groups(config: &IdentityProviderConfig, claims: &ProviderClaims) -> Option<Vec<String>> {
    let claim = config.groups_claim.as_deref()?;
    strings(claims.extra.get(claim)).map(|g| map_names(g, &config.group_map, &config.group_prefix))
}

/// Roles from the configured claim, mapped; `None` when not configured or absent.
pub fn roles(config: &IdentityProviderConfig, claims: &ProviderClaims) -> Option<Vec<String>> {
    let claim = config.roles_claim.as_deref()?;
    strings(claims.extra.get(claim)).map(|r| map_names(r, &config.role_map, ""))
}

/// The domain check: refused when domains are configured and the email is not in one.
pub fn check_domain(
    config: &IdentityProviderConfig,
    claims: &ProviderClaims,
) -> Result<(), Refused> {
    if config.allowed_domains.is_empty() {
        return Ok(());
    }
    let domain = claims
        .email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase());
    match domain {
        Some(d)
            if config
                .allowed_domains
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&d)) =>
        {
            Ok(())
        }
        Some(d) => Err(Refused::Domain(format!(
            "Accounts of {d} may not sign in here."
        ))),
        None => Err(Refused::Domain(
            "The provider did not tell us your email address, which is required here.".into(),
        )),
    }
}

/// Finds or creates the frontdoor user for these claims, and brings their name, groups and
/// roles up to date with the provider.
pub async fn resolve_user(
    store: &DynStore,
    config: &IdentityProviderConfig,
    tenant: &str,
    claims: &ProviderClaims,
) -> Result<User, Refused> {
    check_domain(config, claims)?;
    let idp = config.id.as_str();
    let mapped_groups = groups(config, claims);
    let mapped_roles = roles(config, claims);
    let email = claims.email.as_deref().map(|e| e.trim().to_lowercase());

    let linked = match store.find_identity_link(idp, &claims.subject).await? {
        Some(user_id) => store.get_user(&user_id).await?,
        None => None,
    };
    // Link an existing account by email only when the provider vouches for the address.
    let by_email = match (&linked, &email) {
        (None, Some(e)) if claims.email_verified => store.find_user_by_email(tenant, e).await?,
        _ => None,
    };
    let mut user = match linked.or(by_email) {
        Some(u) => {
            if !u.active {
                return Err(Refused::Disabled("This account is disabled.".into()));
            }
            u
        }
        None if config.provision => {
            let Some(email) = email.clone().filter(|e| e.contains('@')) else {
                return Err(Refused::Unknown(
                    "The provider did not tell us your email address.".into(),
                ));
            };
            // Reached with an existing account's address only when the provider has not
            // verified it (a verified one links above): neither link nor duplicate it.
            if store.find_user_by_email(tenant, &email).await?.is_some() {
                return Err(Refused::Unverified(format!(
                    "An account with {email} exists here, but the provider has not verified \
                     that this address is yours, so it cannot be linked. Verify it there, or \
                     ask an administrator."
                )));
            }
            let user = User {
                id: uuid::Uuid::new_v4().to_string(),
                tenant: tenant.to_string(),
                email: email.clone(),
                name: claims.name.clone().unwrap_or_else(|| email.clone()),
                picture: claims.picture.clone(),
                groups: mapped_groups.clone().unwrap_or_default(),
                roles: mapped_roles
                    .clone()
                    .unwrap_or_else(|| config.default_roles.clone()),
                password_hash: None,
                active: true,
                created_at: now(),
            };
            store.create_user(&user).await?;
            tracing::info!(idp, user = %user.id, "provisioned a user on first login");
            user
        }
        None => {
            return Err(Refused::Unknown(format!(
                "There is no account here for you yet ({}). Ask an administrator to add you.",
                email.unwrap_or_else(|| claims.subject.clone())
            )));
        }
    };
    store
        .link_identity(idp, &claims.subject, &user.id, now())
        .await?;
    let mut changed = false;
    if let Some(g) = mapped_groups
        && g != user.groups
    {
        user.groups = g;
        changed = true;
    }
    if let Some(r) = mapped_roles
        && r != user.roles
    {
        user.roles = r;
        changed = true;
    }
    if let Some(n) = &claims.name
        && !n.is_empty()
        && *n != user.name
    {
        user.name = n.clone();
        changed = true;
    }
    if changed {
        store.update_user(&user).await?;
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IdentityProviderConfig {
        serde_yaml::from_str(
            "{ id: corp, name: Corp, issuer: 'https://idp', client_id: x, groups_claim: groups, roles_claim: roles, group_prefix: 'corp-', group_map: { eng: engineering, ops: operations }, allowed_domains: [example.com] }",
        )
        .expect("config")
    }

    fn claims(extra: Value, email: &str) -> ProviderClaims {
        ProviderClaims {
            subject: "s1".into(),
            email: Some(email.into()),
            email_verified: true,
            extra: extra.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn groups_are_mapped_prefixed_and_unmapped_dropped() {
        let c = claims(
            serde_json::json!({"groups": ["eng", "ops", "marketing"], "roles": "admin user"}),
            "a@example.com",
        );
        assert_eq!(
            groups(&config(), &c),
            Some(vec![
                "corp-engineering".to_string(),
                "corp-operations".to_string()
            ])
        );
        assert_eq!(
            roles(&config(), &c),
            Some(vec!["admin".to_string(), "user".to_string()])
        );
        let none = claims(serde_json::json!({}), "a@example.com");
        assert_eq!(groups(&config(), &none), None);
    }

    #[test]
    fn domains_are_enforced() {
        assert!(check_domain(&config(), &claims(serde_json::json!({}), "a@EXAMPLE.com")).is_ok());
        assert!(check_domain(&config(), &claims(serde_json::json!({}), "a@evil.com")).is_err());
        assert!(
            check_domain(
                &config(),
                &claims(serde_json::json!({}), "a@example.com.evil.com")
            )
            .is_err()
        );
    }
}
