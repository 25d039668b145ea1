//! Brute-force regulation: failed sign-ins (passwords and one-time codes) counted per account
//! and client address together, and per client address, in the store, so that every node sees
//! the same counts and bans; code mails counted per account and per address; and per-address
//! request rates of the token and sign-in endpoints (see [`rate`]).
//!
//! Failures are never counted per account alone: then anyone, from anywhere, could lock anyone
//! out with a few wrong passwords. An attacker's address is banned from the account it tries
//! (and, past the per-address bound, from every account), while the owner signing in from
//! their own address is not held back by it.

pub mod rate;

use std::net::{IpAddr, Ipv6Addr};

use crate::clock::now;
use crate::config::RegulationConfig;
use crate::error::Error;
use crate::secrets::hash_secret;
use crate::store::{FailurePolicy, LoginFailures, Store, StoreError};

pub use rate::RateLimit;

/// What a ban was counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One account (tenant and email) from one client address.
    Account,
    /// One client address.
    Ip,
}

impl Scope {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Ip => "ip",
        }
    }
}

/// A ban in force: sign-ins are refused without checking the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banned {
    /// Seconds until it ends (at least 1), for `Retry-After`.
    pub retry_after: u64,
}

impl Banned {
    fn until(until: i64, now: i64) -> Banned {
        Banned {
            retry_after: u64::try_from(until - now).unwrap_or(0).max(1),
        }
    }

    /// Whole minutes to wait, rounded up, in words: "1 minute", "15 minutes".
    fn minutes(&self) -> String {
        match self.retry_after.div_ceil(60) {
            1 => "1 minute".to_string(),
            n => format!("{n} minutes"),
        }
    }

    /// The sentence the login pages show.
    pub fn message(&self) -> String {
        format!("Too many failed sign-ins. Try again in {}.", self.minutes())
    }

    /// The error: 429 `too_many_attempts` with `Retry-After`.
    pub fn error(&self) -> Error {
        Error::TooMany {
            code: "too_many_attempts",
            message: format!("too many failed sign-ins; try again in {}", self.minutes()),
            retry_after: self.retry_after,
        }
    }
}

/// Why a sign-in may not be tried now.
#[derive(Debug)]
pub enum Refused {
    /// A ban is in force.
    Banned(Banned),
    /// The store could not say.
    Store(StoreError),
}

/// Who one sign-in attempt counts against.
#[derive(Debug)]
pub struct Attempt {
    tenant: String,
    email: String,
    account: String,
    ip: Option<(IpAddr, String)>,
    /// Whether the account had failures counted before (only then is success a write).
    account_failed_before: bool,
}

/// Failure counting and bans, and the per-address request rates.
pub struct Regulation {
    account: Option<FailurePolicy>,
    ip: Option<FailurePolicy>,
    mail_account: Option<FailurePolicy>,
    mail_ip: Option<FailurePolicy>,
    /// Requests per address to the token endpoints.
    pub token_rate: RateLimit,
    /// Requests per address to the sign-in endpoints.
    pub login_rate: RateLimit,
}

impl Regulation {
    /// From the config's `regulation` section.
    pub fn new(config: &RegulationConfig) -> Regulation {
        let policy = |limit: u32, ban: std::time::Duration| {
            (limit > 0).then(|| FailurePolicy {
                window: secs(config.window.0),
                limit,
                ban: secs(ban),
            })
        };
        Regulation {
            account: policy(config.max_failures_per_account, config.ban.0),
            ip: policy(config.max_failures_per_ip, config.ban.0),
            // Mails are counted like failures; past the limit none goes out for a window.
            mail_account: policy(config.max_code_mails_per_account, config.window.0),
            mail_ip: policy(config.max_code_mails_per_ip, config.window.0),
            token_rate: RateLimit::new(&config.token_rate),
            login_rate: RateLimit::new(&config.login_rate),
        }
    }

