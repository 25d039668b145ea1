//! The command line: `serve`, `check-config`, and the `users` and `apps` commands, which write
//! through the same store as `serve`.

mod keys;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::audit;
use crate::clock::now;
use crate::config::Config;
use crate::secrets::{hash_password, hash_secret, random_token};
use crate::server::{background_runtime, open_store};
use crate::store::User;

/// frontdoor: an SSO front door for internal tools.
#[derive(Parser, Debug)]
#[command(name = "frontdoor", version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        default_value = "config/frontdoor.yaml",
        env = "FRONTDOOR_CONFIG"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway and the provider.
    Serve,
    /// Validate the configuration and print what is wrong, with the key.
    CheckConfig,
    /// Make the running server re-read its configuration file (sends it SIGHUP) and report
    /// whether it applied or refused it.
    Reload {
        /// How long to wait for the server's answer.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Say which route and which access rule decide a request, and why.
    Explain(ExplainArgs),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage OAuth applications.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage Api-Tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage contact hashes (access for people without an account).
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Rotate, list and retire the signing and cookie keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

/// `frontdoor explain …`
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The request's full URL, e.g. `https://wiki.example.com/admin`.
    #[arg(long)]
    url: url::Url,
    /// The request's method.
    #[arg(long, default_value = "GET")]
    method: http::Method,
    /// The caller: a user's email (their groups and roles are read from the store). Without
    /// it and without `--token-kind`, the request carries no credential.
    #[arg(long)]
    user: Option<String>,
    /// The caller's credential: `session`, `read-write` or `read-only` (an Api-Token).
    #[arg(long, value_parser = ["session", "read-write", "read-only"])]
    token_kind: Option<String>,
    /// The client's address as frontdoor sees it (after `trusted_proxies`).
    #[arg(long)]
    from: Option<std::net::IpAddr>,
}

/// `frontdoor tokens …`
#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create an Api-Token for a user; prints it once.
    Create {
        /// Owner's email.
        #[arg(long)]
        user: String,
        /// Only GET, HEAD and OPTIONS.
        #[arg(long)]
        read_only: bool,
        /// A label.
        #[arg(long, default_value = "api token")]
        name: String,
        /// Tenant of the owner.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Print JSON: {"id", "token"}.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        /// Only this owner's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id.
        id: String,
    },
}

/// `frontdoor contacts …`
#[derive(Subcommand, Debug)]
pub enum ContactsCommand {
    /// Mint a contact hash for an email, valid under a path prefix.
    Link {
        /// The contact's email.
        #[arg(long)]
        email: String,
        /// Path prefix the hash opens, e.g. /events/42.
        #[arg(long)]
        path: String,
        /// Lifetime, e.g. 30d.
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Print JSON: {"id", "hash", "path"}.
        #[arg(long)]
        json: bool,
    },
    /// List contacts.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a contact hash by id.
    Revoke {
        /// Contact id.
        id: String,
    },
}

/// `frontdoor users …`
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user.
    Add(UserAdd),
    /// List users.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a user: their sessions, tokens and grants are refused until reactivated.
    Deactivate(UserRef),
    /// Reactivate a deactivated user.
    Activate(UserRef),
    /// Remove a user with their sessions, API tokens, grants and consents.
    Remove(UserRef),
    /// Invite an email address into a tenant: mails a single-use link (`accounts.invite_ttl`)
    /// where the invitee chooses a name and a password.
    Invite {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Roles, comma-separated (ROLE_USER when none).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Print a single-use password-reset link for a user (`accounts.reset_link_ttl`), to hand
    /// over yourself; nothing is mailed.
    ResetLink(UserRef),
    /// Set a user's password (read from standard input, one line) and end their sessions.
    SetPassword(UserRef),
    /// Change a user's name, groups or roles (each left as it is when not given).
    Edit {
        /// The user.
        #[command(flatten)]
        user: UserRef,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Groups, comma-separated (an empty value removes all).
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
        /// Roles, comma-separated (an empty value removes all).
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
    },
    /// Remove a user's second factors (authenticator app, recovery codes) and end their
    /// sessions: for a user who lost their device.
    ResetFactors(UserRef),
}

