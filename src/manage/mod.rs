//! The rules for registering OAuth applications and issuing API tokens, shared by the CLI,
//! the JSON API and the settings pages.

pub mod owned;

use crate::clock::now;
use crate::provider::scopes;
use crate::secrets::{hash_secret, random_token};
use crate::store::{ApiToken, App};
use crate::tokens::OWN_CLIENT_ID;

/// A request that breaks a rule; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field (CLI flag or JSON key) concerned.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Size limits of a registration: an app is a row every authorization reads, and a list of
/// 20,000 redirect URIs (or a 1 MB name) is a denial of service on the store and the pages.
pub mod limits {
    /// Characters of a name.
    pub const NAME: usize = 200;
    /// Characters of a description.
    pub const DESCRIPTION: usize = 2_000;
    /// Redirect URIs, and post-logout redirect URIs, each.
    pub const REDIRECT_URIS: usize = 20;
    /// Characters of one URI (redirect, post-logout, audience).
    pub const URI: usize = 2_000;
    /// Scopes asked for (the supported ones are fewer; repeats count).
    pub const SCOPES: usize = 20;
    /// Audiences.
    pub const AUDIENCES: usize = 20;
}

/// Grant types an application may be registered with.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// What an application is registered with.
#[derive(Debug, Clone, Default)]
pub struct AppSpec {
    /// Name shown on the consent page.
    pub name: String,
    /// What the app does.
    pub description: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Grant types (empty: authorization_code and refresh_token).
    pub grant_types: Vec<String>,
    /// Public client (no secret, PKCE required).
    pub public: bool,
    /// First-party: no consent page.
    pub first_party: bool,
    /// client_credentials audiences.
    pub audiences: Vec<String>,
    /// A confidential client that may leave PKCE out (it is required by default).
    pub pkce_optional: bool,
    /// Where frontdoor POSTs logout tokens (Back-Channel Logout 1.0); `None` or empty: nowhere.
    pub backchannel_logout_uri: Option<String>,
}

