//! A route's ordered access rules (`routes[].rules`): read and compiled once at load (methods,
//! anchored regexes and globs, CIDR ranges), then matched in order, the first match deciding.
//! The matching is the one used by `gateway::decide` for proxied and forward-auth requests and
//! by `frontdoor explain`; turning the matched rule into a verdict is `decide`'s.
//!
//! Invariant: imports nothing of the crate, so the configuration can hold these types.

use std::net::IpAddr;

use http::Method;
use serde::Deserialize;

/// What a matched rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RulePolicy {
    /// Refuse (403).
    Deny,
    /// Pass without asking for a credential; identity headers are still stripped.
    Bypass,
    /// Any valid credential (read-only credentials only for GET, HEAD and OPTIONS).
    Authenticated,
    /// A read-write credential: read-only ones are refused whatever the method.
    ReadWrite,
    /// A browser session signed in with two factors: a one-factor session is sent to step up,
    /// every other credential is refused (403).
    TwoFactor,
}

impl RulePolicy {
    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            RulePolicy::Deny => "deny",
            RulePolicy::Bypass => "bypass",
            RulePolicy::Authenticated => "authenticated",
            RulePolicy::ReadWrite => "read_write",
            RulePolicy::TwoFactor => "two_factor",
        }
    }
}

impl TryFrom<String> for RulePolicy {
    type Error = String;

    fn try_from(s: String) -> Result<RulePolicy, String> {
        Ok(match s.as_str() {
            "deny" => RulePolicy::Deny,
            "bypass" => RulePolicy::Bypass,
            "authenticated" => RulePolicy::Authenticated,
            "read_write" => RulePolicy::ReadWrite,
            "two_factor" => RulePolicy::TwoFactor,
            "one_factor" => {
                return Err(format!(
                    "`{s}` is spelled `authenticated` in frontdoor: any valid credential"
                ));
            }
            _ => {
                return Err(format!(
                    "`{s}` is not a policy: deny, bypass, authenticated, read_write or two_factor"
                ));
            }
        })
    }
}

/// An HTTP method, read in any case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MethodName(pub Method);

impl TryFrom<String> for MethodName {
    type Error = String;

    fn try_from(s: String) -> Result<MethodName, String> {
        Method::from_bytes(s.to_ascii_uppercase().as_bytes())
            .map(MethodName)
            .map_err(|_| format!("`{s}` is not an HTTP method"))
    }
}

/// A path pattern, matched against the whole canonical path: a regex when it starts with `^`
/// (anchored at both ends: `^/admin` does not match `/administrator`), else a glob (`*` within
/// one segment, `**` across segments).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPattern {
    /// As written, for `explain` and logs.
    pub text: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Regex(regex::Regex),
    Glob(globset::GlobMatcher),
}

impl PathPattern {
    /// Whether the canonical path matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Regex(r) => r.is_match(path),
            Matcher::Glob(g) => g.is_match(path),
        }
    }
}

impl TryFrom<String> for PathPattern {
    type Error = String;

    fn try_from(text: String) -> Result<PathPattern, String> {
        let matcher = if let Some(body) = text.strip_prefix('^') {
            // Anchored whatever the author wrote: a pattern is about the whole path.
            let anchored = format!("^(?:{body})$");
            Matcher::Regex(
                regex::Regex::new(&anchored)
                    .map_err(|e| format!("`{text}` is not a regex: {}", one_line(&e)))?,
            )
        } else if text.starts_with('/') {
            Matcher::Glob(
                globset::GlobBuilder::new(&text)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("`{text}` is not a glob: {e}"))?
                    .compile_matcher(),
            )
        } else {
            return Err(format!(
                "`{text}` is neither a glob (starting with `/`) nor a regex (starting with `^`)"
            ));
        };
        Ok(PathPattern { text, matcher })
    }
}

/// The regex crate's errors span several lines (the pattern and a caret).
fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("invalid")
        .to_string()
}

/// A client address range, read as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network(pub ipnet::IpNet);

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(s: String) -> Result<Network, String> {
        parse_net(&s).map(Network)
    }
}

/// An address or CIDR range (`trusted_proxies` and `networks` alike).
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))
}

