//! Passkeys (WebAuthn Level 2, verified by `webauthn-rs`): registering one, and proving one as
//! the second factor of a sign-in. A ceremony's state (its challenge) waits in the store,
//! found by the hash of a random id the browser answers with, taken by the first answer: a
//! challenge is good once, for one user, for `CEREMONY_SECONDS`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::config::Config;
use crate::error::Error;
use crate::secrets::hash_secret;
use crate::store::{PasskeyCeremony, PasskeyRecord, Store};

/// `amr` (RFC 8176) of a passkey. `swk`, not `hwk`: without attestation frontdoor cannot tell
/// a security key from a passkey synced between devices, so it claims no hardware.
pub const SWK: &str = "swk";

/// How long a browser has to answer a ceremony, in seconds.
pub const CEREMONY_SECONDS: i64 = 300;

/// Longest name of a passkey, in characters.
const MAX_NAME: usize = 100;

const REGISTER: &str = "register";
const SECOND_FACTOR: &str = "second_factor";
/// A passwordless sign-in: its user is known only from the answer (`user_id` empty).
const PASSWORDLESS: &str = "passwordless";

/// Why passkeys are off for a configuration.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyConfigError {
    /// `public_url` names no host a browser accepts as a relying party (an IP address).
    #[error("passkeys need public_url (or webauthn.rp_id) to name a domain, not `{0}`")]
    NoDomain(String),
    /// webauthn-rs refused the relying party.
    #[error("webauthn-rs refused relying party `{rp_id}`: {source}")]
    Refused {
        /// The relying party id.
        rp_id: String,
        /// Its reason.
        source: webauthn_rs::prelude::WebauthnError,
    },
}

/// The relying party of a configuration: its id (`webauthn.rp_id`, else `public_url`'s host)
/// and frontdoor's own origins, those of `public_url` and of the tenants' hosts (on
/// `public_url`'s scheme and port) under that id.
pub fn relying_party(config: &Config) -> Result<Arc<Webauthn>, PasskeyConfigError> {
    let public = &config.public_url;
    let host = match public.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        other => {
            return Err(PasskeyConfigError::NoDomain(
                other.map(|h| h.to_string()).unwrap_or_default(),
            ));
        }
    };
    let rp_id = config.webauthn.rp_id.clone().unwrap_or(host);
    let refused = |source| PasskeyConfigError::Refused {
        rp_id: rp_id.clone(),
        source,
    };
    let mut origin = public.clone();
    origin.set_path("");
    let mut builder = WebauthnBuilder::new(&rp_id, &origin)
        .map_err(refused)?
        .rp_name(&config.organization);
    let tenant_origins: Vec<Url> = config
        .tenants
        .iter()
        .flat_map(|t| t.hosts.iter())
        .filter(|h| crate::config::suffix_of(&rp_id, h))
        .filter_map(|h| {
            let mut o = origin.clone();
            o.set_host(Some(h)).ok().map(|()| o)
        })
        .collect();
    for o in &tenant_origins {
        builder = builder.append_allowed_origin(o);
    }
    builder.build().map(Arc::new).map_err(refused)
}

/// The WebAuthn user handle of a user: stable, and not the user's id itself.
fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("frontdoor passkey user\0{user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A credential id as stored: base64url.
pub fn cred_key(id: &CredentialID) -> String {
    URL_SAFE_NO_PAD.encode(id.as_ref() as &[u8])
}

/// A passkey's name as typed: trimmed, bounded, never empty.
pub fn clean_name(typed: &str) -> Result<String, Error> {
    let name = typed.trim();
    if name.chars().count() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "A passkey's name has at most {MAX_NAME} characters."
        )));
    }
    Ok(if name.is_empty() {
        "Passkey".to_string()
    } else {
        name.to_string()
    })
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "a stored {what} does not read");
    Error::internal()
}

fn passkeys_of(records: &[PasskeyRecord]) -> Result<Vec<Passkey>, Error> {
    records
        .iter()
        .map(|r| serde_json::from_str(&r.passkey).map_err(|e| corrupt("passkey", e)))
        .collect()
}

