//! Who is calling: the `Identity` every credential resolves to.

pub mod cache;
pub mod credentials;
mod identity;

pub use identity::{Access, CredentialKind, Identity};
