//! Instant revocation across nodes on PostgreSQL: every node LISTENs on
//! `frontdoor_revocations` and forgets the cache entries a notification names.
//!
//! The PostgreSQL store sends the notifications with the change itself (see
//! `store::notify`), whichever node or CLI made it. Without them a node notices a revocation
//! only when its cache entries expire (`session.cache_ttl`); that bound stays the fallback
//! whenever the listener is down. Notifications sent while it was disconnected are lost, so
//! after reconnecting it forgets everything cached: the next requests ask the store again.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::state::{Live, State};
use crate::store::notify::{CHANNEL, Revoked};

/// Longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Forgets on this node what `revoked` names.
pub fn apply(state: &State, revoked: &Revoked) {
    match revoked {
        Revoked::Session(hash) => state.sessions.forget(std::slice::from_ref(hash)),
        Revoked::ApiToken(id) => state.credentials.forget_api_token(id),
        Revoked::Grant(gid) => state.grants.forget_grant(gid),
        Revoked::App(client_id) => {
            // The app cache of the token endpoint, and grant statuses (keyed by grant id,
            // which does not name the app).
            state.grants.forget_app(client_id);
            state.credentials.forget_app(client_id);
        }
        Revoked::User(id) => {
            state.sessions.forget_user(id);
            state.credentials.forget_user(id);
        }
        Revoked::Contact(id) => state.credentials.forget_contact(id),
    }
}

/// Listens for revocations on the PostgreSQL database at `url` for as long as the process
/// runs, reconnecting with backoff when the connection is lost. Run it on the background
/// runtime. The caches live on across reloads, so the state in effect at each notification
/// is the one to clear.
pub async fn listen(live: Arc<Live>, url: String) {
    // Down until the first subscription: a node that never reaches the database shows it.
    crate::metrics::set_revocation_listener_up(false);
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        match subscribe(&url).await {
            Ok(mut listener) => {
                if connected_before {
                    tracing::info!(
                        "revocation listener reconnected; forgetting cached credentials"
                    );
                    live.current().forget_all_credentials();
                } else {
                    tracing::info!(channel = CHANNEL, "listening for revocations");
                }
                connected_before = true;
                backoff = Duration::from_millis(100);
                crate::metrics::set_revocation_listener_up(true);
                receive(&live, &mut listener).await;
                crate::metrics::set_revocation_listener_up(false);
            }
            Err(e) => {
                crate::metrics::set_revocation_listener_up(false);
                tracing::warn!(error = %e, "revocation listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Applies notifications until the connection is lost.
async fn receive(live: &Live, listener: &mut PgListener) {
    // Reconnection is ours (in `listen`), so that it is followed by `State::forget_all_credentials`.
    listener.eager_reconnect(false);
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match Revoked::parse(n.payload()) {
                Some(revoked) => {
                    tracing::debug!(payload = n.payload(), "revocation received");
                    apply(&live.current(), &revoked);
                }
                None => tracing::warn!(payload = n.payload(), "unknown revocation notification"),
            },
            Ok(None) => {
                tracing::warn!("revocation listener lost its connection");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation listener failed");
                return;
            }
        }
    }
}
