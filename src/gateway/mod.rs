//! The proxy: route matching, the credential and policy decision, identity headers.

pub mod decide;
pub mod forward_auth;
pub mod forwarded;
pub mod framing;
pub mod headers;
pub mod host;
pub mod login;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod routes;

pub use proxy::Gateway;
