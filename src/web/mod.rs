//! Server-rendered pages: templates (askama, checked at compile time), the sign-in and
//! settings pages, CSRF, static assets, and the validation of return URLs.

pub mod csrf;
pub mod flash;
pub mod form;
pub mod invitation;
pub mod pages;
pub mod password;
pub mod return_to;
pub mod settings;
pub mod sign_in;
pub mod two_factor;

use crate::endpoint::Reply;

/// The stylesheet of every page.
pub const STYLE_CSS: &str = include_str!("../../static/style.css");

/// `GET /_frontdoor/static/style.css`.
pub fn style() -> Reply {
    Reply::new(http::StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS).header(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    )
}

/// The one script of the settings pages (copy buttons).
pub const SETTINGS_JS: &str = include_str!("../../static/settings.js");

/// `GET /_frontdoor/static/settings.js`.
pub fn settings_script() -> Reply {
    script(SETTINGS_JS)
}

/// The passkey script of Settings → Security and of the second-factor form.
pub const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");

/// `GET /_frontdoor/static/passkeys.js`.
pub fn passkeys_script() -> Reply {
    script(PASSKEYS_JS)
}

fn script(body: &'static str) -> Reply {
    Reply::new(http::StatusCode::OK, "text/javascript; charset=utf-8", body).header(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    )
}
