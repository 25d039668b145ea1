//! `accounts`: the lifetimes of the links an account's life mails (password reset).

use std::time::Duration;

use serde::Deserialize;

use super::Dur;

/// The longest a mailed link may live: a link is a credential in a mailbox.
const MAX_LINK_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Password resets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// How long a "forgot password" link works (default 30m).
    pub reset_link_ttl: Dur,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            reset_link_ttl: Dur(Duration::from_secs(30 * 60)),
        }
    }
}

impl AccountsConfig {
    /// The problems of these settings, as (key, message).
    pub(super) fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let d = self.reset_link_ttl.0;
        if d < Duration::from_secs(1) || d > MAX_LINK_LIFETIME {
            p.push((
                "accounts.reset_link_ttl".to_string(),
                "must be between 1s and 30d".to_string(),
            ));
        }
        p
    }
}
