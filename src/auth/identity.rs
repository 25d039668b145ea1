//! The identity of a caller, with the header values injected upstream pre-rendered once.

use std::sync::Mutex;

use http::HeaderValue;

use crate::config::HeaderField;
use crate::store::User;

/// Which credential proved the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Browser session cookie.
    Session,
    /// `Api-Token` header.
    ApiToken,
    /// `Authorization: Bearer` JWT.
    Bearer,
    /// `X-Contact-Hash` header.
    ContactHash,
}

impl CredentialKind {
    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::ApiToken => "api_token",
            CredentialKind::Bearer => "bearer",
            CredentialKind::ContactHash => "contact_hash",
        }
    }
}

/// What the credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only GET, HEAD and OPTIONS.
    ReadOnly,
    /// Everything the user may do.
    ReadWrite,
}

/// A caller whose credential was verified.
#[derive(Debug, Clone)]
pub struct Identity {
    /// User id, client id or contact id.
    pub subject: String,
    /// The login shown upstream: email, `app:<client_id>` or `contact:<id>`.
    pub user: String,
    /// Email address, possibly empty.
    pub email: String,
    /// Display name, possibly empty.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenant.
    pub tenant: String,
    /// Read-only or read-write.
    pub access: Access,
    /// The credential used.
    pub kind: CredentialKind,
    /// How a session was authenticated (RFC 8176 `amr`, space-separated); empty for other
    /// credentials.
    pub amr: String,
    header_values: [Option<HeaderValue>; 8],
    /// Signed assertions of this identity, by audience (`gateway::assertion`): an identity
    /// lives as long as its credential's cache entry, so a warm request does not sign.
    pub minted: Minted,
}

/// Values minted for an identity, by audience, each reused until its time is up. A clone
/// starts empty: a changed identity never reuses what was minted for the old one.
#[derive(Default)]
pub struct Minted(Mutex<Vec<(Box<str>, HeaderValue, i64)>>);

/// Audiences remembered per identity (a `*` route sees one per host).
const MINTED_AUDIENCES: usize = 16;

impl Minted {
    /// The value for `audience` minted earlier and reusable until after `now`, or the one
    /// `mint` makes (the value and until when it may be reused), then remembered.
    pub fn get_or_mint<E>(
        &self,
        audience: &str,
        now: i64,
        mint: impl FnOnce() -> Result<(HeaderValue, i64), E>,
    ) -> Result<HeaderValue, E> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, value, _)) = held
            .iter()
            .find(|(aud, _, until)| &**aud == audience && *until > now)
        {
            return Ok(value.clone());
        }
        let (value, until) = mint()?;
        held.retain(|(aud, _, until)| &**aud != audience && *until > now);
        if held.len() >= MINTED_AUDIENCES {
            held.remove(0);
        }
        held.push((audience.into(), value.clone(), until));
        Ok(value)
    }
}

impl Clone for Minted {
    fn clone(&self) -> Self {
        Minted::default()
    }
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minted")
    }
}

impl Identity {
    /// Builds an identity and renders its header values.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        subject: String,
        user: String,
        email: String,
        name: String,
        groups: Vec<String>,
        roles: Vec<String>,
        tenant: String,
        access: Access,
        kind: CredentialKind,
    ) -> Identity {
        let mut id = Identity {
            subject,
            user,
            email,
            name,
            groups,
            roles,
            tenant,
            access,
            kind,
            amr: String::new(),
            header_values: Default::default(),
            minted: Minted::default(),
        };
        id.header_values = HeaderField::ALL.map(|f| header_value(&id.field_text(f)));
        id
    }

    /// The identity of a user of the store.
    pub fn for_user(user: &User, kind: CredentialKind, access: Access) -> Identity {
        Identity::new(
            user.id.clone(),
            user.email.clone(),
            user.email.clone(),
            user.name.clone(),
            user.groups.clone(),
            user.roles.clone(),
            user.tenant.clone(),
            access,
            kind,
        )
    }

    /// The same identity for a session authenticated with `amr`.
    pub fn with_amr(mut self, amr: &str) -> Identity {
        self.amr = amr.to_string();
        self.header_values = HeaderField::ALL.map(|f| header_value(&self.field_text(f)));
        self
    }

    /// Whether the credential proved two factors (a session with `mfa` in its `amr`).
    pub fn two_factor(&self) -> bool {
        crate::factors::is_two_factor(&self.amr)
    }

    fn field_text(&self, field: HeaderField) -> String {
        match field {
            HeaderField::User => self.user.clone(),
            HeaderField::Email => self.email.clone(),
            HeaderField::Name => self.name.clone(),
            HeaderField::Groups => self.groups.join(","),
            HeaderField::Roles => self.roles.join(","),
            HeaderField::Tenant => self.tenant.clone(),
            HeaderField::Access => match self.access {
                Access::ReadOnly => "read-only".into(),
                Access::ReadWrite => "read-write".into(),
            },
            // RFC 8176 values are a JSON array in tokens; a header lists them like groups.
            HeaderField::Amr => self.amr.replace(' ', ","),
        }
    }

    /// The pre-rendered value of an identity header; `None` when empty or not representable.
    pub fn header_value(&self, field: HeaderField) -> Option<&HeaderValue> {
        self.header_values[field as usize].as_ref()
    }

    /// Whether the caller is in one of `groups` (or `groups` is empty).
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        groups.is_empty() || groups.iter().any(|g| self.groups.contains(g))
    }

    /// Whether the caller has one of `roles` (or `roles` is empty).
    pub fn has_any_role(&self, roles: &[String]) -> bool {
        roles.is_empty() || roles.iter().any(|r| self.roles.contains(r))
    }
}

/// Header values must not carry control characters; names from the store are untrusted text.
fn header_value(text: &str) -> Option<HeaderValue> {
    if text.is_empty() {
        return None;
    }
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_str(&clean).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_rendered_and_sanitised() {
        let id = Identity::new(
            "u1".into(),
            "ann@example.com".into(),
            "ann@example.com".into(),
            "Ann\r\nX-Evil: 1".into(),
            vec!["wiki".into(), "ops".into()],
            vec!["ROLE_USER".into()],
            "default".into(),
            Access::ReadOnly,
            CredentialKind::Session,
        );
        assert_eq!(
            id.header_value(HeaderField::Groups).map(|v| v.as_bytes()),
            Some(&b"wiki,ops"[..])
        );
        assert_eq!(
            id.header_value(HeaderField::Name).map(|v| v.as_bytes()),
            Some(&b"AnnX-Evil: 1"[..])
        );
        assert_eq!(
            id.header_value(HeaderField::Access).map(|v| v.as_bytes()),
            Some(&b"read-only"[..])
        );
        assert!(id.in_any_group(&["ops".into()]));
        assert!(!id.in_any_group(&["admins".into()]));
        assert!(id.has_any_role(&[]));
        assert_eq!(id.header_value(HeaderField::Amr), None);
        assert!(!id.two_factor());
        let id = id.with_amr("pwd otp mfa");
        assert_eq!(
            id.header_value(HeaderField::Amr).map(|v| v.as_bytes()),
            Some(&b"pwd,otp,mfa"[..])
        );
        assert!(id.two_factor());
    }
}
