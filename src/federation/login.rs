//! `/_frontdoor/idp/<id>/start` and `/_frontdoor/idp/<id>/callback`: the authorization code
//! flow with PKCE, state and nonce against the upstream provider, then a frontdoor session.

use std::str::FromStr;
use std::sync::Arc;

use cookie::{Cookie, SameSite};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use super::mapping::{self, ProviderClaims, Refused};
use super::{Discovered, HttpError, IdentityProvider, error_chain};
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::secrets::ct_eq;
use crate::state::State;
use crate::store::IdpSession;
use crate::web::{pages, return_to};

/// Cookie holding the pending upstream login (encrypted).
pub const PENDING_COOKIE: &str = "frontdoor_idp";
/// Clock skew allowed on an ID token's `iat` (seconds).
const CLOCK_SKEW: i64 = 60;
/// The longest an ID token may still be valid for when it arrives (seconds): a day. Providers
/// issue them for minutes to an hour; one valid for years is a forgery's or a misconfiguration's.
const MAX_ID_TOKEN_LIFETIME: i64 = 86_400;

/// Every claim beyond the standard ones (groups, roles, sid, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for ExtraClaims {}

/// The client type after discovery: auth URL set, token and userinfo URLs as discovered.
type FedClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

type ExtraIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

#[derive(Serialize, Deserialize)]
struct Pending {
    /// When the login started; a pending login is good for 10 minutes.
    #[serde(default)]
    started: i64,
    idp: String,
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    /// The tenant the sign-in started in; it finishes there or not at all.
    #[serde(default)]
    tenant: String,
}

/// The tenant a sign-in through `provider` belongs to when it arrives on `host`.
fn tenant_of(state: &State, provider: &IdentityProvider, host: &str) -> String {
    provider
        .config
        .tenant
        .clone()
        .unwrap_or_else(|| state.config.tenant_for_host(host).to_string())
}

/// The redirect URI registered at the provider.
pub fn redirect_uri(state: &State, idp: &str) -> String {
    format!("{}/_frontdoor/idp/{idp}/callback", state.issuer)
}

/// The start link of a provider's login button.
pub fn start_href(state: &State, idp: &str, target: &str) -> String {
    format!(
        "{}/_frontdoor/idp/{idp}/start?{}",
        state.issuer,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", target)
            .finish()
    )
}

fn unknown(state: &State) -> Reply {
    page(
        state,
        "Unknown sign-in option",
        &Error::NotFound("This sign-in option does not exist.".into()),
    )
}

/// An upstream sign-in that did not happen, as a page pointing back to the sign-in page.
fn page(state: &State, title: &str, e: &Error) -> Reply {
    pages::ErrorPage {
        org: state.org(),
        style: state.style_href(),
        title,
        link: Some(("/_frontdoor/login", "Back to sign-in")),
    }
    .render(e)
}

fn client(
    provider: &IdentityProvider,
    d: &Discovered,
    redirect: &str,
) -> Result<FedClient, String> {
    let redirect = RedirectUrl::new(redirect.to_string()).map_err(|e| e.to_string())?;
    Ok(CoreClient::from_provider_metadata(
        d.metadata.clone(),
        ClientId::new(provider.config.client_id.clone()),
        provider.config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect))
}

