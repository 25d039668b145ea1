//! `routes[].assertion`: a signed identity assertion for upstreams that verify rather than
//! trust the network. Written `assertion: true`, or as a map to choose the header, the
//! audience or a shorter lifetime.

use std::fmt;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::Dur;

/// The longest an assertion lives: it is a bearer credential for the upstream.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// A route's assertion settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    /// The header that carries it.
    #[serde(default = "default_header", deserialize_with = "header_name")]
    pub header: http::HeaderName,
    /// Its `aud`; the route's host when unset (the request's host on a `*` route).
    #[serde(default)]
    pub audience: Option<String>,
    /// How long one is valid, at most 5 minutes.
    #[serde(default = "default_lifetime")]
    pub lifetime: Dur,
}

fn default_header() -> http::HeaderName {
    http::HeaderName::from_static("x-frontdoor-assertion")
}

fn header_name<'de, D: Deserializer<'de>>(d: D) -> Result<http::HeaderName, D::Error> {
    let text = String::deserialize(d)?;
    super::header_to_send(&text).map_err(serde::de::Error::custom)
}
fn default_lifetime() -> Dur {
    Dur(MAX_ASSERTION_LIFETIME)
}

impl Default for AssertionConfig {
    fn default() -> Self {
        AssertionConfig {
            header: default_header(),
            audience: None,
            lifetime: default_lifetime(),
        }
    }
}

/// `true`, `false` or the settings map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assertion(pub Option<AssertionConfig>);

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Assertion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a map with header, audience and lifetime")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Assertion, E> {
                Ok(Assertion(on.then(AssertionConfig::default)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Assertion, A::Error> {
                let config = AssertionConfig::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                let lifetime = config.lifetime.0;
                if lifetime < Duration::from_secs(10) || lifetime > MAX_ASSERTION_LIFETIME {
                    return Err(serde::de::Error::custom(
                        "lifetime: must be between 10s and 5m",
                    ));
                }
                Ok(Assertion(Some(config)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "listen: 127.0.0.1:1\nadmin_listen: 127.0.0.1:2\npublic_url: http://localhost\nroutes:\n  - { host: wiki.localhost, upstream: 'http://127.0.0.1:3', assertion: ";

    fn parse(assertion: &str) -> Result<Config, String> {
        Config::from_yaml(&format!("{BASE}{assertion} }}\n")).map_err(|e| e.to_string())
    }

    #[test]
    fn true_false_and_the_map() {
        let on = parse("true").expect("true");
        let a = on.routes[0].assertion.0.as_ref().expect("on");
        assert_eq!(a.header, "x-frontdoor-assertion");
        assert_eq!(a.lifetime.0.as_secs(), 300);
        assert!(
            parse("false").expect("false").routes[0]
                .assertion
                .0
                .is_none()
        );
        let custom = parse("{ header: X-Who, audience: wiki, lifetime: 1m }").expect("map");
        let a = custom.routes[0].assertion.0.as_ref().expect("on");
        assert_eq!(
            (a.header.as_str(), a.audience.as_deref()),
            ("x-who", Some("wiki"))
        );
        assert_eq!(a.lifetime.0.as_secs(), 60);
    }

    #[test]
    fn bad_settings_are_named() {
        for (text, expected) in [
            ("maybe", "routes[0].assertion: invalid type"),
            (
                "{ lifetime: 10m }",
                "routes[0].assertion: lifetime: must be between 10s and 5m",
            ),
            ("{ header: 'a b' }", "`a b` is not a valid header name"),
            (
                "{ header: Content-Length }",
                "`Content-Length` is a framing or hop-by-hop header",
            ),
            ("{ audiance: x }", "unknown field `audiance`"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
