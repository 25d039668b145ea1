//! frontdoor: an SSO front door for internal tools, built on Pingora, with an embedded
//! OAuth 2.0 / OpenID Connect provider.

pub mod config;
pub mod secrets;
pub mod store;
