//! Settings → Developers → API Access: personal Api-Tokens, read-write or read-only, each
//! shown once when created, listed with when they were last used, and revocable.

use askama::Template;
use http::StatusCode;

use super::{Chrome, Page, TOKENS, when};
use crate::endpoint::Reply;
use crate::error::Error;
use crate::manage::owned;
use crate::web::{flash, pages};

/// A row of the tokens table.
pub struct TokenRow {
    /// Token id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// "Read-only" or "Read-write".
    pub access: &'static str,
    /// Creation time in words.
    pub created: String,
    /// Last use in words.
    pub last_used: String,
    /// Revoked or not.
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    tokens: Vec<TokenRow>,
    new_token: Option<(String, String)>,
    error: Option<String>,
    notice: Option<&'static str>,
    name: &'a str,
}

async fn render(
    page: &Page<'_>,
    status: StatusCode,
    error: Option<String>,
    name: &str,
) -> Result<Reply, Error> {
    let mut tokens = owned::tokens(page.state, &page.caller).await?;
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let fresh = tokens
        .iter()
        .find_map(|t| flash::take(page.req, &page.state.keys, "api_token", &t.id).map(|f| (t, f)))
        .map(|(t, f)| (t.name.clone(), f.value));
    let q: std::collections::HashMap<String, String> = page.req.query_pairs().into_iter().collect();
    let notice = match q.get("done").map(String::as_str) {
        Some("revoked") => Some("Token revoked: it no longer works anywhere."),
        Some("created") if fresh.is_none() => {
            Some("Token created. Its value was shown once and cannot be shown again.")
        }
        _ => None,
    };
    let form = page.csrf();
    let reply = pages::render(
        status,
        &TokensPage {
            chrome: page.chrome("tokens"),
            csrf_token: &form.token,
            tokens: tokens
                .iter()
                .map(|t| TokenRow {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    access: if t.read_only {
                        "Read-only"
                    } else {
                        "Read-write"
                    },
                    created: when(t.created_at),
                    last_used: t.last_used_at.map(when).unwrap_or_else(|| "Never".into()),
                    revoked: t.revoked_at.is_some(),
                })
                .collect(),
            new_token: fresh,
            error,
            notice,
            name,
        },
    );
    Ok(flash::clear(form.attach(reply), page.req))
}

/// `GET …/tokens`.
pub async fn list(page: &Page<'_>) -> Result<Reply, Error> {
    render(page, StatusCode::OK, None, "").await
}

/// `POST …/tokens`: creates a token and shows it once.
pub async fn create(page: &Page<'_>) -> Result<Reply, Error> {
    let form = page.form();
    let name = form.get("name").map(String::as_str).unwrap_or("");
    let read_only = form.get("access").map(String::as_str) == Some("read-only");
    match owned::create_token(page.state, &page.caller, name, read_only).await {
        Ok((record, token)) => Ok(flash::Flash::new("api_token", &record.id, &token).attach(
            Reply::see_other(&format!("{TOKENS}?done=created")),
            &page.state.keys,
            page.state.secure_cookies(),
        )),
        Err(e @ Error::InvalidField(_)) => {
            render(page, e.status(), Some(e.to_string()), name).await
        }
        Err(e) => Err(e),
    }
}

/// `POST …/tokens/<id>/revoke`.
pub async fn revoke(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    owned::revoke_token(page.state, &page.caller, id).await?;
    Ok(Reply::see_other(&format!("{TOKENS}?done=revoked")))
}
