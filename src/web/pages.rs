//! The page templates and their rendering.

use askama::Template;
use http::StatusCode;

use crate::endpoint::Reply;
use crate::error::Error;

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// Error to show, if any.
    pub error: Option<&'a str>,
    /// CSRF token for the form.
    pub csrf_token: &'a str,
    /// Where to go after signing in.
    pub return_to: &'a str,
    /// Email to pre-fill.
    pub email: &'a str,
    /// Buttons of the upstream identity providers.
    pub providers: Vec<IdpButton>,
    /// The login design (`card` or `split`), chosen by the `form` parameter.
    pub design: &'a str,
    /// "Sign in with a passkey" is offered.
    pub passkeys: bool,
}

/// Login designs the `form` parameter selects between; the first is the default.
pub const LOGIN_DESIGNS: [&str; 2] = ["card", "split"];

/// The design a `form` value asks for (any case); unknown or absent values get the default.
pub fn login_design(form: Option<&str>) -> &'static str {
    form.and_then(|f| {
        LOGIN_DESIGNS
            .iter()
            .find(|d| d.eq_ignore_ascii_case(f.trim()))
            .copied()
    })
    .unwrap_or(LOGIN_DESIGNS[0])
}

/// A login button for an upstream identity provider.
pub struct IdpButton {
    /// Provider id (the button's id is `idp-<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where the button goes.
    pub href: String,
    /// False while the provider cannot be reached.
    pub available: bool,
}

/// The page asking for an emailed one-time code.
#[derive(Template)]
#[template(path = "login_code.html")]
pub struct LoginCodePage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// Error to show, if any.
    pub error: Option<&'a str>,
    /// CSRF token for the form.
    pub csrf_token: &'a str,
    /// Where to go after signing in.
    pub return_to: &'a str,
    /// The address the code was sent to.
    pub email: &'a str,
    /// Code lifetime in minutes.
    pub minutes: u64,
}

/// The consent page of a third-party app.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// The app's name.
    pub app_name: &'a str,
    /// The app's description.
    pub app_description: &'a str,
    /// Who is signed in.
    pub user_email: &'a str,
    /// Requested scopes, in plain words.
    pub scopes: Vec<&'static str>,
    /// CSRF token for the form.
    pub csrf_token: &'a str,
    /// The authorization request, carried in hidden fields.
    pub params: Vec<(String, String)>,
}

/// A page with a title and a message (errors, confirmations).
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// The stylesheet's path ([`State::style_href`](crate::state::State::style_href)).
    pub style: &'a str,
    /// Heading.
    pub title: &'a str,
    /// Text.
    pub message: &'a str,
    /// Optional link (href, label).
    pub link: Option<(&'a str, &'a str)>,
}

/// Asks before signing out.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// The stylesheet's path ([`State::style_href`](crate::state::State::style_href)).
    pub style: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// CSRF token.
    pub csrf_token: &'a str,
    /// Hidden fields carried along.
    pub params: Vec<(String, String)>,
}

/// The built-in developer documentation (`/oauth/docs`).
#[derive(Template)]
#[template(path = "docs.html")]
pub struct DocsPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// This instance's issuer.
    pub issuer: &'a str,
    /// Authorization code lifetime, seconds.
    pub code_ttl: u64,
    /// Access token lifetime, seconds.
    pub access_ttl: u64,
}

/// The second-factor form: after a right first factor (`pending` set), or to step up a
/// session.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// Heading.
    pub heading: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// Error to show, if any.
    pub error: Option<&'a str>,
    /// CSRF token for the form.
    pub csrf_token: &'a str,
    /// Where to go afterwards.
    pub return_to: &'a str,
    /// The half-signed-in token (sign-in only).
    pub pending: Option<&'a str>,
    /// Options for `navigator.credentials.get` (JSON) when the user has passkeys.
    pub passkey_options: Option<&'a str>,
    /// The passkey ceremony's id on the step-up page (a sign-in's is its pending token).
    pub passkey_ceremony: Option<&'a str>,
}

/// Renders a template into an HTML reply.
pub fn render(status: StatusCode, page: &impl Template) -> Reply {
    match page.render() {
        Ok(html) => Reply::html(status, html),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            Reply::html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<h1>Internal error</h1>".to_string(),
            )
        }
    }
}

/// What the sign-in pages say when the store cannot answer.
const SIGN_IN_UNAVAILABLE: &str = "Sign-in is unavailable right now; try again in a moment.";

/// What a page says about an error: the store's absence in the sign-in pages' words (the pages
/// that meet it are about signing in), every other error its own message.
pub fn error_words(e: &Error) -> String {
    match e {
        Error::StoreUnavailable => SIGN_IN_UNAVAILABLE.to_string(),
        other => other.to_string(),
    }
}

/// How a family of pages shows an error: its heading and where it points next.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage<'a> {
    /// Organisation name.
    pub org: &'a str,
    /// The stylesheet's path ([`State::style_href`](crate::state::State::style_href)).
    pub style: &'a str,
    /// Heading.
    pub title: &'a str,
    /// Optional link (href, label).
    pub link: Option<(&'a str, &'a str)>,
}

impl ErrorPage<'_> {
    /// The error as a page with its status (never a redirect), in [`error_words`].
    pub fn render(&self, e: &Error) -> Reply {
        let reply = self.with_message(e.status(), &error_words(e));
        match e.retry_after() {
            Some(seconds) => reply.retry_after(seconds),
            None => reply,
        }
    }

    /// A page with this family's heading and link and a message of its own.
    pub fn with_message(&self, status: StatusCode, message: &str) -> Reply {
        render(
            status,
            &MessagePage {
                org: self.org,
                style: self.style,
                title: self.title,
                message,
                link: self.link,
            },
        )
    }
}

/// Plain words for a scope on the consent page.
pub fn scope_words(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "Know who you are (your account id)",
        "profile" => "See your name and profile picture",
        "email" => "See your email address",
        "groups" => "See the groups you belong to",
        "roles" => "See your roles and permissions",
        "offline_access" => "Stay signed in when you are not using it",
        _ => return None,
    })
}
