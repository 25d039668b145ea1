//! `frontdoor explain`: which route and which rule decide a request, and why — found by the
//! gateway's own routing and `decide::judged`, so the explanation cannot drift from the
//! decision.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::{HeaderMap, Method};
use url::Url;

use super::decide::{Facts, Ruling, judged};
use super::routes::RouteTable;
use super::rules::Match;
use crate::auth::Identity;
use crate::config::Config;

/// The request to explain.
pub struct Question<'a> {
    /// The full URL.
    pub url: &'a Url,
    /// The method.
    pub method: &'a Method,
    /// The caller, verified; `None` for a request without a credential.
    pub identity: Option<&'a Identity>,
    /// The client's address as frontdoor sees it (after `trusted_proxies`).
    pub from: Option<IpAddr>,
}

/// A request that cannot be explained because frontdoor would refuse it before routing.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The URL's host or path is refused by `gateway::host` or `gateway::path`.
    #[error("{0}")]
    Refused(String),
}

/// The explanation, several lines of text.
pub fn explain(
    config: &Config,
    routes: &RouteTable,
    q: &Question<'_>,
) -> Result<String, ExplainError> {
    let authority = match (q.url.host_str(), q.url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(ExplainError::Refused("the URL has no host".into())),
    };
    let host = super::host::parse(&authority)
        .map_err(|e| ExplainError::Refused(e.to_string()))?
        .name;
    let path =
        super::path::canonical(q.url.path()).map_err(|e| ExplainError::Refused(e.to_string()))?;
    let mut out = String::new();
    let who = q.identity.map_or("no credential".to_string(), |id| {
        format!("{} ({}, {})", id.user, id.kind.label(), access(id))
    });
    let from = q.from.map_or(String::new(), |ip| format!(" from {ip}"));
    let _ = writeln!(out, "request: {} {host}{path}{from}, {who}", q.method);
    // The proxy asks the host model before any route, so explain does too.
    if let Some(own) = crate::router::own_path(config, &host, &path) {
        let _ = writeln!(
            out,
            "route:   none: frontdoor's own endpoint `{own}` on this host, never proxied"
        );
        let verdict = if config.is_own_host(&host) || crate::router::serves_app_hosts(&own) {
            "answered by frontdoor itself (routes and their rules do not apply)"
        } else {
            "not found (404): on a host that only routes to an app, frontdoor answers only its \
             sign-in callback, logout, forward-auth and page assets under reserved_prefix"
        };
        let _ = writeln!(out, "verdict: {verdict}");
        return Ok(out);
    }
    let Some(route) = routes.find(&host, &path) else {
        let why = if routes.serves_host(&host) {
            format!("no route of host `{host}` serves path `{path}`")
        } else {
            format!("unknown host: no route serves host `{host}`")
        };
        let _ = writeln!(out, "route:   none: {why}");
        let _ = writeln!(out, "verdict: not found (404)");
        return Ok(out);
    };
    let u = &route.upstream;
    let scheme = if u.tls { "https" } else { "http" };
    let _ = writeln!(
        out,
        "route:   {} → {scheme}://{}:{}",
        route.label, u.host, u.port
    );
    let headers = HeaderMap::new();
    let facts = Facts {
        method: q.method,
        headers: &headers,
        host: &host,
        path: &path,
        client: q.from,
    };
    let (matched, ruling) = judged(route, &facts, q.identity);
    let rule_line = match matched {
        None => format!(
            "none (the route has no rules): policy {}, groups [{}], roles [{}]",
            format!("{:?}", route.policy).to_lowercase(),
            route.groups.join(", "),
            route.roles.join(", ")
        ),
        Some(Match::Rule(i)) => match route.rules.get(i) {
            Some(rule) => format!("rules[{i}]: {}", rule.describe()),
            None => format!("rules[{i}]"),
        },
        Some(Match::Nothing) => "no rule matches: denied by default".into(),
        Some(Match::NeedsCaller) => "undecided without a caller".into(),
    };
    let _ = writeln!(out, "rule:    {rule_line}");
    let verdict = match ruling {
        Ruling::Allow => "allowed, with the caller's identity headers".to_string(),
        Ruling::Bypass => {
            "allowed without a credential (identity headers from the client stripped)".into()
        }
        Ruling::Challenge => {
            let hint = match matched {
                Some(Match::Rule(i)) if route.rules.get(i).is_some_and(|r| r.about_caller()) => {
                    " (the rule names users, groups or roles: pass --user to see it decide)"
                }
                _ => "",
            };
            format!(
                "a credential is needed: a browser is sent to sign in, other clients get 401{hint}"
            )
        }
        Ruling::StepUp => "two factors are needed and the caller proved one: a browser session \
             is sent to step up with its second factor, other clients get 403"
            .to_string(),
        Ruling::Refuse(_, e) => format!("refused ({}): {e}", e.status().as_u16()),
    };
    let _ = writeln!(out, "verdict: {verdict}");
    Ok(out)
}

