//! frontdoor's own JSON APIs under `/api/v1/`: the login API for mobile and single-page apps
//! (`login`) and the management API behind Settings → Developers (`manage`). Errors use the
//! shared JSON envelope.

pub mod login;
pub mod manage;
