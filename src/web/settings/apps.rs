//! Settings → Developers → OAuth Applications: the grid, the create and edit forms, the page
//! of one application (its secret shown once), and the actions of its "more options" menu.

use askama::Template;
use http::StatusCode;

use super::{APPS, Chrome, Page, when};
use crate::endpoint::Reply;
use crate::error::Error;
use crate::manage::owned;
use crate::manage::{AppSpec, GRANT_TYPES};
use crate::provider::scopes;
use crate::store::App;
use crate::web::{flash, pages};

/// A row of the grid.
pub struct AppRow {
    /// Client id.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Organisation (tenant).
    pub tenant: String,
    /// Active or not.
    pub active: bool,
    /// "Confidential" or "Public".
    pub kind: &'static str,
    /// Creation time in words.
    pub created: String,
}

impl AppRow {
    fn of(app: &App) -> AppRow {
        AppRow {
            client_id: app.client_id.clone(),
            name: app.name.clone(),
            tenant: app.tenant.clone(),
            active: app.active,
            kind: if app.public { "Public" } else { "Confidential" },
            created: when(app.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "settings_apps.html")]
struct AppsPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    apps: Vec<AppRow>,
    total: usize,
    filter_name: &'a str,
    filter_tenant: &'a str,
    filter_status: &'a str,
    tenants: Vec<String>,
    notice: Option<&'static str>,
}

/// What a finished action says on the page it lands on (fixed words, picked by a query key).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Application created.",
        "updated" => "Changes saved.",
        "activated" => "Application activated: it may sign people in and get tokens again.",
        "deactivated" => {
            "Application deactivated: its tokens and grants are refused until you activate it."
        }
        "deleted" => "Application deleted, with every token issued to it.",
        "secret" => "A new client secret was issued; the old one no longer works.",
        _ => return None,
    })
}

/// `GET …/apps?name=&tenant=&status=`: the grid.
pub async fn list(page: &Page<'_>) -> Result<Reply, Error> {
    let q: std::collections::HashMap<String, String> = page.req.query_pairs().into_iter().collect();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let all = owned::visible_apps(page.state, &page.caller, None, None).await?;
    let mut tenants: Vec<String> = all.iter().map(|a| a.tenant.clone()).collect();
    tenants.push(page.caller.identity.tenant.clone());
    tenants.sort();
    tenants.dedup();
    let total = all.len();
    let status = get("status");
    let tenant = get("tenant");
    let apps = owned::visible_apps(
        page.state,
        &page.caller,
        Some(get("name")),
        Some(status).filter(|s| !s.is_empty()),
    )
    .await?
    .iter()
    .filter(|a| tenant.is_empty() || a.tenant == tenant)
    .map(AppRow::of)
    .collect();
    let form = page.csrf();
    let reply = pages::render(
        StatusCode::OK,
        &AppsPage {
            chrome: page.chrome("apps"),
            csrf_token: &form.token,
            apps,
            total,
            filter_name: get("name"),
            filter_tenant: tenant,
            filter_status: status,
            tenants,
            notice: notice(q.get("done").map(String::as_str)),
        },
    );
    Ok(form.attach(reply))
}

/// The fields of the create and edit forms.
#[derive(Default)]
struct FormValues {
    name: String,
    description: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: Vec<String>,
    grant_types: Vec<String>,
    public: bool,
    first_party: bool,
    audiences: String,
    pkce_optional: bool,
    backchannel_logout_uri: String,
}

impl FormValues {
    fn of(app: &App) -> FormValues {
        FormValues {
            name: app.name.clone(),
            description: app.description.clone(),
            redirect_uris: app.redirect_uris.join("\n"),
            post_logout_redirect_uris: app.post_logout_redirect_uris.join("\n"),
            scopes: app.scopes.clone(),
            grant_types: app.grant_types.clone(),
            public: app.public,
            first_party: app.first_party,
            audiences: app.audiences.join("\n"),
            pkce_optional: app.pkce_optional,
            backchannel_logout_uri: app.backchannel_logout_uri.clone().unwrap_or_default(),
        }
    }