/// A user named by email within a tenant.
#[derive(Args, Debug)]
pub struct UserRef {
    /// Email address.
    #[arg(long)]
    pub email: String,
    /// Tenant.
    #[arg(long, default_value = "default")]
    pub tenant: String,
}

/// `frontdoor users add`
#[derive(Args, Debug)]
pub struct UserAdd {
    /// Email address (the login).
    #[arg(long)]
    pub email: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Picture URL.
    #[arg(long)]
    pub picture: Option<String>,
    /// Groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Roles, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "ROLE_USER")]
    pub roles: Vec<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Tenant.
    #[arg(long, default_value = "default")]
    pub tenant: String,
}

/// `frontdoor apps …`
#[derive(Subcommand, Debug)]
pub enum AppsCommand {
    /// Register an application; prints the client id and the secret once.
    Create(AppCreate),
    /// List applications.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deactivate an application: no new flows, its tokens refused.
    Deactivate {
        /// Client id.
        id: String,
    },
    /// Activate an application again.
    Activate {
        /// Client id.
        id: String,
    },
    /// Delete an application and everything issued to it.
    Delete {
        /// Client id.
        id: String,
    },
}

/// `frontdoor apps create`
#[derive(Args, Debug)]
pub struct AppCreate {
    /// Name shown on the consent page.
    #[arg(long)]
    pub name: String,
    /// What the app does.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Redirect URI (repeatable), matched exactly.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URI (repeatable), matched exactly.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the app may ask for, space-separated.
    #[arg(
        long,
        default_value = "openid profile email groups roles offline_access"
    )]
    pub scopes: String,
    /// Public client (no secret; PKCE required).
    #[arg(long)]
    pub public: bool,
    /// Grant types (repeatable): authorization_code, refresh_token, client_credentials.
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// A first-party app: no consent page.
    #[arg(long)]
    pub first_party: bool,
    /// A confidential app that may leave PKCE out (required by default, RFC 9700): for a
    /// client that cannot send it.
    #[arg(long, alias = "no-pkce")]
    pub pkce_optional: bool,
    /// Audience (`aud`) its tokens may be issued for, a route's `audience` (repeatable; the first is the
    /// default). Without one, its tokens carry its client id and pass no route.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// Where frontdoor POSTs a signed logout token (OpenID Connect Back-Channel Logout 1.0)
    /// when a session in which the app got tokens ends: an http(s) URL without fragment.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Tenant.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig => match Config::load(&cli.config) {
            Ok(config) => {
                println!("{}: OK", cli.config.display());
                for kept in config.kept_paths() {
                    println!("  {kept}");
                }
                Ok(())
            }
            Err(e) => {
                eprintln!("{}: invalid configuration", cli.config.display());
                for line in e.to_string().lines() {
                    eprintln!("  {line}");
                }
                std::process::exit(1);
            }
        },
        Command::Reload { timeout } => crate::reload::client::run(&cli.config, timeout),
        Command::Keys(cmd) => keys::run(&load(&cli.config)?, cmd),
        Command::Serve => {
            let config = load(&cli.config)?;
            crate::server::serve(config, &cli.config)
        }
        Command::Explain(args) => with_store(&cli.config, |config, store| async move {
            explain(&config, &store, args).await
        }),
        Command::Users(
            cmd @ (UsersCommand::Invite { .. }
            | UsersCommand::ResetLink(_)
            | UsersCommand::SetPassword(_)
            | UsersCommand::Edit { .. }
            | UsersCommand::ResetFactors(_)),
        ) => with_store(&cli.config, |config, store| async move {
            account_life(config, store, cmd).await
        }),
        Command::Users(cmd) => with_store(&cli.config, |config, store| async move {
            match cmd {
                UsersCommand::Add(a) => users_add(&store, a).await,
                UsersCommand::Deactivate(u) => {
                    users_change(&config, &store, u, UserChange::Deactivate).await
                }
                UsersCommand::Activate(u) => {
                    users_change(&config, &store, u, UserChange::Activate).await
                }
                UsersCommand::Remove(u) => {
                    users_change(&config, &store, u, UserChange::Remove).await
                }
                UsersCommand::Invite { .. }
                | UsersCommand::ResetLink(_)
                | UsersCommand::SetPassword(_)
                | UsersCommand::Edit { .. }
                | UsersCommand::ResetFactors(_) => bail!("handled by account_life"),
                UsersCommand::List { tenant, json } => {
                    let users = store.list_users(tenant.as_deref()).await?;
                    if json {
                        let rows: Vec<_> = users
                            .iter()
                            .map(|u| serde_json::json!({"id": u.id, "tenant": u.tenant, "email": u.email, "name": u.name, "groups": u.groups, "roles": u.roles, "active": u.active}))
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        for u in users {
                            println!(
                                "{}\t{}\t{}\t{}\tgroups={}\troles={}",
                                u.id,
                                u.tenant,
                                u.email,
                                u.name,
                                u.groups.join(","),
                                u.roles.join(",")
                            );
                        }
                    }
                    Ok(())
                }
            }
        }),
        Command::Tokens(cmd) => with_store(&cli.config, |_config, store| async move {
            tokens(&store, cmd).await
        }),
        Command::Contacts(cmd) => with_store(&cli.config, |_config, store| async move {
            contacts(&store, cmd).await
        }),
        Command::Apps(cmd) => with_store(&cli.config, |_config, store| async move {
            match cmd {
                AppsCommand::Create(a) => apps_create(&store, a).await,
                AppsCommand::List { tenant, json } => {
                    let apps = store.list_apps(tenant.as_deref()).await?;
                    if json {
                        let rows: Vec<_> = apps
                            .iter()
                            .map(|a| serde_json::json!({"client_id": a.client_id, "tenant": a.tenant, "name": a.name, "active": a.active, "public": a.public, "redirect_uris": a.redirect_uris, "scopes": a.scopes, "grant_types": a.grant_types, "pkce_optional": a.pkce_optional, "backchannel_logout_uri": a.backchannel_logout_uri}))
                            .collect();
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        for a in apps {
                            println!(
                                "{}\t{}\t{}\t{}\t{}\t{}",
                                a.client_id,
                                a.tenant,
                                a.name,
                                if a.active { "active" } else { "inactive" },
                                if a.public { "public" } else { "confidential" },
                                a.redirect_uris.join(" ")
                            );
                        }
                    }
                    Ok(())
                }
                AppsCommand::Deactivate { id } => set_active(&store, &id, false).await,
                AppsCommand::Activate { id } => set_active(&store, &id, true).await,
                AppsCommand::Delete { id } => {
                    if !store.delete_app(&id).await? {
                        bail!("no application with client id {id}");
                    }
                    audit::app("deleted", &id, audit::CLI);
                    println!("deleted {id}");
                    Ok(())
                }
            }
        }),
    }
}

