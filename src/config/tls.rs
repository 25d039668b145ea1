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
