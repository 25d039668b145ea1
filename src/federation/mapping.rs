//! From a provider's claims to a frontdoor user: bounds on the claims, groups and roles
//! mapping, allowed email domains, linking by subject (or verified email), just-in-time
//! provisioning.
//!
//! The linking rule: an account is found by the provider's `sub` once linked, and by that
//! alone; before that, an email signs into an existing account or creates one only when the
//! provider says it verified the address (`email_verified: true`), in the canonical form of
//! [`crate::email`]; linking to an existing local account also needs `link_existing` (the
//! default). An unverified address is never stored as an account's email.

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
    /// The email claim is not an address frontdoor accepts.
    #[error("{0}")]
    Email(String),
    /// An account has this (verified) email, and the provider may not sign into existing ones.
    #[error("{0}")]
    NotLinkable(String),
    /// A claim is over its bound.
    #[error("{0}")]
    Limit(String),
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

/// The longest picture URL kept (a longer one is dropped).
const MAX_PICTURE_LEN: usize = 2048;

/// Holds the claims to the provider's bounds, before anything is mapped or stored: too many
/// groups or roles, or one too long or with control characters, refuse the sign-in (cutting
/// could drop a group that a deny rule names, and these go into upstream headers); a name too
/// long is cut, a picture URL too long dropped. Each is logged and counted.
pub fn bound_claims(
    config: &IdentityProviderConfig,
    claims: &mut ProviderClaims,
) -> Result<(), Refused> {
    let idp = config.id.as_str();
    let max_len = config.max_claim_length;
    // OIDC Core §2: `sub` is at most 255 ASCII characters; it is stored and compared.
    if claims.subject.is_empty()
        || claims.subject.len() > 255
        || claims.subject.chars().any(|c| c.is_control())
    {
        crate::metrics::federation_limited(idp, "sub", "refused");
        tracing::warn!(
            idp,
            length = claims.subject.len(),
            "provider sub claim malformed or over 255 bytes; sign-in refused"
        );
        return Err(Refused::Limit(
            "The provider sent a subject identifier that is too long or malformed.".into(),
        ));
    }
    for (claim, label, configured) in [
        ("groups", "groups", &config.groups_claim),
        ("roles", "roles", &config.roles_claim),
    ] {
        let Some(names) = configured
            .as_deref()
            .and_then(|c| strings(claims.extra.get(c)))
        else {
            continue;
        };
        let refuse = |why: String| {
            crate::metrics::federation_limited(idp, label, "refused");
            tracing::warn!(idp, claim, reason = %why, "provider claim over its bound; sign-in refused");
            Err(Refused::Limit(why))
        };
        if names.len() > config.max_groups {
            return refuse(format!(
                "The provider sent too many {claim} ({}; at most {} are accepted). Ask an administrator.",
                names.len(),
                config.max_groups
            ));
        }
        if names
            .iter()
            .any(|n| n.chars().count() > max_len || n.chars().any(char::is_control))
        {
            return refuse(format!(
                "The provider sent {claim} whose names are too long (over {max_len} characters) or malformed. Ask an administrator."
            ));
        }
    }
    if let Some(name) = &mut claims.name {
        if name.chars().any(char::is_control) {
            crate::metrics::federation_limited(idp, "name", "refused");
            tracing::warn!(
                idp,
                "provider name claim holds control characters; sign-in refused"
            );
            return Err(Refused::Limit(
                "The provider sent a name with control characters.".into(),
            ));
        }
        if let Some((cut, _)) = name.char_indices().nth(max_len) {
            tracing::warn!(
                idp,
                length = name.chars().count(),
                max_len,
                "provider name claim cut to max_claim_length"
            );
            crate::metrics::federation_limited(idp, "name", "cut");
            name.truncate(cut);
        }
    }
    if claims
        .picture
        .as_ref()
        .is_some_and(|p| p.len() > MAX_PICTURE_LEN || p.chars().any(char::is_control))
    {
        tracing::warn!(idp, "provider picture claim too long or malformed; dropped");
        crate::metrics::federation_limited(idp, "picture", "cut");
        claims.picture = None;
    }
    Ok(())
}

