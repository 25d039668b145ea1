//! `webauthn`: the relying party of passkeys. Its id is `public_url`'s host unless set; the
//! origins a ceremony may come from are frontdoor's own (`public_url`'s and the tenants'
//! hosts, on `public_url`'s scheme and port).

use serde::Deserialize;

/// Passkeys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The relying party id: a registrable suffix of `public_url`'s host (default: that host).
    /// A passkey is bound to it: changing it orphans every passkey registered before.
    pub rp_id: Option<String>,
}

impl WebauthnConfig {
    /// The problems of these settings against `public_url`'s host, as (key, message).
    pub(super) fn problems(&self, public_host: &str) -> Vec<(String, String)> {
        let Some(rp_id) = &self.rp_id else {
            return Vec::new();
        };
        let valid = !rp_id.is_empty()
            && rp_id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        let message = if !valid {
            "must be a lowercase host name, without scheme or port (`example.com`)".to_string()
        } else if !suffix_of(rp_id, public_host) {
            format!(
                "must be public_url's host `{public_host}` or a domain it is under: a browser refuses any other"
            )
        } else {
            return Vec::new();
        };
        vec![("webauthn.rp_id".to_string(), message)]
    }
}

/// Whether `host` is `rp_id` or under it (`sso.example.com` under `example.com`).
pub fn suffix_of(rp_id: &str, host: &str) -> bool {
    host.eq_ignore_ascii_case(rp_id)
        || host.len().checked_sub(rp_id.len() + 1).is_some_and(|cut| {
            host.is_char_boundary(cut)
                && host[cut..].starts_with('.')
                && host[cut + 1..].eq_ignore_ascii_case(rp_id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_id_is_the_host_or_a_domain_above_it() {
        assert!(suffix_of("example.com", "sso.example.com"));
        assert!(suffix_of("sso.example.com", "sso.example.com"));
        assert!(!suffix_of("example.com", "sso.badexample.com"));
        assert!(!suffix_of("other.com", "sso.example.com"));
        let c = |id: &str| WebauthnConfig {
            rp_id: Some(id.into()),
        };
        assert!(c("example.com").problems("sso.example.com").is_empty());
        assert!(WebauthnConfig::default().problems("x").is_empty());
        let p = c("evil.com").problems("sso.example.com");
        assert_eq!(p[0].0, "webauthn.rp_id");
        assert!(p[0].1.contains("sso.example.com"), "{p:?}");
        assert!(
            c("https://example.com").problems("example.com")[0]
                .1
                .contains("without scheme")
        );
    }
}
