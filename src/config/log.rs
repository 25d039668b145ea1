//! The `log` section: the format of log lines, the level, and the access log.

use serde::{Deserialize, Deserializer};

/// How log lines are written and which are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (the default) or `json`, one object per line. Kept on reload.
    pub format: LogFormat,
    /// A level (`info`) or `tracing` filter directives (`warn,frontdoor::gateway=debug`);
    /// `RUST_LOG`, when set, wins. Applied on reload.
    pub level: LogLevel,
    /// One line per request on the target `frontdoor::access`, whatever `level` says.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            level: LogLevel("info".to_string()),
            access: true,
        }
    }
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// Filter directives checked at load, so that a typo is refused with its key rather than
/// silently logging nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(pub String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LogLevel, D::Error> {
        let text = String::deserialize(d)?;
        parse_level(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_level(text: &str) -> Result<LogLevel, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "empty; use a level such as info, or directives such as warn,frontdoor=debug".into(),
        );
    }
    // A bare word is a target to the filter ("loud" would log everything of a target named
    // loud): here a directive without `=` must be a level.
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |w: &str| LEVELS.contains(&w.trim().to_ascii_lowercase().as_str());
    let bad = text.split(',').find(|d| match d.rsplit_once('=') {
        Some((_, level)) => !is_level(level),
        None => !is_level(d),
    });
    let checked = match bad {
        Some(d) => Err(format!("{:?} names no level", d.trim())),
        None => tracing_subscriber::EnvFilter::builder()
            .with_regex(false)
            .parse(text)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    checked.map(|()| LogLevel(text.to_string())).map_err(|e| {
        format!(
            "{text:?} is not a level (error, warn, info, debug, trace, off) nor filter directives such as warn,frontdoor=debug: {e}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_checked() {
        assert_eq!(parse_level("debug").expect("level").0, "debug");
        assert!(parse_level("warn,frontdoor::gateway=debug").is_ok());
        assert!(parse_level("").is_err());
        let e = parse_level("loud").expect_err("not a level");
        assert!(e.contains("\"loud\" is not a level"), "{e}");
    }
}
