//! Durations written as `90s`, `10m`, `12h`, `30d`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration read from a human-readable string such as `12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write e.g. 90s, 10m, 12h"
            ))
        })
    }
}