/// One rule: every condition given must hold (any value of each list), then `policy` decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Methods (any of).
    #[serde(default)]
    pub methods: Vec<MethodName>,
    /// Canonical-path patterns (any of).
    #[serde(default)]
    pub paths: Vec<PathPattern>,
    /// Client address ranges (any of); the address from `X-Forwarded-For` only when the peer
    /// is a trusted proxy.
    #[serde(default)]
    pub networks: Vec<Network>,
    /// Caller's user or email (any of, case-insensitive).
    #[serde(default)]
    pub users: Vec<String>,
    /// Caller's groups (any of).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Caller's roles (any of).
    #[serde(default)]
    pub roles: Vec<String>,
    /// What the rule does.
    pub policy: RulePolicy,
}

/// The request as the rules see it: already normalised.
pub struct Target<'a> {
    /// The method.
    pub method: &'a Method,
    /// The canonical path.
    pub path: &'a str,
    /// The client's address (see `Rule::networks`).
    pub client: Option<IpAddr>,
}

/// A verified caller as the rules see it.
pub struct Who<'a> {
    /// The login (email, `app:…`, `contact:…`).
    pub user: &'a str,
    /// Email, possibly empty.
    pub email: &'a str,
    /// Groups.
    pub groups: &'a [String],
    /// Roles.
    pub roles: &'a [String],
}

/// How much is known of the caller while matching.
pub enum Caller<'a> {
    /// The credential was not looked at yet.
    Unresolved,
    /// No credential.
    Anonymous,
    /// A verified credential.
    Known(Who<'a>),
}

/// The outcome of matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// This rule (its index) decides. With an anonymous caller it may be a rule about users,
    /// groups or roles: the caller has to sign in to know.
    Rule(usize),
    /// A rule matches the request but depends on the caller: resolve the credential, then
    /// match again with it.
    NeedsCaller,
    /// No rule matches: denied.
    Nothing,
}

impl Rule {
    /// Whether the rule names users, groups or roles.
    pub fn about_caller(&self) -> bool {
        !(self.users.is_empty() && self.groups.is_empty() && self.roles.is_empty())
    }

    /// Whether deciding with this rule needs the credential.
    pub fn needs_caller(&self) -> bool {
        self.about_caller()
            || matches!(
                self.policy,
                RulePolicy::Authenticated | RulePolicy::ReadWrite | RulePolicy::TwoFactor
            )
    }

    /// Whether the rule has no condition at all: it matches every request.
    pub fn is_catch_all(&self) -> bool {
        !self.about_caller()
            && self.methods.is_empty()
            && self.paths.is_empty()
            && self.networks.is_empty()
    }

    fn matches_target(&self, t: &Target<'_>) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.0 == *t.method))
            && (self.paths.is_empty() || self.paths.iter().any(|p| p.matches(t.path)))
            && (self.networks.is_empty()
                || t.client.is_some_and(|ip| {
                    let ip = ip.to_canonical();
                    self.networks.iter().any(|n| n.0.contains(&ip))
                }))
    }

    fn matches_who(&self, w: &Who<'_>) -> bool {
        let any = |wanted: &[String], have: &[String]| {
            wanted.is_empty() || wanted.iter().any(|x| have.contains(x))
        };
        (self.users.is_empty()
            || self.users.iter().any(|u| {
                u.eq_ignore_ascii_case(w.user)
                    || (!w.email.is_empty() && u.eq_ignore_ascii_case(w.email))
            }))
            && any(&self.groups, w.groups)
            && any(&self.roles, w.roles)
    }

    /// The rule in one line, as written: `methods=[POST] paths=[/api/**] → read_write`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut list = |key: &str, values: Vec<String>| {
            if !values.is_empty() {
                parts.push(format!("{key}=[{}]", values.join(", ")));
            }
        };
        list(
            "methods",
            self.methods.iter().map(|m| m.0.to_string()).collect(),
        );
        list("paths", self.paths.iter().map(|p| p.text.clone()).collect());
        list(
            "networks",
            self.networks.iter().map(|n| n.0.to_string()).collect(),
        );
        list("users", self.users.clone());
        list("groups", self.groups.clone());
        list("roles", self.roles.clone());
        if parts.is_empty() {
            parts.push("every request".into());
        }
        format!("{} → {}", parts.join(" "), self.policy.name())
    }
}

/// The first rule that decides the request: rules are tried in order, and the credential is
/// needed only once a rule that depends on it matches the request, so `bypass` and `deny`
/// rules ahead of it never touch the store.
pub fn first_match(rules: &[Rule], target: &Target<'_>, caller: &Caller<'_>) -> Match {
    for (i, rule) in rules.iter().enumerate() {
        if !rule.matches_target(target) {
            continue;
        }
        if !rule.about_caller() {
            if rule.needs_caller() && matches!(caller, Caller::Unresolved) {
                return Match::NeedsCaller;
            }
            return Match::Rule(i);
        }
        match caller {
            Caller::Unresolved => return Match::NeedsCaller,
            Caller::Anonymous => return Match::Rule(i),
            Caller::Known(who) if rule.matches_who(who) => return Match::Rule(i),
            Caller::Known(_) => {}
        }
    }
    Match::Nothing
}

