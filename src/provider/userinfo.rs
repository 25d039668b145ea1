//! `GET|POST /oauth/userinfo`: the user's claims, filtered by the token's scopes.

use super::scopes;
use http::StatusCode;

use crate::endpoint::{OAuthError, Reply, Request, oauth};
use crate::error::Error;
use crate::grants::AccessError;
use crate::state::State;
use crate::tokens::{bearer, is_app_token};

/// `GET|POST /oauth/userinfo`.
pub async fn userinfo(state: &State, req: &Request) -> Reply {
    oauth(
        run(state, req)
            .await
            .map(|body| Reply::json(StatusCode::OK, &body)),
    )
}

async fn run(state: &State, req: &Request) -> Result<serde_json::Value, OAuthError> {
    // RFC 6750 §2.2: the token may also come as a form field of a POST.
    let form_token = (req.method == http::Method::POST && req.is_form())
        .then(|| {
            req.form_pairs()
                .into_iter()
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v)
        })
        .flatten();
    let token = match (bearer(&req.headers), form_token.as_deref()) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => return Err(OAuthError::invalid_request("send the token once")),
        (None, None) => return Err(OAuthError::invalid_token("an access token is required")),
    };
    // Any audience: an app's token (whose audience is the app or its resource) reads the
    // claims its scopes allow; the grant and its app are checked all the same.
    let claims = state
        .grants
        .verify(token, None)
        .await
        .map_err(|e| match e {
            AccessError::Unavailable => {
                Error::Unavailable("the store is unavailable".into()).into()
            }
            other => OAuthError::invalid_token(other.to_string()),
        })?;
    if is_app_token(&claims) {
        return Err(OAuthError::invalid_token(
            "a client_credentials token speaks for an application, not a user",
        ));
    }
    let user = state
        .store
        .get_user(&claims.sub)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| OAuthError::invalid_token("the user no longer exists"))?;
    let has = |s| scopes::contains(&claims.scope, s);
    let mut body = serde_json::json!({ "sub": user.id });
    if has("profile") {
        body["name"] = user.name.clone().into();
        // OIDC Core §5.3.2: a claim without a value is omitted, never null.
        if let Some(picture) = &user.picture {
            body["picture"] = picture.clone().into();
        }
    }
    if has("email") {
        body["email"] = user.email.clone().into();
        body["email_verified"] = true.into();
    }
    if has("groups") {
        body["groups"] = user.groups.clone().into();
    }
    if has("roles") {
        body["roles"] = user.roles.clone().into();
    }
    Ok(body)
}
