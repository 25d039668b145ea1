//! `second_factor` (top level, and per tenant in `tenants[]`): whether people may, or must,
//! sign in with a second factor.

use serde::Deserialize;

/// The second-factor policy of a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    /// No second factor is offered or asked for; `two_factor` routes cannot be reached.
    Off,
    /// People may enrol one; those who did are asked for it at every sign-in.
    #[default]
    Optional,
    /// Everyone must: a user without a factor is sent to enrol after signing in, and a
    /// one-factor session reaches no route until it steps up.
    Required,
}

impl SecondFactor {
    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SecondFactor::Off => "off",
            SecondFactor::Optional => "optional",
            SecondFactor::Required => "required",
        }
    }
}
