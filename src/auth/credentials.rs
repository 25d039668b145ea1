//! From a request's credential to an `Identity`: Api-Token, Bearer JWT, X-Contact-Hash,
//! session cookie. Each verified credential is cached (moka) for the configured bound, so a
//! warm request makes no store round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use http::HeaderMap;

use super::cache::{BearerEntry, ContactEntry, TokenEntry};
use super::{Access, CredentialKind, Identity};
use crate::clock::now;
use crate::error::Error;
use crate::gateway::routes::Route;
use crate::grants::AccessError;
use crate::secrets::hash_secret;
use crate::session::Lookup;
use crate::state::State;
use crate::tokens::{self, OWN_CLIENT_ID};

/// The credential a request carries, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Api-Token: <token>`.
    ApiToken(&'a str),
    /// `Authorization: Bearer <jwt>`.
    Bearer(&'a str),
    /// `X-Contact-Hash: <hash>`.
    ContactHash(&'a str),
    /// The session cookie's value as sent (still percent-encoded and encrypted).
    Session(&'a str),
    /// Nothing.
    None,
}

/// The first credential present in the headers.
pub fn presented<'a>(headers: &'a HeaderMap, session_cookie: &str) -> Presented<'a> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = text("api-token") {
        return Presented::ApiToken(t);
    }
    if let Some(t) = tokens::bearer(headers) {
        return Presented::Bearer(t);
    }
    if let Some(h) = text("x-contact-hash") {
        return Presented::ContactHash(h);
    }
    // Found once, here: the session lookup opens this value rather than parsing the
    // `Cookie` header a second time.
    crate::endpoint::raw_cookie(headers, session_cookie).map_or(Presented::None, Presented::Session)
}

/// Why a presented credential was refused: metrics label and the answer.
pub type Refusal = (&'static str, Error);

/// Resolves a credential on a proxied route of `host`, for the canonical `path`. A route without
/// an `audience` takes frontdoor's own first-party tokens; one with an `audience` takes the
/// tokens issued for it.
pub async fn resolve(
    state: &State,
    presented: Presented<'_>,
    host: &str,
    path: &str,
    route: &Route,
) -> Result<Option<Arc<Identity>>, Refusal> {
    let audience = route.audience.as_deref().unwrap_or(&state.issuer);
    resolve_with(
        state,
        presented,
        host,
        path,
        audience,
        route.allow_contact_hash,
    )
    .await
}

/// Resolves a credential for frontdoor's own JSON API: first-party tokens issued for frontdoor
/// itself (never an app's), no contact hashes.
pub async fn resolve_for_api(
    state: &State,
    headers: &HeaderMap,
    host: &str,
) -> Result<Option<Arc<Identity>>, Refusal> {
    let presented = presented(headers, state.sessions.cookie_name());
    resolve_with(state, presented, host, "/", &state.issuer, false).await
}

async fn resolve_with(
    state: &State,
    presented: Presented<'_>,
    host: &str,
    path: &str,
    audience: &str,
    allow_contact_hash: bool,
) -> Result<Option<Arc<Identity>>, Refusal> {
    let tenant = state.config.tenant_for_host(host);
    match presented {
        Presented::None => Ok(None),
        Presented::ApiToken(t) => api_token(state, t, tenant)
            .await
            .map(Some)
            .map_err(|e| ("api_token", e)),
        Presented::Bearer(t) => bearer(state, t, tenant, audience)
            .await
            .map(Some)
            .map_err(|e| ("bearer", e)),
        Presented::ContactHash(h) if allow_contact_hash => contact(state, h, tenant, path)
            .await
            .map(Some)
            .map_err(|e| ("contact_hash", e)),
        Presented::ContactHash(_) => Err((
            "contact_hash",
            Error::unauthenticated(
                "invalid_token",
                "contact hashes are not accepted on this route",
            ),
        )),
        Presented::Session(sent) => {
            let Some(value) = crate::endpoint::decode_cookie_value(sent) else {
                return Ok(None);
            };
            let Some(raw) = state.sessions.id_from_cookie_value(&value) else {
                return Ok(None);
            };
            match state.sessions.lookup(&raw).await {
                Ok(Lookup::Active(s)) if s.identity.tenant == tenant => {
                    Ok(Some(s.identity.clone()))
                }
                Ok(_) => Ok(None),
                Err(e) => Err(("session", Error::from(e))),
            }
        }
    }
}

async fn api_token(state: &State, token: &str, tenant: &str) -> Result<Arc<Identity>, Error> {
    let invalid = || Error::unauthenticated("invalid_token", "unknown or revoked API token");
    let cache = &state.credentials.api_tokens;
    let entry = match cache.get(token) {
        Some(e) => e,
        None => {
            let Some(t) = state.store.find_api_token(&hash_secret(token)).await? else {
                return Err(invalid());
            };
            if t.revoked_at.is_some() {
                return Err(invalid());
            }
            let user = state
                .store
                .get_user(&t.user_id)
                .await?
                .filter(|u| u.active)
                .ok_or_else(invalid)?;
            let access = if t.read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            let e = Arc::new(TokenEntry {
                identity: Arc::new(Identity::for_user(&user, CredentialKind::ApiToken, access)),
                token_id: t.id.clone(),
                touched: AtomicI64::new(t.last_used_at.unwrap_or(0)),
            });
            cache.insert(token.to_string(), e.clone());
            e
        }
    };
    if entry.identity.tenant != tenant {
        // A resource of another tenant.
        return Err(Error::NotFound("no such resource in this tenant".into()));
    }
    // Record last use at most once a minute, off the request path.
    let now = now();
    let last = entry.touched.load(Ordering::Relaxed);
    if now - last >= 60
        && entry
            .touched
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let store = state.store.clone();
        let id = entry.token_id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_token(&id, now).await {
                tracing::warn!(error = %e, "could not record API token use");
            }
        });
    }
    Ok(entry.identity.clone())
}