/// Reads the configuration, and applies its `log` section to this process.
fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(path)
        .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?;
    crate::logging::apply(&config.log, true);
    Ok(config)
}

fn with_store<F, Fut>(path: &std::path::Path, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Config, crate::store::DynStore) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = load(path)?;
    let rt = background_runtime()?;
    rt.block_on(async move {
        let store = open_store(&config).await?;
        let done = f(config, store).await;
        // A command that ended sessions (set-password, reset-factors, …) told their apps in
        // the background: those deliveries finish before the process exits.
        crate::provider::backchannel::drain().await;
        done
    })
}

async fn explain(
    config: &Config,
    store: &crate::store::DynStore,
    args: ExplainArgs,
) -> anyhow::Result<()> {
    use crate::auth::{Access, CredentialKind, Identity};
    let (kind, access) = match args.token_kind.as_deref() {
        Some("read-only") => (CredentialKind::ApiToken, Access::ReadOnly),
        Some("read-write") => (CredentialKind::ApiToken, Access::ReadWrite),
        _ => (CredentialKind::Session, Access::ReadWrite),
    };
    let identity = match &args.user {
        Some(raw) => {
            let email = email_arg("--user", raw)?;
            let host = args.url.host_str().unwrap_or_default();
            let tenant = config.tenant_for_host(host);
            let user = store
                .find_user_by_email(tenant, &email)
                .await?
                .with_context(|| format!("--user: no user {email} in tenant {tenant}"))?;
            if !user.active {
                println!("note:    {email} is deactivated: every credential of theirs is refused");
            }
            Some(Identity::for_user(&user, kind, access))
        }
        // A credential of someone in no group and with no role.
        None if args.token_kind.is_some() => Some(Identity::new(
            String::new(),
            "(any user)".into(),
            String::new(),
            String::new(),
            vec![],
            vec![],
            config
                .tenant_for_host(args.url.host_str().unwrap_or_default())
                .into(),
            access,
            kind,
        )),
        None => None,
    };
    let routes = crate::gateway::routes::RouteTable::new(config);
    let question = crate::gateway::explain::Question {
        url: &args.url,
        method: &args.method,
        identity: identity.as_ref(),
        from: args.from,
    };
    let text = crate::gateway::explain::explain(config, &routes, &question).context("--url")?;
    print!("{text}");
    Ok(())
}