/// The domain check on the canonical email: refused when domains are configured and the email
/// is not in one.
pub fn check_domain(config: &IdentityProviderConfig, email: Option<&str>) -> Result<(), Refused> {
    if config.allowed_domains.is_empty() {
        return Ok(());
    }
    match email.map(crate::email::domain_of) {
        Some(d)
            if config
                .allowed_domains
                .iter()
                .any(|a| a.eq_ignore_ascii_case(d)) =>
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
    let mut claims = claims.clone();
    bound_claims(config, &mut claims)?;
    let claims = &claims;
    // Exactly as the provider sent it: what is not canonical is refused, never repaired
    // (a trailing NUL or tab, KELVIN SIGN for `k`, a second `@`).
    let email = match claims.email.as_deref() {
        Some(raw) => Some(crate::email::canonical(raw).map_err(|e| {
            tracing::warn!(idp = %config.id, error = %e, "provider email claim refused");
            Refused::Email(format!(
                "The provider sent an email address that cannot be used here ({e})."
            ))
        })?),
        None => None,
    };
    check_domain(config, email.as_deref())?;
    let idp = config.id.as_str();
    let mapped_groups = groups(config, claims);
    let mapped_roles = roles(config, claims);

    // Once linked, the `sub` alone finds the account, whatever email comes with it.
    let linked = match store.find_identity_link(idp, &claims.subject).await? {
        Some(user_id) => store.get_user(&user_id).await?,
        None => None,
    };
    let existing = match (&linked, &email) {
        (None, Some(e)) => store.find_user_by_email(tenant, e).await?,
        _ => None,
    };
    let mut user = match (linked, existing) {
        (Some(u), _) => u,
        // An account has this address: linked only when the provider vouches for it and may
        // sign into existing accounts.
        (None, Some(u)) => {
            let email = &u.email;
            if !claims.email_verified {
                return Err(if config.provision {
                    Refused::Unverified(format!(
                        "An account with {email} exists here, but the provider has not verified \
                         that this address is yours, so it cannot be linked. Verify it there, or \
                         ask an administrator."
                    ))
                } else {
                    Refused::Unknown(format!(
                        "There is no account here for you yet ({email}). Ask an administrator to add you."
                    ))
                });
            }
            if !config.link_existing {
                return Err(Refused::NotLinkable(format!(
                    "An account with {email} exists here, but {} may not sign in to existing \
                     accounts. Sign in another way, or ask an administrator.",
                    config.name
                )));
            }
            u
        }
        (None, None) if config.provision => {
            let Some(email) = email.clone() else {
                return Err(Refused::Unknown(
                    "The provider did not tell us your email address.".into(),
                ));
            };
            // An address nobody vouched for would reach every upstream as this person's.
            if !claims.email_verified {
                return Err(Refused::Unverified(format!(
                    "The provider has not verified that {email} is yours, so no account can \
                     be made for it. Verify it there and try again."
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
        (None, None) => {
            return Err(Refused::Unknown(format!(
                "There is no account here for you yet ({}). Ask an administrator to add you.",
                email.unwrap_or_else(|| claims.subject.clone())
            )));
        }
    };
    if !user.active {
        return Err(Refused::Disabled("This account is disabled.".into()));
    }
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
        assert!(check_domain(&config(), Some("a@example.com")).is_ok());
        assert!(check_domain(&config(), Some("a@evil.com")).is_err());
        assert!(check_domain(&config(), Some("a@example.com.evil.com")).is_err());
        assert!(check_domain(&config(), None).is_err());
    }

    #[test]
    fn claims_over_their_bounds_are_refused_or_cut() {
        let mut c = claims(
            serde_json::json!({"groups": (0..101).map(|i| format!("g{i}")).collect::<Vec<_>>()}),
            "a@example.com",
        );
        assert!(matches!(
            bound_claims(&config(), &mut c),
            Err(Refused::Limit(_))
        ));
        let mut c = claims(serde_json::json!({"roles": ["a\nb"]}), "a@example.com");
        assert!(bound_claims(&config(), &mut c).is_err());
        let mut c = claims(serde_json::json!({"groups": ["eng"]}), "a@example.com");
        c.name = Some("\u{e9}".repeat(300));
        assert!(bound_claims(&config(), &mut c).is_ok());
        assert_eq!(c.name.as_deref().map(|n| n.chars().count()), Some(256));
    }
}
