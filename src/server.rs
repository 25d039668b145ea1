//! Starting frontdoor: store, keys, state, background tasks, and the Pingora services.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::config::{Config, PID_FILE};
use crate::federation::Federation;
use crate::gateway::Gateway;
use crate::keys::Keys;
use crate::reload::Reloader;
use crate::shutdown::DrainOnTerm;
use crate::state::{Live, State};
use crate::store::{self, DynStore};

/// A runtime for the store and background work, alive for the whole process.
pub fn background_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("frontdoor-bg")
        .enable_all()
        .build()
        .context("cannot start the background runtime")
}

/// Opens the configured store: SQLite under data_dir by default, or the `store` URL
/// (`sqlite:PATH`, `postgres://…`). Called on the background runtime, which keeps the pool.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    match config.store.as_deref() {
        None => {
            create_data_dir(&config.data_dir)?;
            let path = config.data_dir.join("frontdoor.db");
            let s = store::SqliteStore::open(&path)
                .await
                .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
            Ok(Arc::new(s))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = Path::new(
                url.trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:"),
            );
            let s = store::SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
            Ok(Arc::new(s))
        }
        Some(url) if is_postgres_url(url) => {
            let s = store::PostgresStore::open(url).await.with_context(|| {
                format!(
                    "cannot open the PostgreSQL store {}",
                    store::redact_url(url)
                )
            })?;
            Ok(Arc::new(s))
        }
        Some(_) => anyhow::bail!("store: must be a postgres:// or sqlite: URL"),
    }
}

/// Whether a `store` URL names a PostgreSQL database.
fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Creates the data directory readable only by its owner (it holds the store and keys), or
/// tightens it.
fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    crate::private_fs::ensure_dir(dir)
        .with_context(|| format!("data_dir: cannot create or restrict {}", dir.display()))
}

/// `frontdoor serve`: runs until stopped. `config` was read from `path`, which `SIGHUP`
/// reads again.
pub fn serve(config: Config, path: &Path) -> anyhow::Result<()> {
    for (key, addr) in [
        ("listen", &config.listen),
        ("admin_listen", &config.admin_listen),
    ] {
        TcpListener::bind(addr.0).with_context(|| format!("{key}: cannot listen on {addr}"))?;
    }
    if let Some(addr) = config
        .tls
        .as_ref()
        .and_then(|t| t.redirect_http_listen.as_ref())
    {
        TcpListener::bind(addr.0)
            .with_context(|| format!("tls.redirect_http_listen: cannot listen on {addr}"))?;
    }
    create_data_dir(&config.data_dir)?;
    let keys = Arc::new(
        Keys::load(
            &config.keys_dir(),
            config.keys.generate,
            config.keys.algorithm,
        )
        .context("keys")?,
    );
    let rt = background_runtime()?;
    let store = rt.block_on(open_store(&config))?;
    let config = Arc::new(config);
    // The SMTP pool keeps its tasks on the background runtime.
    let mailer = {
        let _runtime = rt.enter();
        crate::mail::Mailer::new(&config).context("mail")?
    };
    let state = Arc::new(State::new(config.clone(), store.clone(), keys, mailer));
    crate::metrics::init();
    crate::reload::metric_children(&state);
    rt.spawn(housekeeping(store));
    rt.spawn(crate::keys::rotation::keep_refreshed(Arc::downgrade(
        &state.keys,
    )));
    rt.spawn(Federation::keep_discovered(Arc::downgrade(
        &state.federation,
    )));
    let live = Arc::new(Live::new(state.clone()));
    if let Some(url) = config.store.as_deref().filter(|u| is_postgres_url(u)) {
        rt.spawn(crate::revocation::listen(live.clone(), url.to_string()));
    }
    let reloader = Arc::new(Reloader::new(path.to_path_buf(), live.clone()));
    crate::reload::reload_on_sighup(&rt, reloader.clone()).context("cannot handle SIGHUP")?;
    // Written once SIGHUP is handled: `frontdoor reload` signals the pid it finds here.
    let pid_file = config.data_dir.join(PID_FILE);
    // Writing keeps the mode of a file that exists: one an older version left looser is
    // tightened first.
    crate::private_fs::tighten_file(&pid_file)
        .with_context(|| format!("data_dir: cannot restrict {}", pid_file.display()))?;
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("data_dir: cannot write {}", pid_file.display()))?;

    let grace = config.shutdown.grace_period.0;
    let conf = ServerConf {
        threads: config.threads,
        work_stealing: config.work_stealing,
        pid_file: pid_file.to_string_lossy().into_owned(),
        upgrade_sock: config
            .data_dir
            .join("frontdoor-upgrade.sock")
            .to_string_lossy()
            .into_owned(),
        // The drain (crate::shutdown) exits as soon as nothing is in flight; Pingora's own
        // wait is the fallback, a second later.
        grace_period_seconds: Some(grace.as_secs() + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, Gateway::new(live.clone()));
    if let Some(app) = proxy.app_logic_mut() {
        app.header_read_timeout = Some(config.client_timeouts.header.0);
    }
    crate::tls::add_listeners(&mut server, &mut proxy, &config, rt.handle()).context("tls")?;
    let mut admin = Service::new(
        "frontdoor admin".to_string(),
        HttpServer::new_app(AdminApp::new(live, reloader)),
    );
    admin.add_tcp(&config.admin_listen.to_string());
    server.add_service(proxy);
    server.add_service(admin);
    tracing::info!(listen = %config.listen, tls = config.tls.is_some(), admin = %config.admin_listen, issuer = %state.issuer, "frontdoor is serving");
    drop(state);
    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnTerm {
            grace,
            pid_file: pid_file.clone(),
        }),
    });
    crate::shutdown::remove_pid_file(&pid_file);
    crate::logging::flush();
    // Keep the background runtime (store pool, housekeeping) alive while Pingora runs; leave
    // without waiting for its tasks.
    std::process::exit(0)
}

/// Purges expired rows and refreshes the active-sessions and store gauges.
async fn housekeeping(store: DynStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut rounds: u64 = 0;
    loop {
        tick.tick().await;
        let now = crate::clock::now();
        if rounds.is_multiple_of(20)
            && let Err(e) = store.purge_expired(now).await
        {
            tracing::warn!(error = %e, "could not purge expired rows");
        }
        match store.count_sessions(now).await {
            Ok(n) => {
                crate::metrics::set_active_sessions(n);
                crate::metrics::set_store_up(true);
            }
            Err(e) => {
                crate::metrics::set_store_up(false);
                tracing::warn!(error = %e, "could not count sessions");
            }
        }
        rounds += 1;
    }
}