    /// Before checking credentials: one read of the account's and the address's counts;
    /// refused while either is banned, so a banned subject never costs an Argon2 check.
    pub async fn admit(
        &self,
        store: &dyn Store,
        tenant: &str,
        email: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Attempt, Refused> {
        let mut attempt = Attempt {
            tenant: tenant.to_string(),
            email: email.to_string(),
            account: account_subject(tenant, email, client_ip),
            ip: client_ip.map(|ip| (ip, ip_subject(ip))),
            account_failed_before: false,
        };
        let mut subjects = Vec::with_capacity(2);
        if self.account.is_some() {
            subjects.push(attempt.account.clone());
        }
        if let (Some(_), Some((_, s))) = (self.ip, &attempt.ip) {
            subjects.push(s.clone());
        }
        if subjects.is_empty() {
            return Ok(attempt);
        }
        let rows = store
            .login_failures(&subjects)
            .await
            .map_err(Refused::Store)?;
        let now = now();
        if let Some(until) = rows
            .iter()
            .filter(|r| r.banned_at(now))
            .filter_map(|r| r.banned_until)
            .max()
        {
            return Err(Refused::Banned(Banned::until(until, now)));
        }
        attempt.account_failed_before = rows
            .iter()
            .any(|r: &LoginFailures| r.subject == attempt.account && r.failures > 0);
        Ok(attempt)
    }

    /// After wrong credentials: counts the failure against the account and the address; the
    /// ban it started, if it reached a limit. Store errors are logged, not answered: the
    /// caller refuses the sign-in either way.
    pub async fn failed(&self, store: &dyn Store, attempt: &Attempt) -> Option<Banned> {
        let now = now();
        let mut banned: Option<Banned> = None;
        let subjects = [
            (Scope::Account, self.account, Some(attempt.account.as_str())),
            (
                Scope::Ip,
                self.ip,
                attempt.ip.as_ref().map(|(_, s)| s.as_str()),
            ),
        ];
        for (scope, policy, subject) in subjects {
            let (Some(policy), Some(subject)) = (policy, subject) else {
                continue;
            };
            match store.record_login_failure(subject, now, &policy).await {
                Ok(Some(until)) => {
                    crate::metrics::regulation_ban(scope.label());
                    crate::audit::banned(
                        scope.label(),
                        attempt.ip.as_ref().map(|(ip, _)| *ip),
                        &attempt.tenant,
                        matches!(scope, Scope::Account).then_some(attempt.email.as_str()),
                        until,
                    );
                    let b = Banned::until(until, now);
                    banned = Some(banned.map_or(b, |o| o.max_with(b)));
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "store error counting a failed sign-in"),
            }
        }
        banned
    }

    /// After a successful sign-in: forgets the failures of the account from this address, when
    /// it had any. The address's own count is kept: one good account must not reset an address
    /// that tries many.
    pub async fn succeeded(&self, store: &dyn Store, attempt: &Attempt) {
        if !attempt.account_failed_before {
            return;
        }
        if let Err(e) = store.clear_login_failures(&attempt.account, now()).await {
            tracing::error!(error = %e, "store error clearing failed sign-ins");
        }
    }

    /// Whether a one-time code may be mailed for this account, asked from this address: at
    /// most `max_code_mails_per_account` and `max_code_mails_per_ip` per window, so that nobody
    /// floods a mailbox or the outbox. Counted whether or not the account exists, so that the
    /// throttle tells nothing about accounts.
    pub async fn code_mail_allowed(
        &self,
        store: &dyn Store,
        tenant: &str,
        email: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<bool, StoreError> {
        let subjects: Vec<(FailurePolicy, String)> = [
            self.mail_account
                .map(|p| (p, format!("mail:{}", account_subject(tenant, email, None)))),
            self.mail_ip
                .zip(client_ip)
                .map(|(p, ip)| (p, format!("mail:{}", ip_subject(ip)))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if subjects.is_empty() {
            return Ok(true);
        }
        let now = now();
        // Counted first, then read: of asks racing on other nodes, only those before the limit
        // see no ban. The ask that reaches the limit starts the ban and still gets its mail.
        let mut started = Vec::new();
        for (policy, subject) in &subjects {
            if store
                .record_login_failure(subject, now, policy)
                .await?
                .is_some()
            {
                started.push(subject.as_str());
            }
        }
        let names: Vec<String> = subjects.iter().map(|(_, s)| s.clone()).collect();
        let rows = store.login_failures(&names).await?;
        Ok(!rows
            .iter()
            .any(|r| r.banned_at(now) && !started.contains(&r.subject.as_str())))
    }
}

impl Banned {
    fn max_with(self, other: Banned) -> Banned {
        Banned {
            retry_after: self.retry_after.max(other.retry_after),
        }
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// The stored subject of an account as tried from one client address (or from anywhere, for
/// `None`): hashed, so that the table holds no email addresses.
fn account_subject(tenant: &str, email: &str, client_ip: Option<IpAddr>) -> String {
    let from = client_ip.map_or_else(|| "-".to_string(), |ip| address_key(ip).to_string());
    format!(
        "account:{}",
        hash_secret(&format!("{tenant}\n{email}\n{from}"))
    )
}

fn ip_subject(ip: IpAddr) -> String {
    format!("ip:{}", address_key(ip))
}

/// The address a client is counted under: IPv4 as is (also when mapped into IPv6), IPv6 by
/// its /64, the smallest block a single client usually holds.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_messages_round_minutes_up() {
        let b = Banned { retry_after: 3 };
        assert_eq!(
            b.message(),
            "Too many failed sign-ins. Try again in 1 minute."
        );
        let b = Banned { retry_after: 890 };
        assert_eq!(
            b.message(),
            "Too many failed sign-ins. Try again in 15 minutes."
        );
        let e = b.error();
        assert_eq!(
            (e.status().as_u16(), e.code(), e.retry_after()),
            (429, "too_many_attempts", Some(890))
        );
    }

    #[test]
    fn addresses_are_counted_by_client() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            account_subject("default", "a@example.com", None),
            account_subject("other", "a@example.com", None)
        );
        // One account from two addresses: two counts; from one client's two IPv6 addresses
        // of a /64: one.
        assert_ne!(
            account_subject("default", "a@example.com", Some(ip("192.0.2.7"))),
            account_subject("default", "a@example.com", Some(ip("192.0.2.8")))
        );
        assert_eq!(
            account_subject("default", "a@example.com", Some(ip("2001:db8::1"))),
            account_subject("default", "a@example.com", Some(ip("2001:db8::2")))
        );
    }
}