async fn put_ceremony(
    store: &dyn Store,
    id: &str,
    user_id: &str,
    kind: &str,
    state: &impl serde::Serialize,
    now: i64,
) -> Result<(), Error> {
    let state = serde_json::to_string(state).map_err(|e| corrupt("ceremony", e))?;
    store
        .put_passkey_ceremony(&PasskeyCeremony {
            id_hash: hash_secret(id),
            user_id: user_id.to_string(),
            kind: kind.to_string(),
            state,
            expires_at: now + CEREMONY_SECONDS,
        })
        .await?;
    Ok(())
}

/// The ceremony `id` of this user and kind, taken: `None` when unknown, spent, expired, or
/// another user's or kind's.
async fn take_ceremony(
    store: &dyn Store,
    id: &str,
    user_id: &str,
    kind: &str,
    now: i64,
) -> Result<Option<String>, Error> {
    if id.is_empty() {
        return Ok(None);
    }
    let found = store.take_passkey_ceremony(&hash_secret(id)).await?;
    Ok(found
        .filter(|c| c.user_id == user_id && c.kind == kind && now < c.expires_at)
        .map(|c| c.state))
}

/// The state of ceremony `(id, user_id, kind)`, taken, with the browser's assertion read;
/// `None` when the ceremony is not there (see `take_ceremony`) or the answer does not read.
async fn take_answered<S: serde::de::DeserializeOwned>(
    store: &dyn Store,
    (id, user_id, kind): (&str, &str, &str),
    answer: &str,
    now: i64,
) -> Result<Option<(S, PublicKeyCredential)>, Error> {
    let Some(state) = take_ceremony(store, id, user_id, kind, now).await? else {
        return Ok(None);
    };
    let state: S = serde_json::from_str(&state).map_err(|e| corrupt("ceremony state", e))?;
    Ok(serde_json::from_str(answer).ok().map(|a| (state, a)))
}

/// Starts registering a passkey for a user (`id` the random ceremony id, `email` its name in
/// the authenticator): the options for `navigator.credentials.create`. The user's passkeys
/// are excluded, so one authenticator is not registered twice.
pub async fn start_registration(
    webauthn: &Webauthn,
    store: &dyn Store,
    user: (&str, &str, &str),
    id: &str,
    now: i64,
) -> Result<serde_json::Value, Error> {
    let (user_id, email, display) = user;
    let existing = passkeys_of(&store.list_passkeys(user_id).await?)?;
    let exclude: Vec<CredentialID> = existing.iter().map(|p| p.cred_id().clone()).collect();
    let (options, state): (_, PasskeyRegistration) = webauthn
        .start_passkey_registration(user_handle(user_id), email, display, Some(exclude))
        .map_err(|e| corrupt("registration start", e))?;
    put_ceremony(store, id, user_id, REGISTER, &state, now).await?;
    let mut options =
        serde_json::to_value(options).map_err(|e| corrupt("registration options", e))?;
    // Discoverable where the authenticator can, so that the passkey also signs in without a
    // password; webauthn-rs discourages it, and none of its checks depend on it.
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "preferred".into());
    }
    Ok(options)
}

/// Finishes a registration with the browser's answer (JSON of the `PublicKeyCredential`):
/// the new passkey stored under `name`. Refused when the ceremony is not this user's, was
/// answered already or expired, or when webauthn-rs refuses the attestation (a wrong origin,
/// challenge or relying party).
pub async fn finish_registration(
    webauthn: &Webauthn,
    store: &dyn Store,
    user_id: &str,
    id: &str,
    answer: &str,
    name: &str,
    now: i64,
) -> Result<PasskeyRecord, Error> {
    let gone = || {
        Error::Invalid(
            "The passkey was not registered: the request expired or was already used. Try again."
                .into(),
        )
    };
    let state = take_ceremony(store, id, user_id, REGISTER, now)
        .await?
        .ok_or_else(gone)?;
    let state: PasskeyRegistration =
        serde_json::from_str(&state).map_err(|e| corrupt("registration state", e))?;
    let answer: RegisterPublicKeyCredential = serde_json::from_str(answer)
        .map_err(|_| Error::Invalid("The browser's answer does not read.".into()))?;
    let passkey = webauthn
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| {
            tracing::info!(user = %user_id, error = %e, "a passkey registration was refused");
            Error::Invalid("The passkey was not accepted. Try again.".into())
        })?;
    let record = PasskeyRecord {
        cred_id: cred_key(passkey.cred_id()),
        user_id: user_id.to_string(),
        name: clean_name(name)?,
        passkey: serde_json::to_string(&passkey).map_err(|e| corrupt("passkey", e))?,
        created_at: now,
        last_used: None,
    };
    store.insert_passkey(&record).await.map_err(|e| {
        tracing::info!(user = %user_id, error = %e, "a passkey could not be stored");
        Error::Conflict("This passkey is registered already.".into())
    })?;
    tracing::info!(user = %user_id, "passkey registered");
    Ok(record)
}