/// `GET /_frontdoor/idp/<id>/start?return_to=…`.
pub fn start(state: &State, req: &Request, id: &str) -> Reply {
    let Some(provider) = state.federation.get(id) else {
        return unknown(state);
    };
    let name = &provider.config.name;
    let Some(d) = provider.current() else {
        return page(
            state,
            "Sign-in unavailable",
            &Error::Unavailable(format!(
                "{name} cannot be reached right now. Try again in a moment, or sign in another way."
            )),
        );
    };
    let target = return_to::sanitize(
        req.query_pairs()
            .iter()
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v.as_str()),
    );
    let client = match client(provider, &d, &redirect_uri(state, id)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(idp = id, error = %e, "bad identity provider setup");
            return page(
                state,
                "Sign-in unavailable",
                &Error::Internal(format!("{name} is not set up correctly.")),
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in provider.config.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let (url, csrf, nonce) = request.url();
    let pending = Pending {
        started: crate::clock::now(),
        idp: id.to_string(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to: target,
        tenant: tenant_of(state, provider, &req.host),
    };
    let mut c = state.keys.seal(
        PENDING_COOKIE,
        &serde_json::to_string(&pending).unwrap_or_default(),
    );
    c.set_path(format!("/_frontdoor/idp/{id}/"));
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.secure_cookies());
    c.set_max_age(cookie::time::Duration::minutes(10));
    Reply::redirect(url.as_str()).cookie(&c)
}

fn provider_error_words(error: &str) -> &'static str {
    match error {
        "access_denied" => "you declined, or the provider refused the sign-in",
        "login_required" | "interaction_required" | "consent_required" => {
            "the provider needs you to sign in there first"
        }
        "invalid_request"
        | "invalid_scope"
        | "unauthorized_client"
        | "unsupported_response_type" => {
            "frontdoor's registration at the provider does not match its settings"
        }
        "server_error" | "temporarily_unavailable" => "the provider had a problem",
        _ => "the provider refused the sign-in",
    }
}

/// `GET /_frontdoor/idp/<id>/callback`.
pub async fn callback(state: &State, req: &Request, id: &str) -> Reply {
    let Some(provider) = state.federation.get(id).cloned() else {
        return unknown(state);
    };
    let name = provider.config.name.clone();
    let mut removal = Cookie::new(PENDING_COOKIE, "");
    removal.set_path(format!("/_frontdoor/idp/{id}/"));
    removal.make_removal();
    match finish(state, req, &provider).await {
        Ok(reply) => reply.cookie(&removal),
        Err(e) => {
            let method = format!("idp:{id}");
            crate::metrics::login(&method, "failure");
            tracing::info!(idp = id, status = e.status().as_u16(), reason = %e, "upstream sign-in refused");
            let tenant = state.config.tenant_for_host(&req.host);
            crate::audit::sign_in_failed(&method, req.client_ip, tenant, "", e.code());
            page(state, &format!("Sign-in with {name} did not complete"), &e).cookie(&removal)
        }
    }
}