/// The canonical form of an email given on the command line (see [`crate::email`]).
fn email_arg(flag: &str, raw: &str) -> anyhow::Result<String> {
    crate::email::typed(raw)
        .with_context(|| format!("{flag}: `{}` is not accepted", raw.escape_debug()))
}

async fn users_add(store: &crate::store::DynStore, a: UserAdd) -> anyhow::Result<()> {
    let email = email_arg("--email", &a.email)?;
    if a.name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let password_hash = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.len() < 8 {
            bail!("the password must have at least 8 characters");
        }
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await?
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))?;
        Some(hash)
    } else {
        None
    };
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: a.tenant,
        email,
        name: a.name.trim().to_string(),
        picture: a.picture,
        groups: a.groups.into_iter().filter(|g| !g.is_empty()).collect(),
        roles: a.roles.into_iter().filter(|r| !r.is_empty()).collect(),
        password_hash,
        active: true,
        created_at: now(),
    };
    match store.create_user(&user).await {
        Ok(()) => {
            audit::user("added", &user.id, &user.email, audit::CLI);
            println!(
                "added user {} ({}) in tenant {}",
                user.email, user.id, user.tenant
            );
            Ok(())
        }
        Err(crate::store::StoreError::Conflict(_)) => {
            bail!(
                "a user with email {} already exists in tenant {}",
                user.email,
                user.tenant
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// What `users deactivate|activate|remove` does.
enum UserChange {
    Deactivate,
    Activate,
    Remove,
}

async fn users_change(
    config: &Config,
    store: &crate::store::DynStore,
    u: UserRef,
    change: UserChange,
) -> anyhow::Result<()> {
    let user = store
        .find_user_by_email(&u.tenant, &email_arg("--email", &u.email)?)
        .await?
        .with_context(|| format!("--email: no user {} in tenant {}", u.email, u.tenant))?;
    // Deactivating or removing ends the user's sessions, and the apps that got tokens in them
    // are told (back-channel logout) — found before `remove` deletes the grants that name
    // them, delivered after the change.
    let told = match change {
        UserChange::Activate => None,
        UserChange::Deactivate | UserChange::Remove => {
            let ended = store.end_user_sessions(&user.id, None).await?;
            let notifier = logout_notifier(config, store)?;
            let deliveries = match &notifier {
                Some(n) => n.deliveries(ended).await,
                None => Vec::new(),
            };
            notifier.map(|n| (n, deliveries))
        }
    };
    // On PostgreSQL the store tells every node at once (LISTEN/NOTIFY); otherwise running
    // nodes notice within `session.cache_ttl`.
    let (done, verb) = match change {
        UserChange::Deactivate => (store.set_user_active(&user.id, false).await?, "deactivated"),
        UserChange::Activate => (store.set_user_active(&user.id, true).await?, "activated"),
        UserChange::Remove => (store.delete_user(&user.id).await?, "removed"),
    };
    if !done {
        bail!("no user {} in tenant {}", user.email, user.tenant);
    }
    audit::user(verb, &user.id, &user.email, audit::CLI);
    println!("{verb} {} ({})", user.email, user.id);
    if let Some((notifier, deliveries)) = told
        && !deliveries.is_empty()
    {
        let all = deliveries.len();
        let delivered = notifier.deliver_all(deliveries).await;
        println!("back-channel logout: {delivered} of {all} apps told");
    }
    Ok(())
}

/// The back-channel logout notifier of the CLI, with the server's keys; `None` when they do
/// not exist yet (no server ever ran, so no app got a token).
fn logout_notifier(
    config: &Config,
    store: &crate::store::DynStore,
) -> anyhow::Result<Option<crate::provider::backchannel::Notifier>> {
    let dir = config.keys_dir();
    if !dir.join(crate::keys::SIGNING_KEY_FILE).exists() {
        return Ok(None);
    }
    let keys = crate::keys::Keys::load(&dir, false, config.keys.algorithm).context("keys")?;
    Ok(Some(crate::provider::backchannel::Notifier::new(
        store.clone(),
        std::sync::Arc::new(keys),
        config.issuer(),
    )))
}

/// `users invite | reset-link | set-password | edit`: the rules of `accounts`, applied through
/// a `State` of this configuration (its store, keys and mailer), as the server applies them.
async fn account_life(
    config: Config,
    store: crate::store::DynStore,
    cmd: UsersCommand,
) -> anyhow::Result<()> {
    use crate::accounts::{invite, reset, users};
    let keys = crate::keys::Keys::load(&config.keys_dir(), false, config.keys.algorithm)
        .context("keys")?;
    let mailer = crate::mail::Mailer::new(&config).context("mail")?;
    let state = crate::state::State::new(
        std::sync::Arc::new(config),
        store,
        std::sync::Arc::new(keys),
        mailer,
    );
    let user_of = |u: &UserRef| {
        let (tenant, email) = (u.tenant.clone(), email_arg("--email", &u.email));
        let store = state.store.clone();
        async move {
            let email = email?;
            store
                .find_user_by_email(&tenant, &email)
                .await?
                .with_context(|| format!("--email: no user {email} in tenant {tenant}"))
        }
    };
    match cmd {
        UsersCommand::Invite {
            email,
            groups,
            roles,
            tenant,
        } => {
            let inviter = invite::Inviter {
                id: None,
                name: "An administrator",
                host: None,
            };
            let new = invite::NewInvite {
                email,
                groups,
                roles,
            };
            let made = invite::create(&state, &tenant, inviter, new).await?;
            println!(
                "invited {} into tenant {} ({})",
                made.email, made.tenant, made.id
            );
        }
        UsersCommand::ResetLink(u) => {
            let user = user_of(&u).await?;
            println!("{}", reset::issue(&state, &user, None).await?);
        }
        UsersCommand::SetPassword(u) => {
            let user = user_of(&u).await?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let new = line.trim_end_matches(['\n', '\r']);
            let ended = reset::set_password(&state, user, new).await?;
            println!("password set for {} ({ended} sessions ended)", u.email);
        }
        UsersCommand::ResetFactors(u) => {
            let user = user_of(&u).await?;
            let had = users::reset_factors(&state, &user.tenant, &user.id).await?;
            println!(
                "{}: {}",
                u.email,
                if had {
                    "second factors removed, sessions ended"
                } else {
                    "had no second factor; sessions ended"
                }
            );
        }
        UsersCommand::Edit {
            user,
            name,
            groups,
            roles,
        } => {
            let found = user_of(&user).await?;
            let edit = users::Edit {
                name,
                groups,
                roles,
                active: None,
            };
            let done = users::edit(&state, &found.tenant, None, &found.id, edit).await?;
            println!(
                "{}\tname={}\tgroups={}\troles={}",
                done.email,
                done.name,
                done.groups.join(","),
                done.roles.join(",")
            );
        }
        _ => bail!("not an account-life command"),
    }
    Ok(())
}

/// The `apps create` flag of a spec field.
fn flag_of(field: &str) -> &str {
    match field {
        "redirect_uris" => "redirect-uri",
        "post_logout_redirect_uris" => "post-logout-redirect-uri",
        "grant_types" => "grant",
        "audiences" => "audience",
        "pkce_optional" => "pkce-optional",
        "backchannel_logout_uri" => "backchannel-logout-uri",
        other => other,
    }
}

async fn apps_create(store: &crate::store::DynStore, a: AppCreate) -> anyhow::Result<()> {
    let spec = crate::manage::AppSpec {
        name: a.name,
        description: a.description,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        scopes: a.scopes,
        grant_types: a.grants,
        public: a.public,
        first_party: a.first_party,
        audiences: a.audiences,
        pkce_optional: a.pkce_optional,
        backchannel_logout_uri: a.backchannel_logout_uri,
    };
    let (app, secret) = crate::manage::new_app(&spec, &a.tenant, None)
        .map_err(|e| anyhow::anyhow!("--{}: {}", flag_of(e.field), e.message))?;
    let client_id = app.client_id.clone();
    store.create_app(&app).await?;
    audit::app("created", &client_id, audit::CLI);
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"client_id": client_id, "client_secret": secret})
        )?;
    } else {
        writeln!(out, "client_id:     {client_id}")?;
        match secret {
            Some(s) => {
                writeln!(out, "client_secret: {s}")?;
                writeln!(out, "The secret is shown only once; store it now.")?;
            }
            None => writeln!(out, "public client: no secret; use PKCE (S256)")?,
        }
    }
    Ok(())
}

