//! OpenID Connect Back-Channel Logout 1.0, frontdoor as the provider: when a session ends,
//! every app that got a grant in it and registered a `backchannel_logout_uri` is sent a signed
//! logout token (`POST`, form field `logout_token`).
//!
//! In the background: the user's logout never waits for an app, and an app that is down
//! cannot fail it. Each delivery has a timeout and a few retries with backoff, and its
//! outcome is counted in `frontdoor_backchannel_logout_total{outcome}`. Nothing else is
//! revoked: the spec asks the app to end its own session; the app's grants and refresh tokens
//! stay as they are (an app that wants them gone revokes them, RFC 7009).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use openidconnect::reqwest;
use serde::Serialize;

use crate::keys::Keys;
use crate::store::{App, DynStore, EndedSession};

/// The `typ` of a logout token (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The event a logout token carries.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: long enough for the retries, short for a replay.
const TOKEN_TTL: i64 = 120;
/// Attempts per app, the first included.
const ATTEMPTS: u32 = 3;
/// The wait before the first retry; doubled before each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// One attempt's bound, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The claims of a logout token (§2.4): never a `nonce`, which would let it pass for an ID
/// token.
#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sid: &'a str,
    events: serde_json::Value,
}

/// Signs the logout token of `ended` for `client_id`.
fn logout_token(
    keys: &Keys,
    issuer: &str,
    client_id: &str,
    ended: &EndedSession,
    now: i64,
) -> Result<String, crate::keys::KeyError> {
    keys.sign(
        LOGOUT_TOKEN_TYP,
        &LogoutClaims {
            iss: issuer,
            sub: &ended.user_id,
            aud: client_id,
            iat: now,
            exp: now + TOKEN_TTL,
            jti: crate::tokens::new_jti(),
            sid: &ended.sid,
            events: serde_json::json!({ BACKCHANNEL_EVENT: {} }),
        },
    )
}

/// The client of the deliveries: no redirect followed (an app's URI could otherwise send
/// frontdoor's POST anywhere), each attempt bounded.
static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap_or_default()
});

/// The background deliveries not known to be finished: a process that is about to exit (the
/// CLI) waits for them with [`drain`] rather than dropping them.
static IN_FLIGHT: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for every delivery started in the background so far, retries included.
pub async fn drain() {
    let tasks = std::mem::take(&mut *IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()));
    for task in tasks {
        let _ = task.await;
    }
}

/// What the notifications of a session's end need, owned by the background task.
#[derive(Clone)]
pub struct Notifier {
    store: DynStore,
    keys: Arc<Keys>,
    issuer: String,
}

impl Notifier {
    /// A notifier outside a running server (the CLI).
    pub fn new(store: DynStore, keys: Arc<Keys>, issuer: String) -> Notifier {
        Notifier {
            store,
            keys,
            issuer,
        }
    }

    /// The notifier of this state.
    pub fn of(state: &crate::state::State) -> Notifier {
        Notifier::new(
            state.store.clone(),
            state.keys.clone(),
            state.issuer.clone(),
        )
    }

    /// Tells, in the background, every app that got a grant in the ended sessions.
    pub fn sessions_ended(&self, ended: Vec<EndedSession>) {
        if ended.is_empty() {
            return;
        }
        let this = self.clone();
        // Apps are told side by side (`deliver_all`): a slow one does not delay the others.
        let task = tokio::spawn(async move {
            let deliveries = this.deliveries(ended).await;
            this.deliver_all(deliveries).await;
        });
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.retain(|t| !t.is_finished());
        in_flight.push(task);
    }

    /// The apps to tell of the ended sessions, each with its session. Found before anything
    /// that deletes the sessions' grants (removing a user does).
    pub async fn deliveries(&self, ended: Vec<EndedSession>) -> Vec<(App, Arc<EndedSession>)> {
        let mut out = Vec::new();
        for session in ended {
            match self.store.logout_targets(&session.sid).await {
                Ok(apps) => {
                    let session = Arc::new(session);
                    out.extend(apps.into_iter().map(|app| (app, session.clone())));
                }
                Err(e) => {
                    tracing::error!(error = %e, "back-channel logout: cannot find the session's apps");
                }
            }
        }
        out
    }

    /// Delivers side by side and waits for every delivery, retries included; how many were
    /// delivered. For a process that exits afterwards (the CLI), where the background would
    /// be dropped.
    pub async fn deliver_all(&self, deliveries: Vec<(App, Arc<EndedSession>)>) -> usize {
        let mut set = tokio::task::JoinSet::new();
        for (app, session) in deliveries {
            let this = self.clone();
            set.spawn(async move { this.deliver(&app, &session).await });
        }
        set.join_all().await.into_iter().filter(|ok| *ok).count()
    }

    /// Whether the app acknowledged the token.
    async fn deliver(&self, app: &App, ended: &EndedSession) -> bool {
        let Some(uri) = app.backchannel_logout_uri.as_deref() else {
            return false;
        };
        let token = match logout_token(
            &self.keys,
            &self.issuer,
            &app.client_id,
            ended,
            crate::clock::now(),
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(client_id = %app.client_id, error = %e, "back-channel logout: cannot sign the logout token");
                crate::metrics::backchannel_logout(false);
                return false;
            }
        };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let why = match HTTP
                .post(uri)
                .form(&[("logout_token", token.as_str())])
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(client_id = %app.client_id, attempt, "back-channel logout delivered");
                    crate::metrics::backchannel_logout(true);
                    return true;
                }
                Ok(r) if !retryable(r.status()) => {
                    // The app refused the token (§2.8: 400): sending it again changes nothing.
                    tracing::warn!(client_id = %app.client_id, status = %r.status(), "back-channel logout refused by the app");
                    break;
                }
                Ok(r) => format!("status {}", r.status()),
                Err(e) => e.to_string(),
            };
            tracing::warn!(client_id = %app.client_id, attempt, error = %why, "back-channel logout attempt failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        crate::metrics::backchannel_logout(false);
        false
    }
}

/// Whether an answer may change on a later attempt.
fn retryable(status: http::StatusCode) -> bool {
    status.is_server_error()
        || status == http::StatusCode::TOO_MANY_REQUESTS
        || status == http::StatusCode::REQUEST_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_may_change_are_retried() {
        for s in [500, 502, 503, 429, 408] {
            assert!(retryable(http::StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 404, 410] {
            assert!(!retryable(http::StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn the_logout_token_has_the_claims_of_the_spec_and_no_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load(dir.path(), true, crate::keys::SigningAlgorithm::ES256).unwrap();
        let ended = EndedSession {
            id_hash: "h".into(),
            user_id: "u1".into(),
            sid: "s1".into(),
        };
        let jwt = logout_token(&keys, "https://fd.example", "app1", &ended, 1_000).unwrap();
        let part = |i: usize| -> serde_json::Value {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        let (header, claims) = (part(0), part(1));
        assert_eq!(header["typ"], "logout+jwt");
        assert!(header["kid"].is_string());
        assert_eq!(claims["iss"], "https://fd.example");
        assert_eq!(claims["aud"], "app1");
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["sid"], "s1");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_000 + TOKEN_TTL);
        assert!(claims["jti"].is_string());
        assert_eq!(
            claims["events"],
            serde_json::json!({ BACKCHANNEL_EVENT: {} })
        );
        assert!(claims.get("nonce").is_none());
    }
}
