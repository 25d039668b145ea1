//! frontdoor's own JSON APIs under `/api/v1/`: the login API for mobile and single-page apps
//! (`login`), the management API behind Settings → Developers (`manage`) and a tenant's user
//! administration (`users`). Errors use the shared JSON envelope.

pub mod login;
pub mod manage;
pub mod users;
