//! An account's life after it exists: changing one's password (`password`) and resetting a
//! forgotten one through a mailed single-use link (`reset`). The rules live here; the pages
//! (`web::settings`, `web::password`) render them.

pub mod password;
pub mod reset;

use crate::error::Error;
use crate::provider::backchannel::Notifier;
use crate::state::State;

/// Ends every session of a user but `keep` (a raw session id): in the store, the session
/// cache, and, in the background, at the apps that got tokens in them (back-channel logout),
/// as any other end of a session. Returns how many were ended.
pub async fn end_sessions(
    state: &State,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, Error> {
    let ended = state.sessions.end_user(user_id, keep).await?;
    let count = ended.len();
    Notifier::of(state).sessions_ended(ended);
    Ok(count)
}
