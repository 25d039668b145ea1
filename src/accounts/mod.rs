//! An account's life: changing one's password (`password`), resetting a forgotten one through
//! a mailed single-use link (`reset`), joining a tenant by invitation (`invite`), and a tenant
//! administrator's view of its users (`users`). The rules live here once; the pages
//! (`web::settings`, `web::password`, `web::invitation`), the JSON API (`api::users`) and the
//! CLI render them.

pub mod invite;
pub mod password;
pub mod reset;
pub mod users;

use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::provider::backchannel::Notifier;
use crate::state::State;

/// Ends every session of a user but `keep` (a raw session id): in the store, the session
/// cache, and, in the background, at the apps that got tokens in them (back-channel logout),
/// as any other end of a session. Returns how many were ended.
pub async fn end_sessions(
    state: &State,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, Error> {
    let ended = state.sessions.end_user(user_id, keep).await?;
    let count = ended.len();
    Notifier::of(state).sessions_ended(ended);
    Ok(count)
}

/// The URL of a link's page (`path`, without its secret) for `tenant`: on `host`, the host
/// the request came on, when that is one of frontdoor's own hosts of the same tenant (the
/// router has checked it is one of frontdoor's own); else on the tenant's first configured
/// host; else on `public_url`'s. A link never points at a host the operator did not name.
pub fn link(config: &Config, host: Option<&str>, tenant: &str, path: &str) -> Url {
    let own = host.filter(|h| config.is_own_host(h) && config.tenant_for_host(h) == tenant);
    let named = config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .and_then(|t| t.hosts.first())
        .map(String::as_str);
    let mut url = config.public_url().clone();
    if let Some(h) = own.or(named)
        && url.set_host(Some(h)).is_err()
    {
        url = config.public_url().clone();
    }
    url.set_path(path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Whole seconds of a configured lifetime.
fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_named_hosts_of_their_tenant_only() {
        let config = Config::from_yaml(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\n\
             public_url: https://sso.example.com:8443/\n\
             tenants: [{ id: acme, hosts: [acme.example.com, acme2.example.com] }]\n",
        )
        .expect("valid");
        let at = |host, tenant| link(&config, host, tenant, "/x").to_string();
        assert_eq!(
            at(Some("acme2.example.com"), "acme"),
            "https://acme2.example.com:8443/x"
        );
        assert_eq!(at(None, "acme"), "https://acme.example.com:8443/x");
        assert_eq!(
            at(Some("evil.example"), "acme"),
            "https://acme.example.com:8443/x"
        );
        assert_eq!(
            at(Some("sso.example.com"), "acme"),
            "https://acme.example.com:8443/x",
            "another tenant's host is not this tenant's"
        );
        assert_eq!(
            at(Some("evil.example"), "default"),
            "https://sso.example.com:8443/x"
        );
    }
}