async fn set_active(store: &crate::store::DynStore, id: &str, active: bool) -> anyhow::Result<()> {
    if !store.set_app_active(id, active).await? {
        bail!("no application with client id {id}");
    }
    let action = crate::manage::owned::active_action(active);
    audit::app(action, id, audit::CLI);
    println!("{action} {id}");
    Ok(())
}

async fn tokens(store: &crate::store::DynStore, cmd: TokensCommand) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Create {
            user,
            read_only,
            name,
            tenant,
            json,
        } => {
            let owner = store
                .find_user_by_email(&tenant, &email_arg("--user", &user)?)
                .await?
                .with_context(|| format!("--user: no user {user} in tenant {tenant}"))?;
            let (record, token) =
                crate::manage::new_api_token(&owner.id, &owner.tenant, &name, read_only)
                    .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))?;
            store.create_api_token(&record).await?;
            audit::api_token("created", &record.id, &owner.id, audit::CLI);
            if json {
                println!("{}", serde_json::json!({"id": record.id, "token": token}));
            } else {
                println!("id:    {}", record.id);
                println!("token: {token}");
                println!(
                    "access: {}",
                    if read_only { "read-only" } else { "read-write" }
                );
                println!("The token is shown only once; send it as the `Api-Token` header.");
            }
            Ok(())
        }
        TokensCommand::List { user, tenant, json } => {
            let owner = match &user {
                Some(email) => Some(
                    store
                        .find_user_by_email(
                            tenant.as_deref().unwrap_or("default"),
                            &email_arg("--user", email)?,
                        )
                        .await?
                        .with_context(|| format!("--user: no user {email}"))?,
                ),
                None => None,
            };
            let list = store
                .list_api_tokens(owner.as_ref().map(|u| u.id.as_str()), tenant.as_deref())
                .await?;
            let mut emails = std::collections::HashMap::new();
            for t in &list {
                if !emails.contains_key(&t.user_id) {
                    let email = store
                        .get_user(&t.user_id)
                        .await?
                        .map(|u| u.email)
                        .unwrap_or_default();
                    emails.insert(t.user_id.clone(), email);
                }
            }
            let access = |t: &crate::store::ApiToken| {
                if t.read_only {
                    "read-only"
                } else {
                    "read-write"
                }
            };
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| serde_json::json!({
                        "id": t.id, "name": t.name, "user": emails.get(&t.user_id), "tenant": t.tenant,
                        "access": access(t), "created_at": t.created_at, "last_used_at": t.last_used_at,
                        "revoked": t.revoked_at.is_some(), "revoked_at": t.revoked_at,
                    }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for t in &list {
                    println!(
                        "{}\t{}\t{}\t{}\tcreated={}\tlast_used={}{}",
                        t.id,
                        t.name,
                        emails.get(&t.user_id).map_or("", String::as_str),
                        access(t),
                        t.created_at,
                        t.last_used_at
                            .map_or("never".to_string(), |x| x.to_string()),
                        if t.revoked_at.is_some() {
                            "\trevoked"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(())
        }
        TokensCommand::Revoke { id } => {
            if !store.revoke_api_token(&id, now()).await? {
                bail!("no active token with id {id}");
            }
            audit::api_token("revoked", &id, "", audit::CLI);
            println!("revoked {id}");
            Ok(())
        }
    }
}

async fn contacts(store: &crate::store::DynStore, cmd: ContactsCommand) -> anyhow::Result<()> {
    match cmd {
        ContactsCommand::Link {
            email,
            path,
            ttl,
            tenant,
            json,
        } => {
            let email = email_arg("--email", &email)?;
            // The canonical form itself: a link is compared with canonical request paths.
            if crate::gateway::path::canonical(&path).as_deref() != Ok(path.as_str()) {
                bail!("--path: `{path}` is not a plain absolute path");
            }
            let ttl = humantime::parse_duration(&ttl)
                .with_context(|| format!("--ttl: `{ttl}` is not a duration"))?;
            let hash = random_token();
            let contact = crate::store::Contact {
                id: uuid::Uuid::new_v4().simple().to_string(),
                tenant,
                email,
                hash_hash: hash_secret(&hash),
                path_prefix: path.clone(),
                created_at: now(),
                expires_at: now() + ttl.as_secs() as i64,
                revoked: false,
            };
            store.create_contact(&contact).await?;
            audit::contact("created", &contact.id, audit::CLI);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": contact.id, "hash": hash, "path": path, "expires_at": contact.expires_at})
                );
            } else {
                println!("id:   {}", contact.id);
                println!("hash: {hash}");
                println!(
                    "Send it as `X-Contact-Hash: {hash}` under {path}; it is shown only once."
                );
            }
            Ok(())
        }
        ContactsCommand::List { tenant, json } => {
            let list = store.list_contacts(tenant.as_deref()).await?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|c| serde_json::json!({"id": c.id, "tenant": c.tenant, "email": c.email, "path": c.path_prefix, "created_at": c.created_at, "expires_at": c.expires_at, "revoked": c.revoked}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for c in list {
                    println!(
                        "{}\t{}\t{}\t{}\texpires={}{}",
                        c.id,
                        c.tenant,
                        c.email,
                        c.path_prefix,
                        c.expires_at,
                        if c.revoked { "\trevoked" } else { "" }
                    );
                }
            }
            Ok(())
        }
        ContactsCommand::Revoke { id } => {
            if !store.revoke_contact(&id).await? {
                bail!("no contact with id {id}");
            }
            audit::contact("revoked", &id, audit::CLI);
            println!("revoked {id}");
            Ok(())
        }
    }
}
