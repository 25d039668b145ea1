//! What a store change revokes, as told to every node through PostgreSQL's
//! `NOTIFY frontdoor_revocations, '<kind>:<key>'`.
//!
//! The PostgreSQL store sends one notification per revoked thing in the same transaction as the
//! change (so it is delivered only if the change commits); the revocation listener hears it and
//! forgets the matching cache entries. Keys are ids or hashes, never a secret a client holds.

/// The PostgreSQL channel the notifications go through.
pub const CHANNEL: &str = "frontdoor_revocations";

/// One revoked thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// A session ended (logout, back-channel logout), by the hash of its id.
    Session(String),
    /// An API token revoked, by id.
    ApiToken(String),
    /// A grant (refresh family and its access tokens) revoked, by id.
    Grant(String),
    /// An app deactivated, changed or deleted, by client id.
    App(String),
    /// A user deactivated or deleted, by id.
    User(String),
    /// A contact hash revoked, by contact id.
    Contact(String),
}

impl Revoked {
    /// The notification payload: `<kind>:<key>`.
    pub fn payload(&self) -> String {
        let (kind, key) = match self {
            Revoked::Session(k) => ("session", k),
            Revoked::ApiToken(k) => ("api_token", k),
            Revoked::Grant(k) => ("grant", k),
            Revoked::App(k) => ("app", k),
            Revoked::User(k) => ("user", k),
            Revoked::Contact(k) => ("contact", k),
        };
        format!("{kind}:{key}")
    }

    /// Parses a payload; `None` for one this build does not know (a newer node's).
    pub fn parse(payload: &str) -> Option<Revoked> {
        let (kind, key) = payload.split_once(':')?;
        if key.is_empty() {
            return None;
        }
        let key = key.to_string();
        Some(match kind {
            "session" => Revoked::Session(key),
            "api_token" => Revoked::ApiToken(key),
            "grant" => Revoked::Grant(key),
            "app" => Revoked::App(key),
            "user" => Revoked::User(key),
            "contact" => Revoked::Contact(key),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for r in [
            Revoked::Session("abc".into()),
            Revoked::ApiToken("id-1".into()),
            Revoked::Grant("app:client".into()),
            Revoked::App("client".into()),
            Revoked::User("u".into()),
            Revoked::Contact("c".into()),
        ] {
            assert_eq!(Revoked::parse(&r.payload()), Some(r));
        }
        assert_eq!(
            Revoked::parse("grant:app:x"),
            Some(Revoked::Grant("app:x".into()))
        );
        for bad in ["", "session", "session:", "unknown:x"] {
            assert_eq!(Revoked::parse(bad), None, "{bad}");
        }
    }
}