async fn finish(
    state: &State,
    req: &Request,
    provider: &Arc<IdentityProvider>,
) -> Result<Reply, Error> {
    let id = provider.config.id.as_str();
    let name = provider.config.name.as_str();
    let params: std::collections::HashMap<String, String> = req.query_pairs().into_iter().collect();
    let pending = req
        .cookie(PENDING_COOKIE)
        .and_then(|v| state.keys.open(PENDING_COOKIE, &v))
        .and_then(|v| serde_json::from_str::<Pending>(&v).ok())
        .filter(|p| {
            p.idp == id && crate::clock::now() - p.started <= crate::session::PENDING_LIFETIME
        })
        .ok_or(Error::Invalid(
            "The sign-in took too long or was started in another browser. Start again.".to_string(),
        ))?;
    if !params
        .get("state")
        .is_some_and(|s| ct_eq(s, &pending.state))
    {
        return Err(Error::Invalid(
            "The answer from the provider does not belong to this sign-in (state mismatch).".into(),
        ));
    }
    // A state is good for one callback only.
    if !state.federation.first_use(pending.state.clone()) {
        return Err(Error::Invalid(
            "This sign-in answer was already used.".into(),
        ));
    }
    // The tenant is the one the sign-in started in; a callback that names another host (its
    // `Host` is the caller's to choose) does not move it.
    if tenant_of(state, provider, &req.host) != pending.tenant {
        return Err(Error::Invalid(
            "This sign-in was started on another site of this service. Start again there.".into(),
        ));
    }
    let d = provider.current().ok_or(Error::Unavailable(format!(
        "{name} cannot be reached right now."
    )))?;
    // RFC 9207: the answer names the provider that sent it; a provider that says it always
    // does must (an answer without it may come from another provider: mix-up).
    match params.get("iss") {
        Some(iss) if iss != d.metadata.issuer().as_str() => {
            return Err(Error::Invalid(format!(
                "The answer came from another provider than {name} (iss mismatch). Start again.",
            )));
        }
        None if d.iss_parameter_required => {
            return Err(Error::Invalid(format!(
                "The answer did not say which provider sent it, though {name} always does (iss missing). Start again.",
            )));
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        let detail = params
            .get("error_description")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(Error::Invalid(format!(
            "{name} says: {}{detail}.",
            provider_error_words(error)
        )));
    }
    let code = params
        .get("code")
        .ok_or(Error::Invalid("The provider sent no code.".to_string()))?;
    let client = client(provider, &d, &redirect_uri(state, id)).map_err(Error::Internal)?;
    let unreachable = |e: String| {
        tracing::warn!(idp = id, error = %e, "identity provider token exchange failed");
        Error::Upstream(format!(
            "{name} could not be reached or refused the code. Try again."
        ))
    };
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|e| unreachable(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&provider.http())
        .await
        .map_err(|e| {
            if let openidconnect::RequestTokenError::Request(HttpError::TooLarge(_)) = &e {
                crate::metrics::federation_limited(id, "token", "refused");
            }
            unreachable(error_chain(&e))
        })?;
    let raw_id_token = tokens
        .id_token()
        .map(|t| t.to_string())
        .ok_or(Error::Upstream(format!("{name} sent no ID token.")))?;
    let id_token = ExtraIdToken::from_str(&raw_id_token)
        .map_err(|_| Error::Upstream(format!("{name} sent an unreadable ID token.")))?;
    let nonce = Nonce::new(pending.nonce.clone());
    let mut claims = match verify_id_token(&client, &id_token, &nonce) {
        Ok(c) => c,
        Err(first) => {
            // Keys may have rotated: fetch them again (at most once per refetch interval).
            let fresh = provider
                .refetch_keys()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let client = client_for(provider, &fresh, state)?;
            verify_id_token(&client, &id_token, &nonce).map_err(|e| {
                tracing::warn!(idp = id, error = %first, retry = %e, "ID token refused");
                Error::Invalid(format!("The ID token from {name} is not valid ({e})."))
            })?
        }
    };
    let wants = |c: &Option<String>| c.as_ref().is_some_and(|k| !claims.extra.contains_key(k));
    if (claims.email.is_none()
        || wants(&provider.config.groups_claim)
        || wants(&provider.config.roles_claim))
        && d.metadata.userinfo_endpoint().is_some()
    {
        merge_userinfo(&client, provider, tokens.access_token(), &mut claims)
            .await
            .map_err(|limit| {
                crate::metrics::federation_limited(id, "userinfo", "refused");
                tracing::warn!(
                    idp = id,
                    limit,
                    "userinfo answer larger than max_response_bytes; sign-in refused"
                );
                Error::Upstream(format!(
                    "{name} sent a userinfo answer that is too large to accept."
                ))
            })?;
    }
    let user = mapping::resolve_user(&state.store, &provider.config, &pending.tenant, &claims)
        .await
        .map_err(|e| match e {
            Refused::Store(err) => Error::from(err),
            other => Error::Forbidden(other.to_string()),
        })?;
    let raw = state.sessions.create(&user, &format!("idp:{id}")).await?;
    let session_hash = crate::secrets::hash_secret(&raw);
    let sid = claims
        .extra
        .get("sid")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let record = IdpSession {
        session_hash,
        idp: id.to_string(),
        sid,
        subject: claims.subject.clone(),
        id_token: raw_id_token,
        expires_at: crate::clock::now() + state.config.session.ttl.0.as_secs() as i64,
    };
    if let Err(e) = state.store.create_idp_session(&record).await {
        tracing::warn!(error = %e, "could not record the provider session (logout across the chain)");
    }
    let method = format!("idp:{id}");
    crate::metrics::login(&method, "success");
    crate::audit::sign_in_succeeded(
        &method,
        req.client_ip,
        &pending.tenant,
        &user.email,
        &user.id,
    );
    Ok(Reply::see_other(&pending.return_to).cookie(&state.sessions.cookie(&raw)))
}

fn client_for(
    provider: &IdentityProvider,
    d: &Discovered,
    state: &State,
) -> Result<FedClient, Error> {
    client(provider, d, &redirect_uri(state, &provider.config.id)).map_err(Error::Internal)
}

/// Signature (provider JWKS), `iss`, `aud`, `exp`, nonce — by the openidconnect crate; then
/// what it leaves to the relying party: `iat` not in the future (beyond clock skew), `exp`
/// not further than a day away, and `azp`, when present, naming frontdoor.
fn verify_id_token(
    client: &FedClient,
    token: &ExtraIdToken,
    nonce: &Nonce,
) -> Result<ProviderClaims, String> {
    let now = crate::clock::now();
    let verifier = client
        .id_token_verifier()
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now + CLOCK_SKEW {
                Err(format!("issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
    let c = token.claims(&verifier, nonce).map_err(|e| e.to_string())?;
    if c.expiration().timestamp() > now + MAX_ID_TOKEN_LIFETIME + CLOCK_SKEW {
        return Err(format!("valid until {}, longer than a day", c.expiration()));
    }
    let client_id = client.client_id().as_str();
    match c.authorized_party() {
        Some(azp) if azp.as_str() != client_id => {
            return Err(format!("issued to another party ({})", azp.as_str()));
        }
        None if c.audiences().len() > 1 => {
            return Err("several audiences and no authorized party".into());
        }
        _ => {}
    }
    Ok(ProviderClaims {
        subject: c.subject().as_str().to_string(),
        email: c.email().map(|e| e.as_str().to_string()),
        email_verified: c.email_verified().unwrap_or(false),
        name: c
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string()),
        picture: c
            .picture()
            .and_then(|p| p.get(None))
            .map(|p| p.as_str().to_string()),
        extra: c.additional_claims().0.clone(),
    })
}

/// Fills in what the ID token lacked from userinfo. A failing userinfo leaves the claims as
/// they are (the sign-in goes on with what the ID token said); an answer over
/// `max_response_bytes` is an error (the bound), answered as `Err(bound)`.
async fn merge_userinfo(
    client: &FedClient,
    provider: &IdentityProvider,
    access_token: &AccessToken,
    claims: &mut ProviderClaims,
) -> Result<(), usize> {
    let request = match client.user_info(
        access_token.clone(),
        Some(openidconnect::SubjectIdentifier::new(
            claims.subject.clone(),
        )),
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(idp = %provider.config.id, error = %e, "no userinfo endpoint");
            return Ok(());
        }
    };
    let info: Result<UserInfoClaims<ExtraClaims, CoreGenderClaim>, _> =
        request.request_async(&provider.http()).await;
    match info {
        Ok(info) => {
            if claims.email.is_none() {
                claims.email = info.email().map(|e| e.as_str().to_string());
                claims.email_verified = info.email_verified().unwrap_or(false);
            }
            if claims.name.is_none() {
                claims.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string());
            }
            for (k, v) in &info.additional_claims().0 {
                claims.extra.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Err(openidconnect::UserInfoError::Request(HttpError::TooLarge(limit))) => {
            return Err(limit);
        }
        Err(e) => {
            tracing::warn!(idp = %provider.config.id, error = %error_chain(&e), "userinfo failed")
        }
    }
    Ok(())
}
