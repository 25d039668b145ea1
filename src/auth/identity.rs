//! The identity of a caller, with the header values injected upstream pre-rendered once.

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
    header_values: [Option<HeaderValue>; 7],
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
            header_values: Default::default(),
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
    }
}