/// Starts a second factor by passkey for a sign-in (`id`: its pending token): the options for
/// `navigator.credentials.get`, offering only this user's passkeys; `None` without any.
pub async fn start_second_factor(
    webauthn: &Webauthn,
    store: &dyn Store,
    user_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<serde_json::Value>, Error> {
    let keys = passkeys_of(&store.list_passkeys(user_id).await?)?;
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state): (_, PasskeyAuthentication) = webauthn
        .start_passkey_authentication(&keys)
        .map_err(|e| corrupt("authentication start", e))?;
    put_ceremony(store, id, user_id, SECOND_FACTOR, &state, now).await?;
    Ok(Some(
        serde_json::to_value(options).map_err(|e| corrupt("authentication options", e))?,
    ))
}

/// Checks a second factor by passkey: the browser's assertion (JSON) against the ceremony of
/// sign-in `id`, by webauthn-rs (challenge, origin, relying party, user verification,
/// signature, one of this user's credentials). `false` for anything refused, without saying
/// why; the ceremony is spent either way. A right one updates the passkey's counter.
pub async fn check_second_factor(
    webauthn: &Webauthn,
    store: &dyn Store,
    user_id: &str,
    id: &str,
    answer: &str,
    now: i64,
) -> Result<bool, Error> {
    let taken = take_answered(store, (id, user_id, SECOND_FACTOR), answer, now).await?;
    let Some((state, answer)) = taken else {
        return Ok(false);
    };
    let state: PasskeyAuthentication = state;
    let result = match webauthn.finish_passkey_authentication(&answer, &state) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(user = %user_id, error = %e, "a passkey assertion was refused");
            return Ok(false);
        }
    };
    // Removed between the options and the answer: refused by `record_use`.
    let records = store.list_passkeys(user_id).await?;
    record_use(store, user_id, &records, &result, now).await
}

/// Starts a passwordless sign-in (`id` the random ceremony id): the options for
/// `navigator.credentials.get` with no credential named, the authenticator offering its
/// discoverable ones.
pub async fn start_passwordless(
    webauthn: &Webauthn,
    store: &dyn Store,
    id: &str,
    now: i64,
) -> Result<serde_json::Value, Error> {
    let (options, state): (_, DiscoverableAuthentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| corrupt("discoverable start", e))?;
    put_ceremony(store, id, "", PASSWORDLESS, &state, now).await?;
    serde_json::to_value(options).map_err(|e| corrupt("discoverable options", e))
}

/// The user a passwordless answer claims: the owner of the credential it names, when the
/// answer's user handle is that owner's too. Nothing is verified yet (`check_passwordless`).
pub async fn claimed_user(
    webauthn: &Webauthn,
    store: &dyn Store,
    answer: &str,
) -> Result<Option<String>, Error> {
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
        return Ok(None);
    };
    let Ok((handle, cred_id)) = webauthn.identify_discoverable_authentication(&answer) else {
        return Ok(None);
    };
    let key = URL_SAFE_NO_PAD.encode(cred_id);
    Ok(store
        .get_passkey(&key)
        .await?
        .filter(|r| user_handle(&r.user_id) == handle)
        .map(|r| r.user_id))
}