/// Checks a spec and fills in the app's registrable fields (not id, tenant, owner, secret).
pub fn apply(spec: &AppSpec, app: &mut App) -> Result<(), Invalid> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > limits::NAME {
        return Err(invalid(
            "name",
            format!("must not be empty (at most {} characters)", limits::NAME),
        ));
    }
    if spec.description.trim().chars().count() > limits::DESCRIPTION {
        return Err(invalid(
            "description",
            format!("at most {} characters", limits::DESCRIPTION),
        ));
    }
    for (field, list, most) in [
        ("redirect_uris", &spec.redirect_uris, limits::REDIRECT_URIS),
        (
            "post_logout_redirect_uris",
            &spec.post_logout_redirect_uris,
            limits::REDIRECT_URIS,
        ),
        ("audiences", &spec.audiences, limits::AUDIENCES),
    ] {
        if list.len() > most {
            return Err(invalid(field, format!("at most {most} entries")));
        }
        if list.iter().any(|u| u.len() > limits::URI) {
            return Err(invalid(
                field,
                format!("an entry is longer than {} characters", limits::URI),
            ));
        }
    }
    for (field, list) in [
        ("redirect_uris", &spec.redirect_uris),
        ("post_logout_redirect_uris", &spec.post_logout_redirect_uris),
    ] {
        for uri in list {
            let u = url::Url::parse(uri)
                .map_err(|_| invalid(field, format!("`{uri}` is not an absolute URL")))?;
            if u.fragment().is_some() {
                return Err(invalid(field, format!("`{uri}` must not have a fragment")));
            }
            if matches!(u.scheme(), "javascript" | "data" | "file" | "vbscript") {
                return Err(invalid(field, format!("`{uri}` has a forbidden scheme")));
            }
        }
    }
    let backchannel_logout_uri = match spec.backchannel_logout_uri.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(uri) => Some(backchannel_logout_uri(uri)?),
    };
    // Counted before duplicates are dropped: the string as sent is what gets parsed and kept.
    if spec.scopes.split_whitespace().count() > limits::SCOPES {
        return Err(invalid(
            "scopes",
            format!("at most {} scopes", limits::SCOPES),
        ));
    }
    let requested = scopes::parse(&spec.scopes);
    if let Some(bad) = requested.iter().find(|s| !scopes::is_supported(s)) {
        return Err(invalid(
            "scopes",
            format!(
                "unknown scope `{bad}` (known: {})",
                scopes::SUPPORTED.join(" ")
            ),
        ));
    }
    let mut grants: Vec<String> = if spec.grant_types.is_empty() {
        vec!["authorization_code".into(), "refresh_token".into()]
    } else {
        spec.grant_types.clone()
    };
    if let Some(g) = grants.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(invalid(
            "grant_types",
            format!("`{g}` is not authorization_code, refresh_token or client_credentials"),
        ));
    }
    grants.dedup();
    let has = |g: &str| grants.iter().any(|x| x == g);
    if has("authorization_code") && !has("refresh_token") {
        grants.push("refresh_token".into());
    }
    if grants.iter().any(|g| g == "authorization_code") && spec.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris",
            "required for the authorization_code grant",
        ));
    }
    if spec.public && spec.pkce_optional {
        return Err(invalid(
            "pkce_optional",
            "a public client must always use PKCE",
        ));
    }
    if spec.public && grants.iter().any(|g| g == "client_credentials") {
        return Err(invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    app.name = name.to_string();
    app.description = spec.description.trim().to_string();
    app.redirect_uris = spec.redirect_uris.clone();
    app.post_logout_redirect_uris = spec.post_logout_redirect_uris.clone();
    app.scopes = requested;
    app.grant_types = grants;
    app.public = spec.public;
    app.first_party = spec.first_party;
    app.audiences = spec.audiences.clone();
    app.pkce_optional = spec.pkce_optional;
    app.backchannel_logout_uri = backchannel_logout_uri;
    if spec.public {
        app.secret_hash = None;
    }
    Ok(())
}

/// A back-channel logout URI as Back-Channel Logout 1.0 §2.2 asks (absolute, no fragment)
/// and frontdoor can POST to: `http` or `https` with a host.
fn backchannel_logout_uri(uri: &str) -> Result<String, Invalid> {
    const FIELD: &str = "backchannel_logout_uri";
    if uri.len() > limits::URI {
        return Err(invalid(
            FIELD,
            format!("longer than {} characters", limits::URI),
        ));
    }
    let u = url::Url::parse(uri).map_err(|_| {
        invalid(
            FIELD,
            format!(
                "`{uri}` is not an absolute URL (e.g. https://app.example.com/backchannel-logout)"
            ),
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") || !u.has_host() {
        return Err(invalid(
            FIELD,
            format!("`{uri}` must be an http or https URL with a host"),
        ));
    }
    if u.fragment().is_some() {
        return Err(invalid(FIELD, format!("`{uri}` must not have a fragment")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(
            FIELD,
            format!("`{uri}` must not carry credentials"),
        ));
    }
    Ok(uri.to_string())
}

/// A new application and its client secret (shown once; `None` for public clients).
pub fn new_app(
    spec: &AppSpec,
    tenant: &str,
    owner: Option<String>,
) -> Result<(App, Option<String>), Invalid> {
    let mut app = App {
        client_id: uuid::Uuid::new_v4().simple().to_string(),
        tenant: tenant.to_string(),
        name: String::new(),
        description: String::new(),
        secret_hash: None,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        scopes: Vec::new(),
        grant_types: Vec::new(),
        public: false,
        first_party: false,
        active: true,
        owner,
        created_at: now(),
        audiences: Vec::new(),
        pkce_optional: false,
        backchannel_logout_uri: None,
    };
    apply(spec, &mut app)?;
    debug_assert_ne!(app.client_id, OWN_CLIENT_ID);
    let secret = (!app.public).then(random_token);
    app.secret_hash = secret.as_deref().map(hash_secret);
    Ok((app, secret))
}

/// Replaces an app's secret; returns the new one (shown once). Public clients have none.
pub fn regenerate_secret(app: &mut App) -> Result<String, Invalid> {
    if app.public {
        return Err(invalid("public", "a public client has no secret"));
    }
    let secret = random_token();
    app.secret_hash = Some(hash_secret(&secret));
    Ok(secret)
}

/// A new API token for a user and its value (shown once).
pub fn new_api_token(
    user_id: &str,
    tenant: &str,
    name: &str,
    read_only: bool,
) -> Result<(ApiToken, String), Invalid> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(invalid(
            "name",
            "must not be empty (at most 200 characters)",
        ));
    }
    let token = format!("fdt_{}", random_token());
    Ok((
        ApiToken {
            id: uuid::Uuid::new_v4().simple().to_string(),
            user_id: user_id.to_string(),
            tenant: tenant.to_string(),
            name: name.to_string(),
            token_hash: hash_secret(&token),
            read_only,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        },
        token,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            name: " Wiki ".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            scopes: "openid email".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_confidential_app_gets_a_hashed_secret_and_default_grants() {
        let (app, secret) = new_app(&spec(), "default", Some("u1".into())).expect("valid");
        let secret = secret.expect("confidential apps get a secret");
        assert_eq!(app.name, "Wiki");
        assert_eq!(app.grant_types, vec!["authorization_code", "refresh_token"]);
        assert!(crate::secrets::verify_secret(
            &secret,
            app.secret_hash.as_deref().expect("hash")
        ));
        assert_ne!(app.secret_hash.as_deref(), Some(secret.as_str()));
    }

    #[test]
    fn bad_specs_name_their_field() {
        let mut s = spec();
        s.redirect_uris = vec!["https://x/cb#frag".into()];
        assert_eq!(
            new_app(&s, "t", None).map(|_| ()).unwrap_err().field,
            "redirect_uris"
        );
        let mut s = spec();
        s.scopes = "openid admin".into();
        assert_eq!(
            new_app(&s, "t", None).map(|_| ()).unwrap_err().field,
            "scopes"
        );
        let mut s = spec();
        s.public = true;
        s.grant_types = vec!["client_credentials".into()];
        assert_eq!(
            new_app(&s, "t", None).map(|_| ()).unwrap_err().field,
            "grant_types"
        );
        let mut s = spec();
        s.redirect_uris = vec!["javascript:alert(1)".into()];
        assert!(new_app(&s, "t", None).is_err());
        let mut s = spec();
        s.public = true;
        s.pkce_optional = true;
        assert_eq!(
            new_app(&s, "t", None).map(|_| ()).unwrap_err().field,
            "pkce_optional"
        );
    }

    #[test]
    fn a_backchannel_logout_uri_is_an_absolute_http_url_without_fragment() {
        let with = |uri: &str| {
            let mut s = spec();
            s.backchannel_logout_uri = Some(uri.into());
            new_app(&s, "t", None).map(|(app, _)| app.backchannel_logout_uri)
        };
        for good in [
            "https://wiki.example/bc",
            "http://127.0.0.1:8081/logout?x=1",
        ] {
            assert_eq!(with(good), Ok(Some(good.to_string())), "{good}");
        }
        assert_eq!(with("  "), Ok(None));
        for bad in [
            "/relative",
            "wiki.example/bc",
            "https://wiki.example/bc#frag",
            "ftp://wiki.example/bc",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://user:pw@wiki.example/bc",
            "not a url",
        ] {
            let e = with(bad).expect_err(bad);
            assert_eq!(e.field, "backchannel_logout_uri", "{bad}");
            assert!(e.message.contains(bad), "the message names the value: {e}");
        }
        let long = format!("https://w.example/{}", "a".repeat(limits::URI));
        assert_eq!(with(&long).unwrap_err().field, "backchannel_logout_uri");
    }

    #[test]
    fn sizes_are_bounded_at_the_limit() {
        let field = |s: &AppSpec| new_app(s, "t", None).map(|_| ()).err().map(|e| e.field);
        let uris = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("https://wiki.example/cb/{i}"))
                .collect()
        };
        let mut s = spec();
        s.redirect_uris = uris(limits::REDIRECT_URIS);
        assert_eq!(field(&s), None);
        s.redirect_uris = uris(limits::REDIRECT_URIS + 1);
        assert_eq!(field(&s), Some("redirect_uris"));
        let mut s = spec();
        s.post_logout_redirect_uris = uris(limits::REDIRECT_URIS + 1);
        assert_eq!(field(&s), Some("post_logout_redirect_uris"));
        let mut s = spec();
        s.redirect_uris = vec![format!("https://w.example/{}", "a".repeat(limits::URI))];
        assert_eq!(field(&s), Some("redirect_uris"));
        let mut s = spec();
        s.audiences = uris(limits::AUDIENCES + 1);
        assert_eq!(field(&s), Some("audiences"));
        let mut s = spec();
        s.name = "n".repeat(limits::NAME);
        assert_eq!(field(&s), None);
        s.name = "n".repeat(limits::NAME + 1);
        assert_eq!(field(&s), Some("name"));
        let mut s = spec();
        s.description = "d".repeat(limits::DESCRIPTION + 1);
        assert_eq!(field(&s), Some("description"));
        let mut s = spec();
        s.scopes = "openid ".repeat(limits::SCOPES + 1);
        assert_eq!(field(&s), Some("scopes"));
    }

    #[test]
    fn regenerating_invalidates_the_old_secret() {
        let (mut app, old) = new_app(&spec(), "t", None).expect("valid");
        let new = regenerate_secret(&mut app).expect("confidential");
        let hash = app.secret_hash.as_deref().expect("hash");
        assert!(crate::secrets::verify_secret(&new, hash));
        assert!(!crate::secrets::verify_secret(&old.expect("secret"), hash));
    }
}
