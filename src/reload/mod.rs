//! Reloading the configuration of a running server (`SIGHUP`, or `frontdoor reload`, which
//! sends it): the file is read and validated again, and a new state is put in effect for the
//! requests that start afterwards. An invalid file is refused and the old state keeps serving.
//! Settings bound at start (listeners, storage, keys, threads and their runtime, cache sizes)
//! keep their running values; the reload applies the rest and names what waits for a restart.

pub mod client;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::state::{Live, State};

/// What the last reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No reload since start.
    None,
    /// The new configuration is in effect.
    Applied,
    /// The new configuration was invalid; the previous one keeps serving.
    Refused,
}

/// The reload status shown at `GET /reload` on the admin listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// The server's process id (the CLI checks it against the pid file).
    pub pid: u32,
    /// The file the server reads.
    pub config: String,
    /// Reloads tried since start; each one, applied or refused, adds one.
    pub generation: u64,
    /// The last reload's outcome.
    pub outcome: Outcome,
    /// When it happened (unix seconds).
    pub at: Option<i64>,
    /// Why it was refused, one problem per entry, with its key path.
    pub errors: Vec<String>,
    /// Changed keys that keep their running value until a restart.
    pub restart_required: Vec<String>,
}

/// Reloads one server's configuration from its file.
pub struct Reloader {
    path: PathBuf,
    live: Arc<Live>,
    status: Mutex<ReloadStatus>,
}

impl Reloader {
    /// A reloader of the file `path` into `live`.
    pub fn new(path: PathBuf, live: Arc<Live>) -> Reloader {
        let status = ReloadStatus {
            pid: std::process::id(),
            config: std::fs::canonicalize(&path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            generation: 0,
            outcome: Outcome::None,
            at: None,
            errors: Vec::new(),
            restart_required: Vec::new(),
        };
        Reloader {
            path,
            live,
            status: Mutex::new(status),
        }
    }

    /// The last reload's status.
    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the file again and applies it, or refuses it. Runs on the background runtime
    /// (a changed SMTP mailer and provider discovery start tasks there).
    pub async fn reload(&self) -> ReloadStatus {
        let current = self.live.current();
        let (errors, restart_required) = match self.next_state(&current) {
            Ok((state, restart_required)) => {
                let state = Arc::new(state);
                tokio::spawn(crate::federation::Federation::keep_discovered(
                    Arc::downgrade(&state.federation),
                ));
                self.live.replace(state.clone());
                crate::logging::apply(&state.config.log, false);
                metric_children(&state);
                tracing::info!(
                    config = %self.path.display(),
                    routes = state.gateway.routes.all().len(),
                    identity_providers = state.federation.all().len(),
                    "configuration reloaded"
                );
                // The certificate files are polled anyway; a reload need not wait for that.
                if let Err(e) = crate::tls::reload_certificates() {
                    tracing::warn!(error = %e, "TLS certificate not reloaded");
                }
                if !restart_required.is_empty() {
                    tracing::warn!(
                        keys = %restart_required.join(", "),
                        "changed settings that take effect only after a restart; their running values are kept"
                    );
                }
                (Vec::new(), restart_required)
            }
            Err(errors) => {
                tracing::error!(
                    config = %self.path.display(),
                    problems = %errors.join("; "),
                    "configuration reload refused; the previous configuration keeps serving"
                );
                (errors, Vec::new())
            }
        };
        crate::metrics::config_reload(errors.is_empty());
        crate::audit::config_reload(
            errors.is_empty(),
            &self.path.display().to_string(),
            errors.len(),
        );
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.generation += 1;
        status.outcome = if errors.is_empty() {
            Outcome::Applied
        } else {
            Outcome::Refused
        };
        status.at = Some(crate::clock::now());
        status.errors = errors;
        status.restart_required = restart_required;
        status.clone()
    }

    /// The state of the file as it is now, or its problems (one line each, with key paths).
    fn next_state(&self, current: &State) -> Result<(State, Vec<String>), Vec<String>> {
        let mut config = Config::load(&self.path).map_err(|e| {
            e.to_string()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })?;
        let restart_required = keep_bound_at_start(&current.config, &mut config);
        // Keys rotated in or retired since: published, opened or dropped from now on. A
        // folder that cannot be read fails the reload; the keys in use stay.
        current
            .keys
            .refresh()
            .map_err(|e| vec![format!("keys: {e}")])?;
        let state = current
            .reconfigured(Arc::new(config))
            .map_err(|e| vec![format!("mail: {e}")])?;
        Ok((state, restart_required))
    }
}

/// The zero-valued children of the routes and providers `state` was built with (at start and
/// after a reload).
pub fn metric_children(state: &State) {
    let routes: Vec<&str> = state
        .gateway
        .routes
        .all()
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    let idps: Vec<&str> = state
        .config
        .identity_providers
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    crate::metrics::init_config(&routes, &idps);
}

/// Puts back the running values of settings bound at start and names those that changed.
fn keep_bound_at_start(running: &Config, new: &mut Config) -> Vec<String> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($key:literal => $($field:ident).+;)*) => {$(
            if new.$($field).+ != running.$($field).+ {
                changed.push($key.to_string());
                new.$($field).+ = running.$($field).+.clone();
            }
        )*};
    }
    keep! {
        "listen" => listen;
        "admin_listen" => admin_listen;
        "data_dir" => data_dir;
        "store" => store;
        "store_file" => store_file;
        "keys" => keys;
        "threads" => threads;
        "work_stealing" => work_stealing;
        "session.cookie_name" => session.cookie_name;
        "session.cache_ttl" => session.cache_ttl;
        "session.cache_capacity" => session.cache_capacity;
        "shutdown.grace_period" => shutdown.grace_period;
        "client_timeouts.header" => client_timeouts.header;
        "tls" => tls;
        "log.format" => log.format;
    }
    changed
}

/// Reloads on every `SIGHUP` for the life of the process. The handler is installed before
/// this returns, so a `SIGHUP` that follows cannot kill the process (its default action).
pub fn reload_on_sighup(
    runtime: &tokio::runtime::Runtime,
    reloader: Arc<Reloader>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = {
        let _context = runtime.enter();
        signal(SignalKind::hangup())?
    };
    runtime.spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            reloader.reload().await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\n";

    #[test]
    fn settings_bound_at_start_keep_their_running_values() {
        let running = Config::from_yaml(&format!("{BASE}threads: 2\n")).expect("valid");
        let mut new = Config::from_yaml(
            "listen: 127.0.0.1:8081\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\nthreads: 7\nwork_stealing: false\norganization: Acme\nsession:\n  ttl: 1h\n  cookie_name: other\n",
        )
        .expect("valid");
        let changed = keep_bound_at_start(&running, &mut new);
        assert_eq!(
            changed,
            ["listen", "threads", "work_stealing", "session.cookie_name"]
        );
        assert_eq!(new.listen, running.listen);
        assert_eq!(new.threads, running.threads);
        assert!(new.work_stealing, "the running runtime's kind is kept");
        assert_eq!(new.session.cookie_name, running.session.cookie_name);
        // What may change is applied.
        assert_eq!(new.organization, "Acme");
        assert_eq!(new.session.ttl.0.as_secs(), 3600);
    }
}
