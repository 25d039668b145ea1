//! `frontdoor reload`: finds the running server through the pid file in `data_dir`, checks
//! that its admin listener answers for the same process, sends `SIGHUP`, and waits until the
//! server reports the reload (its generation moves on) to print the outcome.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openidconnect::reqwest;

use super::{Outcome, ReloadStatus};
use crate::config::{Config, ConfigError};

/// How often the server's status is asked for while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Runs `frontdoor reload` for the configuration file at `path`: exits 0 when the server
/// applied it, 1 when it refused it (the problems are printed) or could not be reached.
pub fn run(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let location = match Config::locate(path) {
        Ok(l) => l,
        Err(e) => {
            // Without admin_listen and data_dir the server cannot be found: say what is wrong.
            print_problems(path, "invalid configuration", &e);
            std::process::exit(1);
        }
    };
    let pid_file = location.pid_file();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .with_context(|| {
            format!(
                "no running frontdoor for this configuration: cannot read {}",
                pid_file.display()
            )
        })?
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", pid_file.display()))?;
    let status_url = format!("http://{}/reload", location.admin_listen);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build an HTTP client")?;
    let before = rt.block_on(status(&client, &status_url))?;
    if i64::from(before.pid) != i64::from(pid) {
        bail!(
            "{} names process {pid}, but the admin listener {} belongs to process {}",
            pid_file.display(),
            location.admin_listen,
            before.pid
        );
    }
    if !same_file(path, Path::new(&before.config)) {
        eprintln!(
            "note: the server reads {}, not {}",
            before.config,
            path.display()
        );
    }
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .with_context(|| format!("cannot signal process {pid}"))?;
    let deadline = Instant::now() + timeout;
    let after = loop {
        std::thread::sleep(POLL);
        match rt.block_on(status(&client, &status_url)) {
            Ok(s) if s.generation > before.generation => break s,
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            bail!(
                "the server (process {pid}) did not report the reload within {}",
                humantime::format_duration(timeout)
            );
        }
    };
    match after.outcome {
        Outcome::Applied => {
            println!(
                "{}: reloaded (generation {})",
                after.config, after.generation
            );
            if !after.restart_required.is_empty() {
                eprintln!(
                    "warning: changed but kept until a restart: {}",
                    after.restart_required.join(", ")
                );
            }
            Ok(())
        }
        Outcome::Refused | Outcome::None => {
            eprintln!(
                "{}: reload refused; the server keeps the previous configuration",
                after.config
            );
            for line in &after.errors {
                eprintln!("  {line}");
            }
            std::process::exit(1);
        }
    }
}

/// The server's reload status from its admin listener.
async fn status(client: &reqwest::Client, url: &str) -> anyhow::Result<ReloadStatus> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the admin listener at {url}"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("cannot read {url}"))?;
    serde_json::from_slice(&body).with_context(|| format!("{url} did not answer a reload status"))
}

/// Whether two paths name the same file (either may be relative to a different directory).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

fn print_problems(path: &Path, what: &str, e: &ConfigError) {
    eprintln!("{}: {what}", path.display());
    for line in e.to_string().lines() {
        eprintln!("  {line}");
    }
}