/// What is wrong with a route's rules as a whole: `(key below the route, message)`.
pub fn problems(rules: &[Rule]) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (j, rule) in rules.iter().enumerate() {
        if let Some(k) = catch_all {
            p.push((
                format!("rules[{j}]"),
                format!("unreachable: rules[{k}] has no condition and matches every request"),
            ));
        } else if rule.is_catch_all() {
            catch_all = Some(j);
        }
        if rule.policy == RulePolicy::Bypass && rule.about_caller() {
            p.push((
                format!("rules[{j}].policy"),
                "`bypass` asks for no credential, so it cannot depend on users, groups or roles"
                    .into(),
            ));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        serde_yaml::from_str(yaml).expect("rules")
    }

    fn target<'a>(method: &'a Method, path: &'a str, client: Option<&str>) -> Target<'a> {
        Target {
            method,
            path,
            client: client.map(|c| c.parse().expect("ip")),
        }
    }

    #[test]
    fn regexes_are_anchored_and_globs_stay_in_segments() {
        let p = |s: &str| PathPattern::try_from(s.to_string()).expect("pattern");
        assert!(p("^/admin").matches("/admin"));
        assert!(!p("^/admin").matches("/administrator"));
        assert!(!p("^/admin").matches("/x/admin"));
        assert!(p("^/admin.*").matches("/administrator"));
        assert!(p("^/admin(/.*)?$").matches("/admin/x"));
        assert!(p("/api/*").matches("/api/x"));
        assert!(!p("/api/*").matches("/api/x/y"));
        assert!(p("/api/**").matches("/api/x/y"));
        assert!(!p("/api/**").matches("/apis/x"));
        for bad in ["^(", "admin", "/a[", ""] {
            assert!(PathPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_match_asks_for_the_caller_only_when_a_rule_needs_it() {
        let r = rules(
            "- { paths: [/healthz], policy: bypass }\n- { networks: [10.0.0.0/8], policy: deny }\n- { methods: [post], groups: [admins], policy: read_write }\n- { groups: [staff], policy: authenticated }\n",
        );
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            first_match(&r, &target(&get, "/healthz", None), &Caller::Unresolved),
            Match::Rule(0)
        );
        assert_eq!(
            first_match(
                &r,
                &target(&get, "/x", Some("10.1.2.3")),
                &Caller::Unresolved
            ),
            Match::Rule(1)
        );
        assert_eq!(
            first_match(
                &r,
                &target(&get, "/x", Some("::ffff:10.1.2.3")),
                &Caller::Unresolved
            ),
            Match::Rule(1),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert_eq!(
            first_match(&r, &target(&post, "/x", None), &Caller::Unresolved),
            Match::NeedsCaller
        );
        let groups = ["staff".to_string()];
        let staff = Caller::Known(Who {
            user: "a@example.com",
            email: "a@example.com",
            groups: &groups,
            roles: &[],
        });
        assert_eq!(
            first_match(&r, &target(&post, "/x", None), &staff),
            Match::Rule(3)
        );
        assert_eq!(
            first_match(&r, &target(&post, "/x", None), &Caller::Anonymous),
            Match::Rule(2)
        );
        let nobody = Caller::Known(Who {
            user: "b@example.com",
            email: "",
            groups: &[],
            roles: &[],
        });
        assert_eq!(
            first_match(&r, &target(&get, "/x", None), &nobody),
            Match::Nothing
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        let r = rules(
            "- { policy: authenticated }\n- { paths: [/x], policy: deny }\n- { users: [a@b.c], policy: bypass }\n",
        );
        let keys: Vec<String> = problems(&r).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["rules[1]", "rules[2]", "rules[2].policy"]);
        assert_eq!(
            rules("- { policy: two_factor }")[0].policy,
            RulePolicy::TwoFactor
        );
        for bad in [
            "- { policy: one_factor }",
            "- { policy: allow }",
            "- { methods: ['GE T'], policy: deny }",
            "- { networks: [10.0.0.0/33], policy: deny }",
            "- { hosts: [x], policy: deny }",
        ] {
            assert!(serde_yaml::from_str::<Vec<Rule>>(bad).is_err(), "{bad}");
        }
    }
}
