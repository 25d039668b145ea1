//! Audit events: who signed in or failed to, bans, logouts, changes to tokens, apps and users,
//! configuration reloads. One function per kind, each one `tracing` event on the target
//! `frontdoor::audit` with an `event` field naming the kind, so that log shippers and
//! fail2ban (`contrib/fail2ban/`) can select them without parsing messages.
//!
//! The first fields of every event are frontdoor's own (`event`, then `client` where there is
//! one); what a caller typed (the account of a sign-in) comes later, bounded and with its
//! control characters replaced, and recorded as a string, which the text format quotes and
//! escapes (`account="a \"b"`) and JSON escapes: a typed account cannot forge a field that a
//! filter reads. No credential is ever a field here.

use std::net::IpAddr;

use crate::logging::{AUDIT, Client};

/// Longest account name written, in characters; longer ones are cut and marked with `…`.
const MAX_ACCOUNT_CHARS: usize = 128;

/// An account name as typed, safe to write: at most [`MAX_ACCOUNT_CHARS`] characters, control
/// characters (newlines, escapes) replaced by `?`.
pub fn account(typed: &str) -> String {
    let mut out: String = typed
        .chars()
        .take(MAX_ACCOUNT_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if typed.chars().nth(MAX_ACCOUNT_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A sign-in that succeeded. `method`: `password`, `api_password`, `otp`, `idp:ID`, …
pub fn sign_in_succeeded(
    method: &str,
    client: Option<IpAddr>,
    tenant: &str,
    typed: &str,
    user_id: &str,
) {
    tracing::info!(
        target: AUDIT,
        event = "sign_in_succeeded",
        client = %Client(client),
        method,
        tenant,
        account = account(typed).as_str(),
        user_id,
        "sign-in succeeded"
    );
}

/// A sign-in that failed, and why (`wrong_password`, `unknown_account`, `inactive_account`,
/// `invalid_code`, `banned`, …). This is the line fail2ban's filter matches.
pub fn sign_in_failed(
    method: &str,
    client: Option<IpAddr>,
    tenant: &str,
    typed: &str,
    reason: &str,
) {
    tracing::warn!(
        target: AUDIT,
        event = "sign_in_failed",
        client = %Client(client),
        method,
        tenant,
        account = account(typed).as_str(),
        reason,
        "sign-in failed"
    );
}

/// A sign-in ban started by too many failures: on the account from this address
/// (`scope = "account"`) or on the address (`"ip"`), until a unix time.
pub fn banned(scope: &str, client: Option<IpAddr>, tenant: &str, typed: Option<&str>, until: i64) {
    tracing::warn!(
        target: AUDIT,
        event = "sign_in_banned",
        client = %Client(client),
        scope,
        tenant,
        account = typed.map(account).unwrap_or_default().as_str(),
        until,
        "sign-in ban started"
    );
}

/// A session ended by its user (`how`: `logout`, `rp_logout`, `backchannel`).
pub fn logged_out(client: Option<IpAddr>, user_id: &str, how: &str) {
    tracing::info!(
        target: AUDIT,
        event = "logout",
        client = %Client(client),
        user_id,
        how,
        "session ended"
    );
}

/// Who made a change: a user id, or `cli` for the command line.
pub const CLI: &str = "cli";

/// An API token created (`action = "created"`) or revoked (`"revoked"`), by id, for its user.
pub fn api_token(action: &str, token_id: &str, user_id: &str, by: &str) {
    tracing::info!(
        target: AUDIT,
        event = "api_token",
        action,
        token_id,
        user_id,
        by,
        "API token changed"
    );
}

/// A contact credential created or revoked.
pub fn contact(action: &str, contact_id: &str, by: &str) {
    tracing::info!(
        target: AUDIT,
        event = "contact",
        action,
        contact_id,
        by,
        "contact changed"
    );
}

/// An application created, changed, (de)activated, deleted, or given a new secret.
pub fn app(action: &str, client_id: &str, by: &str) {
    tracing::info!(
        target: AUDIT,
        event = "app",
        action,
        client_id,
        by,
        "application changed"
    );
}

/// A user added, (de)activated or removed.
pub fn user(action: &str, user_id: &str, email: &str, by: &str) {
    tracing::info!(
        target: AUDIT,
        event = "user",
        action,
        user_id,
        email = account(email).as_str(),
        by,
        "user changed"
    );
}

/// A configuration reload, applied or refused (with how many problems).
pub fn config_reload(applied: bool, config: &str, problems: usize) {
    tracing::info!(
        target: AUDIT,
        event = "config_reload",
        outcome = if applied { "applied" } else { "refused" },
        config,
        problems,
        "configuration reload"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_accounts_are_bounded_and_lose_control_characters() {
        assert_eq!(account("ann@example.com"), "ann@example.com");
        assert_eq!(account("a\nINFO forged\r\x1b[0m"), "a?INFO forged??[0m");
        let long = "x".repeat(500);
        let cut = account(&long);
        assert_eq!(cut.chars().count(), MAX_ACCOUNT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