    fn submitted(page: &Page<'_>) -> FormValues {
        let form = page.form();
        let text = |k: &str| form.get(k).cloned().unwrap_or_default();
        FormValues {
            name: text("name"),
            description: text("description"),
            redirect_uris: text("redirect_uris"),
            post_logout_redirect_uris: text("post_logout_redirect_uris"),
            scopes: page.form_all("scopes"),
            grant_types: page.form_all("grant_types"),
            public: form.get("client_type").map(String::as_str) == Some("public"),
            first_party: form.contains_key("first_party"),
            audiences: text("audiences"),
            pkce_optional: form.contains_key("pkce_optional"),
            backchannel_logout_uri: text("backchannel_logout_uri"),
        }
    }

    fn spec(&self) -> AppSpec {
        let lines = |s: &str| -> Vec<String> {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        };
        AppSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            scopes: self.scopes.join(" "),
            grant_types: self.grant_types.clone(),
            public: self.public,
            first_party: self.first_party,
            audiences: lines(&self.audiences),
            pkce_optional: self.pkce_optional,
            backchannel_logout_uri: Some(self.backchannel_logout_uri.clone()),
        }
    }
}

/// A checkbox of the form.
struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "settings_app_form.html")]
struct AppFormPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    heading: &'a str,
    action: String,
    submit: &'a str,
    cancel: String,
    error: Option<String>,
    name: &'a str,
    description: &'a str,
    redirect_uris: &'a str,
    post_logout_redirect_uris: &'a str,
    audiences: &'a str,
    backchannel_logout_uri: &'a str,
    public: bool,
    first_party: bool,
    pkce_optional: bool,
    scopes: Vec<Choice>,
    grants: Vec<Choice>,
}

fn render_form(
    page: &Page<'_>,
    status: StatusCode,
    editing: Option<&str>,
    v: &FormValues,
    error: Option<String>,
) -> Reply {
    let form = page.csrf();
    let (heading, action, submit, cancel) = match editing {
        Some(id) => (
            "Edit application",
            format!("{APPS}/{id}"),
            "Save changes",
            format!("{APPS}/{id}"),
        ),
        None => (
            "Create an OAuth application",
            APPS.to_string(),
            "Create application",
            APPS.to_string(),
        ),
    };
    let reply = pages::render(
        status,
        &AppFormPage {
            chrome: page.chrome("apps"),
            csrf_token: &form.token,
            heading,
            action,
            submit,
            cancel,
            error,
            name: &v.name,
            description: &v.description,
            redirect_uris: &v.redirect_uris,
            post_logout_redirect_uris: &v.post_logout_redirect_uris,
            audiences: &v.audiences,
            backchannel_logout_uri: &v.backchannel_logout_uri,
            public: v.public,
            first_party: v.first_party,
            pkce_optional: v.pkce_optional,
            scopes: scopes::SUPPORTED
                .iter()
                .map(|s| Choice {
                    value: s,
                    label: pages::scope_words(s).unwrap_or(s),
                    checked: v.scopes.iter().any(|x| x == s),
                })
                .collect(),
            grants: GRANT_TYPES
                .iter()
                .map(|g| Choice {
                    value: g,
                    label: match *g {
                        "authorization_code" => "Authorization code (people sign in through it)",
                        "refresh_token" => "Refresh token (stay signed in)",
                        _ => "Client credentials (the app acts as itself)",
                    },
                    checked: v.grant_types.iter().any(|x| x == g),
                })
                .collect(),
        },
    );
    form.attach(reply)
}

/// `GET …/apps/new`.
pub fn new_form(page: &Page<'_>) -> Result<Reply, Error> {
    let defaults = FormValues {
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..FormValues::default()
    };
    Ok(render_form(page, StatusCode::OK, None, &defaults, None))
}

/// `POST …/apps`: creates, then shows the app with its secret, once.
pub async fn create(page: &Page<'_>) -> Result<Reply, Error> {
    let v = FormValues::submitted(page);
    match owned::register(page.state, &page.caller, &v.spec()).await {
        Ok((app, secret)) => {
            let reply = Reply::see_other(&format!("{APPS}/{}?done=created", app.client_id));
            Ok(match secret {
                Some(s) => flash::Flash::new("app_secret", &app.client_id, &s).attach(
                    reply,
                    &page.state.keys,
                    page.state.secure_cookies(),
                ),
                None => reply,
            })
        }
        Err(e @ (Error::InvalidField(_) | Error::Forbidden(_))) => {
            Ok(render_form(page, e.status(), None, &v, Some(e.to_string())))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "settings_app.html")]
struct AppPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    app: &'a App,
    created: String,
    secret: Option<String>,
    notice: Option<&'static str>,
}