fn access(id: &Identity) -> &'static str {
    match id.access {
        crate::auth::Access::ReadOnly => "read-only",
        crate::auth::Access::ReadWrite => "read-write",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Access, CredentialKind};
    use crate::config::Config;

    fn config() -> Config {
        Config::from_yaml(
            "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nroutes:\n  - host: wiki.localhost\n    upstream: 'http://127.0.0.1:9'\n    rules:\n      - { paths: [/healthz], policy: bypass }\n      - { methods: [POST], policy: read_write }\n      - { groups: [staff], policy: authenticated }\n",
        )
        .expect("config")
    }

    fn ask(url: &str, method: Method, identity: Option<&Identity>) -> String {
        let url = Url::parse(url).expect("url");
        let config = config();
        explain(
            &config,
            &RouteTable::new(&config),
            &Question {
                url: &url,
                method: &method,
                identity,
                from: None,
            },
        )
        .expect("explained")
    }

    fn alice(access: Access, groups: &[&str]) -> Identity {
        Identity::new(
            "1".into(),
            "alice@example.com".into(),
            "alice@example.com".into(),
            String::new(),
            groups.iter().map(|g| g.to_string()).collect(),
            vec![],
            "default".into(),
            access,
            CredentialKind::ApiToken,
        )
    }

    #[test]
    fn says_which_rule_decides_and_why() {
        let out = ask("http://wiki.localhost/healthz", Method::GET, None);
        assert!(out.contains("rules[0]: paths=[/healthz] → bypass"), "{out}");
        assert!(out.contains("allowed without a credential"), "{out}");
        let ro = alice(Access::ReadOnly, &["staff"]);
        let out = ask("http://wiki.localhost/x", Method::POST, Some(&ro));
        assert!(
            out.contains("rules[1]: methods=[POST] → read_write"),
            "{out}"
        );
        assert!(out.contains("refused (403)"), "{out}");
        let out = ask("http://wiki.localhost/x", Method::GET, Some(&ro));
        assert!(
            out.contains("rules[2]") && out.contains("verdict: allowed"),
            "{out}"
        );
        let out = ask("http://wiki.localhost/x", Method::GET, None);
        assert!(out.contains("pass --user"), "{out}");
        let nobody = alice(Access::ReadWrite, &[]);
        let out = ask("http://wiki.localhost/x", Method::GET, Some(&nobody));
        assert!(
            out.contains("denied by default") && out.contains("403"),
            "{out}"
        );
        let out = ask("http://other.localhost/x", Method::GET, None);
        assert!(out.contains("unknown host"), "{out}");
    }

    #[test]
    fn says_when_frontdoor_answers_a_path_itself() {
        let out = ask("http://localhost/oauth/token", Method::POST, None);
        assert!(
            out.contains("frontdoor's own endpoint `/oauth/token`")
                && out.contains("answered by frontdoor itself"),
            "{out}"
        );
        // On an app host the app's `/oauth/…` is the app's: the route decides.
        let out = ask("http://wiki.localhost/oauth/token", Method::POST, None);
        assert!(
            !out.contains("own endpoint") && out.contains("rules["),
            "{out}"
        );
        let out = ask("http://wiki.localhost/_frontdoor/logout", Method::GET, None);
        assert!(out.contains("answered by frontdoor itself"), "{out}");
        let out = ask("http://wiki.localhost/_frontdoor/login", Method::GET, None);
        assert!(out.contains("not found (404)"), "{out}");
    }

    #[test]
    fn a_two_factor_rule_says_who_steps_up() {
        let c = Config::from_yaml(
            "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nroutes:\n  - host: wiki.localhost\n    upstream: 'http://127.0.0.1:9'\n    rules: [ { policy: two_factor } ]\n",
        )
        .expect("config");
        let url = Url::parse("http://wiki.localhost/admin").expect("url");
        let ask = |identity: &Identity| {
            let q = Question {
                url: &url,
                method: &Method::GET,
                identity: Some(identity),
                from: None,
            };
            explain(&c, &RouteTable::new(&c), &q).expect("explained")
        };
        let one = alice(Access::ReadWrite, &[]);
        let out = ask(&one);
        assert!(
            out.contains("rules[0]: every request → two_factor"),
            "{out}"
        );
        assert!(out.contains("sent to step up"), "{out}");
        let out = ask(&one.clone().with_amr("pwd otp mfa"));
        assert!(out.contains("verdict: allowed"), "{out}");
    }
}