/// Checks a passwordless answer against ceremony `id` for `user_id` (the claimed user), by
/// webauthn-rs with only that user's passkeys allowed. The ceremony is spent either way.
pub async fn check_passwordless(
    webauthn: &Webauthn,
    store: &dyn Store,
    user_id: &str,
    id: &str,
    answer: &str,
    now: i64,
) -> Result<bool, Error> {
    let taken = take_answered(store, (id, "", PASSWORDLESS), answer, now).await?;
    let Some((state, answer)) = taken else {
        return Ok(false);
    };
    let state: DiscoverableAuthentication = state;
    let records = store.list_passkeys(user_id).await?;
    let keys: Vec<DiscoverableKey> = passkeys_of(&records)?
        .iter()
        .map(DiscoverableKey::from)
        .collect();
    let result = match webauthn.finish_discoverable_authentication(&answer, state, &keys) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(user = %user_id, error = %e, "a passwordless passkey was refused");
            return Ok(false);
        }
    };
    record_use(store, user_id, &records, &result, now).await
}

/// Spends a passwordless ceremony that found no user to check.
pub async fn spend_passwordless(store: &dyn Store, id: &str, now: i64) -> Result<(), Error> {
    take_ceremony(store, id, "", PASSWORDLESS, now).await?;
    Ok(())
}

/// After a verified assertion: the passkey's counter and last use. `false` when it is gone.
async fn record_use(
    store: &dyn Store,
    user_id: &str,
    records: &[PasskeyRecord],
    result: &webauthn_rs::prelude::AuthenticationResult,
    now: i64,
) -> Result<bool, Error> {
    let used = cred_key(result.cred_id());
    let Some(record) = records.iter().find(|r| r.cred_id == used) else {
        return Ok(false);
    };
    let mut passkey: Passkey =
        serde_json::from_str(&record.passkey).map_err(|e| corrupt("passkey", e))?;
    passkey.update_credential(result);
    let updated = serde_json::to_string(&passkey).map_err(|e| corrupt("passkey", e))?;
    Ok(store.use_passkey(user_id, &used, &updated, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_yaml(&format!(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\n{extra}"
        ))
        .expect("valid config")
    }

    #[test]
    fn the_relying_party_is_public_urls_host_and_needs_a_domain() {
        assert!(relying_party(&config("public_url: https://sso.example.com/\n")).is_ok());
        assert!(relying_party(&config("public_url: http://localhost:8080/\n")).is_ok());
        let ip = relying_party(&config("public_url: http://127.0.0.1:8080/\n"));
        assert!(matches!(ip, Err(PasskeyConfigError::NoDomain(_))), "{ip:?}");
        assert!(
            relying_party(&config(
                "public_url: https://sso.example.com/\nwebauthn: { rp_id: example.com }\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn unknown_webauthn_keys_and_foreign_rp_ids_are_refused_with_their_key() {
        let unknown = Config::from_yaml(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: https://sso.example.com/\nwebauthn: { rpid: example.com }\n",
        );
        assert!(format!("{:?}", unknown.err()).contains("rpid"));
        let foreign = Config::from_yaml(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: https://sso.example.com/\nwebauthn: { rp_id: evil.com }\n",
        );
        assert!(format!("{:?}", foreign.err()).contains("webauthn.rp_id"));
    }

    #[test]
    fn only_frontdoors_own_origins_may_answer_a_ceremony() {
        let rp = relying_party(&config(
            "public_url: https://sso.example.com/\n\
             webauthn: { rp_id: example.com }\n\
             tenants: [{ id: acme, hosts: [acme.example.com, acme.other.org] }]\n\
             routes: [{ host: wiki.example.com, path_prefix: /, upstream: 'http://127.0.0.1:1' }]\n",
        ))
        .expect("a relying party");
        let origins: Vec<&str> = rp
            .get_allowed_origins()
            .iter()
            .map(|u| u.as_str())
            .collect();
        // An app's host (wiki), a tenant host outside rp_id and any other origin: not listed,
        // so webauthn-rs refuses a clientDataJSON that names them.
        assert_eq!(
            origins,
            ["https://sso.example.com/", "https://acme.example.com/"]
        );
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("u1"), user_handle("u1"));
        assert_ne!(user_handle("u1"), user_handle("u2"));
        assert_eq!(clean_name("  ").unwrap(), "Passkey");
        assert_eq!(clean_name(" Laptop ").unwrap(), "Laptop");
        assert!(clean_name(&"x".repeat(101)).is_err());
    }
}