/// `GET …/apps/<id>`: the app; right after creation or regeneration, its secret, once.
pub async fn show(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let app = owned::visible_app(page.state, &page.caller, id).await?;
    let secret =
        flash::take(page.req, &page.state.keys, "app_secret", &app.client_id).map(|f| f.value);
    let q: std::collections::HashMap<String, String> = page.req.query_pairs().into_iter().collect();
    let form = page.csrf();
    let reply = pages::render(
        StatusCode::OK,
        &AppPage {
            chrome: page.chrome("apps"),
            csrf_token: &form.token,
            created: when(app.created_at),
            app: &app,
            secret,
            notice: notice(q.get("done").map(String::as_str)),
        },
    );
    Ok(flash::clear(form.attach(reply), page.req))
}

/// `GET …/apps/<id>/edit`.
pub async fn edit_form(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let app = owned::visible_app(page.state, &page.caller, id).await?;
    Ok(render_form(
        page,
        StatusCode::OK,
        Some(&app.client_id),
        &FormValues::of(&app),
        None,
    ))
}

/// `POST …/apps/<id>`: saves the edit form.
pub async fn update(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let v = FormValues::submitted(page);
    // Audiences and the back-channel logout URI are an administrator's to set; others' forms
    // do not show them.
    let spec = |app: &crate::store::App| {
        let mut spec = v.spec();
        if !page.caller.is_admin() {
            spec.audiences = app.audiences.clone();
            spec.backchannel_logout_uri = app.backchannel_logout_uri.clone();
        }
        spec
    };
    match owned::update(page.state, &page.caller, id, spec, None).await {
        Ok((app, secret)) => {
            let reply = Reply::see_other(&format!("{APPS}/{}?done=updated", app.client_id));
            Ok(match secret {
                Some(s) => flash::Flash::new("app_secret", &app.client_id, &s).attach(
                    reply,
                    &page.state.keys,
                    page.state.secure_cookies(),
                ),
                None => reply,
            })
        }
        Err(e @ Error::InvalidField(_)) => Ok(render_form(
            page,
            e.status(),
            Some(id),
            &v,
            Some(e.to_string()),
        )),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "settings_confirm.html")]
struct ConfirmPage<'a> {
    chrome: Chrome<'a>,
    csrf_token: &'a str,
    title: String,
    message: &'a str,
    action: String,
    confirm: &'a str,
    cancel: String,
}

/// `GET …/apps/<id>/delete`: asks first.
pub async fn confirm_delete(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let app = owned::visible_app(page.state, &page.caller, id).await?;
    let form = page.csrf();
    let reply = pages::render(
        StatusCode::OK,
        &ConfirmPage {
            chrome: page.chrome("apps"),
            csrf_token: &form.token,
            title: format!("Delete {}?", app.name),
            message: "The application, its client secret and every token issued to it are deleted. People signed in through it are signed out of it. This cannot be undone.",
            action: format!("{APPS}/{}/delete", app.client_id),
            confirm: "Delete application",
            cancel: format!("{APPS}/{}", app.client_id),
        },
    );
    Ok(form.attach(reply))
}

/// `POST …/apps/<id>/delete`.
pub async fn delete(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    owned::delete(page.state, &page.caller, id).await?;
    Ok(Reply::see_other(&format!("{APPS}?done=deleted")))
}

/// `POST …/apps/<id>/activate|deactivate`.
pub async fn set_active(page: &Page<'_>, id: &str, active: bool) -> Result<Reply, Error> {
    let app = owned::set_active(page.state, &page.caller, id, active).await?;
    let done = if active { "activated" } else { "deactivated" };
    Ok(Reply::see_other(&format!(
        "{APPS}/{}?done={done}",
        app.client_id
    )))
}

/// `POST …/apps/<id>/secret`: a new secret, shown once on the app's page.
pub async fn regenerate(page: &Page<'_>, id: &str) -> Result<Reply, Error> {
    let (app, secret) = owned::regenerate_secret(page.state, &page.caller, id).await?;
    let reply = Reply::see_other(&format!("{APPS}/{}?done=secret", app.client_id));
    Ok(
        flash::Flash::new("app_secret", &app.client_id, &secret).attach(
            reply,
            &page.state.keys,
            page.state.secure_cookies(),
        ),
    )
}
