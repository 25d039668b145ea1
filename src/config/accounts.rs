//! `accounts`: the lifetimes of the links an account's life mails (password resets and
//! invitations).

use std::time::Duration;

use serde::Deserialize;

use super::Dur;

/// The longest a mailed link may live: a link is a credential in a mailbox.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Password resets and invitations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// How long a "forgot password" link works (default 30m).
    pub reset_link_ttl: Dur,
    /// How long an invitation link works (default 7d).
    pub invite_ttl: Dur,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            reset_link_ttl: Dur(Duration::from_secs(30 * 60)),
            invite_ttl: Dur(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

impl AccountsConfig {
    /// The problems of these settings, as (key, message).
    pub(super) fn problems(&self) -> Vec<(String, String)> {
        [
            ("accounts.reset_link_ttl", self.reset_link_ttl.0),
            ("accounts.invite_ttl", self.invite_ttl.0),
        ]
        .into_iter()
        .filter(|(_, d)| *d < Duration::from_secs(1) || *d > MAX_LINK_LIFETIME)
        .map(|(key, _)| (key.to_string(), "must be between 1s and 30d".to_string()))
        .collect()
    }
}
