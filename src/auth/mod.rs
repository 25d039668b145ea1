//! Who is calling: the `Identity` every credential resolves to.

mod identity;

pub use identity::{Access, CredentialKind, Identity};
