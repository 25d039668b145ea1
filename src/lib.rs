//! frontdoor: an SSO front door for internal tools, built on Pingora, with an embedded
//! OAuth 2.0 / OpenID Connect provider.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod email;
pub mod endpoint;
pub mod error;
pub mod federation;
pub mod gateway;
pub mod grants;
pub mod keys;
pub mod logging;
pub mod mail;
pub mod manage;
pub mod metrics;
pub mod private_fs;
pub mod provider;
pub mod redact;
pub mod regulation;
pub mod reload;
pub mod revocation;
pub mod router;
pub mod secrets;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod web;
