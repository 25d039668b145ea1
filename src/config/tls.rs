//! The `tls` section: certificate files of the HTTPS listener, the HTTP→HTTPS redirect
//! listener and HSTS.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Dur, ListenAddr, Problem};

/// TLS on `listen`; without this section `listen` serves plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the two files are checked for a new certificate.
    #[serde(default = "default_reload_interval")]
    pub reload_interval: Dur,
    /// A plain-HTTP listener that answers every request with a redirect to https.
    #[serde(default)]
    pub redirect_http_listen: Option<ListenAddr>,
    /// `Strict-Transport-Security` on every HTTPS response.
    #[serde(default)]
    pub hsts: Option<HstsConfig>,
}

fn default_reload_interval() -> Dur {
    Dur(Duration::from_secs(5))
}

/// The `Strict-Transport-Security` header's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HstsConfig {
    /// How long browsers remember to use https only.
    #[serde(default = "default_max_age")]
    pub max_age: Dur,
    /// Whether subdomains are covered too.
    #[serde(default)]
    pub include_subdomains: bool,
    /// Whether the host may be put on browsers' preload lists.
    #[serde(default)]
    pub preload: bool,
}

fn default_max_age() -> Dur {
    Dur(Duration::from_secs(365 * 24 * 3600))
}

impl HstsConfig {
    /// The header value, e.g. `max-age=31536000; includeSubDomains`.
    pub fn header_value(&self) -> String {
        let mut v = format!("max-age={}", self.max_age.0.as_secs());
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

impl TlsConfig {
    /// Checks the addresses and loads the certificate and key once, so that a file that
    /// cannot be served is reported (with its key) before anything starts.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                key: key.into(),
                message,
            })
        };
        if self.reload_interval.0 < Duration::from_secs(1) {
            bad("tls.reload_interval", "must be at least 1s".into());
        }
        if let Err(e) = crate::tls::load_certified_key(&self.cert, &self.key) {
            bad(e.key(), e.message());
        }
    }
}

/// TLS towards a route's `https` upstream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM file of the CA certificates that sign the upstream's certificate, trusted for this
    /// route instead of the system's roots (an internal CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name sent as SNI and checked against the upstream's certificate; the upstream's
    /// host by default.
    #[serde(default)]
    pub sni: Option<String>,
}

impl UpstreamTls {
    /// Checks a route's `upstream_tls` (`route` is its key path) and loads its CA file once, so
    /// that a file that cannot serve is refused with its key.
    pub(super) fn validate(&self, route: &str, https: bool, problems: &mut Vec<Problem>) {
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                key: format!("{route}.upstream_tls{key}"),
                message,
            })
        };
        if !https {
            bad("", "applies only to an https upstream".into());
        }
        if let Some(Err(e)) = self.ca_file.as_deref().map(crate::tls::load_ca) {
            bad(".ca_file", e);
        }
        if let Some(sni) = &self.sni
            && !matches!(crate::gateway::host::parse(sni), Ok(p) if p.port.is_none())
        {
            bad(".sni", format!("`{sni}` is not a host name (without port)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const MINIMAL: &str =
        "listen: 127.0.0.1:8443\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8443\n";

    #[test]
    fn auto_secure_cookies_follow_tls() {
        let mut c = Config::from_yaml(MINIMAL).expect("valid");
        assert!(!c.secure_cookies());
        // Set directly: loading a `tls` section reads the certificate files.
        c.tls = Some(TlsConfig {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
            reload_interval: default_reload_interval(),
            redirect_http_listen: None,
            hsts: None,
        });
        assert!(
            c.secure_cookies(),
            "auto means Secure when frontdoor serves TLS"
        );
    }

    #[test]
    fn hsts_header_value() {
        let h = HstsConfig {
            max_age: default_max_age(),
            include_subdomains: true,
            preload: true,
        };
        assert_eq!(
            h.header_value(),
            "max-age=31536000; includeSubDomains; preload"
        );
    }

    #[test]
    fn tls_keys_are_named() {
        let e = Config::from_yaml(&format!("{MINIMAL}tls: {{ cert: /nonexistent/c.pem }}\n"))
            .expect_err("no key");
        assert!(e.to_string().contains("tls: missing field `key`"), "{e}");
        let e = Config::from_yaml(&format!(
            "{MINIMAL}tls: {{ cert: /nonexistent/c.pem, key: /nonexistent/k.pem }}\n"
        ))
        .expect_err("bad files");
        let msg = e.to_string();
        assert!(
            msg.contains("tls.cert: cannot read /nonexistent/c.pem"),
            "{msg}"
        );
        // An address is parsed with the file's syntax, before the files are read.
        let e = Config::from_yaml(&format!(
            "{MINIMAL}tls: {{ cert: /nonexistent/c.pem, key: /nonexistent/k.pem, redirect_http_listen: nowhere }}\n"
        ))
        .expect_err("bad address");
        let msg = e.to_string();
        assert!(msg.contains("tls.redirect_http_listen: `nowhere`"), "{msg}");
    }
}