async fn bearer(
    state: &State,
    token: &str,
    tenant: &str,
    audience: &str,
) -> Result<Arc<Identity>, Error> {
    let cache = &state.credentials.bearer;
    let entry = match cache.get(token) {
        Some(e) => {
            if e.exp + crate::keys::LEEWAY <= now() {
                return Err(Error::unauthenticated("invalid_token", "token expired"));
            }
            match state.grants.active(&e.gid, &e.client_id).await {
                Ok(true) => e,
                Ok(false) => return Err(Error::unauthenticated("invalid_token", "token revoked")),
                Err(err) => return Err(err.into()),
            }
        }
        None => {
            let claims = state
                .grants
                .verify(token, None)
                .await
                .map_err(|e| match e {
                    AccessError::Unavailable => {
                        Error::Unavailable("the store is unavailable".into())
                    }
                    other => Error::unauthenticated("invalid_token", other.to_string()),
                })?;
            let first_party = claims.client_id == OWN_CLIENT_ID && !tokens::is_app_token(&claims);
            let identity = if tokens::is_app_token(&claims) {
                let app = state
                    .store
                    .get_app(&claims.client_id)
                    .await?
                    .filter(|a| a.active)
                    .ok_or_else(|| {
                        Error::unauthenticated("invalid_token", "the application is not active")
                    })?;
                Identity::new(
                    app.client_id.clone(),
                    format!("app:{}", app.client_id),
                    String::new(),
                    app.name.clone(),
                    Vec::new(),
                    Vec::new(),
                    claims.tnt.clone(),
                    Access::ReadWrite,
                    CredentialKind::Bearer,
                )
            } else {
                let user = state
                    .store
                    .get_user(&claims.sub)
                    .await?
                    .filter(|u| u.active)
                    .ok_or_else(|| {
                        Error::unauthenticated("invalid_token", "the user no longer exists")
                    })?;
                // Bound to the tenant it was issued on, not the one the user is in now.
                if user.tenant != claims.tnt {
                    return Err(Error::unauthenticated(
                        "invalid_token",
                        "the token belongs to another tenant",
                    ));
                }
                if first_party {
                    Identity::for_user(&user, CredentialKind::Bearer, Access::ReadWrite)
                } else {
                    scoped_identity(&user, &claims.scope)
                }
            };
            let e = Arc::new(BearerEntry {
                identity: Arc::new(identity),
                aud: claims.aud.clone(),
                first_party,
                exp: claims.exp,
                gid: claims.gid.clone(),
                client_id: claims.client_id.clone(),
            });
            cache.insert(token.to_string(), e.clone());
            e
        }
    };
    // frontdoor's own audience is for its own tokens only: an app's token never speaks for
    // the user at frontdoor's API or on a route that names no audience.
    if entry.aud != audience || (audience == state.issuer && !entry.first_party) {
        return Err(Error::unauthenticated(
            "invalid_token",
            "the token was issued for another audience",
        ));
    }
    if entry.identity.tenant != tenant {
        return Err(Error::unauthenticated(
            "invalid_token",
            "the token belongs to another tenant",
        ));
    }
    Ok(entry.identity.clone())
}

/// The identity an app's user token shows: only what its scopes reveal (`email` the address,
/// which is also the login; `profile` the name; `groups`, `roles`). Without `email` the login
/// is the user's id.
fn scoped_identity(user: &crate::store::User, scope: &str) -> Identity {
    let has = |s| crate::provider::scopes::contains(scope, s);
    let email = if has("email") {
        user.email.clone()
    } else {
        String::new()
    };
    Identity::new(
        user.id.clone(),
        if has("email") {
            user.email.clone()
        } else {
            user.id.clone()
        },
        email,
        if has("profile") {
            user.name.clone()
        } else {
            String::new()
        },
        if has("groups") {
            user.groups.clone()
        } else {
            Vec::new()
        },
        if has("roles") {
            user.roles.clone()
        } else {
            Vec::new()
        },
        user.tenant.clone(),
        Access::ReadWrite,
        CredentialKind::Bearer,
    )
}

async fn contact(
    state: &State,
    hash: &str,
    tenant: &str,
    path: &str,
) -> Result<Arc<Identity>, Error> {
    let invalid =
        || Error::unauthenticated("invalid_token", "unknown, expired or revoked contact hash");
    let cache = &state.credentials.contacts;
    let entry = match cache.get(hash) {
        Some(e) => e,
        None => {
            let c = state
                .store
                .find_contact(&hash_secret(hash))
                .await?
                .filter(|c| !c.revoked)
                .ok_or_else(invalid)?;
            let e = Arc::new(ContactEntry {
                identity: Arc::new(Identity::new(
                    c.id.clone(),
                    format!("contact:{}", c.id),
                    c.email.clone(),
                    String::new(),
                    Vec::new(),
                    Vec::new(),
                    c.tenant.clone(),
                    Access::ReadWrite,
                    CredentialKind::ContactHash,
                )),
                path_prefix: c.path_prefix.clone(),
                expires_at: c.expires_at,
            });
            cache.insert(hash.to_string(), e.clone());
            e
        }
    };
    if entry.expires_at <= now() {
        return Err(invalid());
    }
    if entry.identity.tenant != tenant {
        return Err(Error::NotFound("no such resource in this tenant".into()));
    }
    if !crate::gateway::routes::prefix_matches(&entry.path_prefix, path) {
        return Err(Error::Forbidden(
            "this contact link is not valid for this page".into(),
        ));
    }
    Ok(entry.identity.clone())
}
