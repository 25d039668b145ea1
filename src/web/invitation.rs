//! The page an invitation's link opens (`/_frontdoor/invitation?token=…`): the invitee
//! chooses a name and a password, and the account is created (`accounts::invite`). The form
//! carries a CSRF token and counts against the per-address sign-in rate.

use std::collections::HashMap;

use askama::Template;
use http::StatusCode;

use crate::accounts::invite::{self, Acceptance};
use crate::accounts::password::MIN_CHARS;
use crate::endpoint::{Reply, Request};
use crate::error::Error;
use crate::state::State;
use crate::web::password::{admitted, fields, link_done, no_referrer, with_retry};
use crate::web::{csrf, pages};

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    org: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
    email: &'a str,
    name: &'a str,
    token: &'a str,
    min_chars: usize,
}

/// `GET /_frontdoor/invitation?token=…`: the form, when the invitation can be used here.
pub async fn page(state: &State, req: &Request) -> Reply {
    let pairs: HashMap<String, String> = req.query_pairs().into_iter().collect();
    let secret = pairs.get("token").map(String::as_str).unwrap_or("");
    let tenant = state.config.tenant_for_host(&req.host);
    match invite::find(state, tenant, secret).await {
        Ok(t) => form(state, req, StatusCode::OK, None, &t.email, "", secret),
        Err(e) => unusable(state, &e),
    }
}

/// `POST /_frontdoor/invitation`: name, password twice, and the link's secret.
pub async fn submit(state: &State, req: &Request) -> Reply {
    let f = fields(req);
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let secret = field("token");
    let tenant = state.config.tenant_for_host(&req.host);
    let done = async {
        admitted(state, req, &f)?;
        let answer = Acceptance {
            name: field("name"),
            password: field("new_password"),
            repeated: field("repeat_password"),
        };
        invite::accept(state, tenant, secret, answer).await
    };
    match done.await {
        Ok(_) => link_done(
            state,
            "Account created",
            "Your account is ready. Sign in with your address and the password you chose.",
        ),
        Err(e @ (Error::InvalidField(_) | Error::Forbidden(_) | Error::TooMany { .. })) => {
            // Nothing was spent: the form again, with the error.
            let email = invite::find(state, tenant, secret)
                .await
                .map(|t| t.email)
                .unwrap_or_default();
            let reply = form(
                state,
                req,
                e.status(),
                Some(pages::error_words(&e)),
                &email,
                field("name"),
                secret,
            );
            with_retry(&e, reply)
        }
        Err(e) => unusable(state, &e),
    }
}

fn form(
    state: &State,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    name: &str,
    secret: &str,
) -> Reply {
    let token = csrf::issue(req, &state.keys, state.secure_cookies());
    let reply = pages::render(
        status,
        &InvitationPage {
            org: state.org(),
            csrf_token: &token.token,
            error,
            email,
            name,
            token: secret,
            min_chars: MIN_CHARS,
        },
    );
    no_referrer(token.attach(reply))
}

fn unusable(state: &State, e: &Error) -> Reply {
    no_referrer(
        pages::ErrorPage {
            org: state.org(),
            style: state.style_href(),
            title: "This invitation cannot be used",
            link: Some(("/_frontdoor/login", "Sign in")),
        }
        .render(e),
    )
}
