//! frontdoor under faults of its own: killed with SIGKILL in the middle of a burst of writes,
//! and its PostgreSQL store restarted under load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::harness::*;

const PW: &str = "a long enough password";

/// What the burst saw confirmed to its clients before the kill.
#[derive(Default)]
struct Confirmed {
    /// Session cookies ("name=value") from completed form logins.
    sessions: Vec<String>,
    /// Refresh tokens from login-check answers.
    refresh_tokens: Vec<String>,
    /// (token id, token value) from `POST /api/v1/tokens` answers.
    api_tokens: Vec<(String, String)>,
    /// (client id, secret) from `POST /api/v1/apps` answers.
    apps: Vec<(String, String)>,
    /// Users whose `frontdoor users add` exited successfully.
    users: Vec<String>,
}

/// A browser's form login at `base`: the answer's status, and its session cookie on success.
async fn form_login_at(base: &str) -> Option<(u16, Option<String>)> {
    let client = browser();
    let page = client
        .get(format!("{base}/_frontdoor/login"))
        .send()
        .await
        .ok()?;
    let html = page.text().await.ok()?;
    let csrf = form_field(&html, "csrf_token")?;
    let posted = client
        .post(format!("{base}/_frontdoor/login"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PW),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .ok()?;
    let cookie = set_cookie_pair(&posted, "frontdoor_session");
    Some((posted.status().as_u16(), cookie))
}

/// The session cookie of a successful form login at `base`.
async fn form_login(base: &str) -> Option<String> {
    match form_login_at(base).await? {
        (303, cookie) => cookie,
        _ => None,
    }
}

async fn post_json(base: &str, path: &str, token: &str, body: Value) -> Option<Value> {
    let r = plain_client()
        .post(format!("{base}{path}"))
        .header("Api-Token", token)
        .json(&body)
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_burst_keeps_everything_it_confirmed_and_nothing_half_written() {
    let upstream = Upstream::start().await;
    let mut fd = Frontdoor::with_upstream(&upstream).await;
    fd.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);
    let out = fd.cli(
        &[
            "tokens",
            "create",
            "--user",
            "ann@example.com",
            "--name",
            "automation",
            "--json",
        ],
        None,
    );
    assert!(out.status.success());
    let admin_token = serde_json::from_slice::<Value>(&out.stdout).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let (cc_id, cc_secret) = fd.create_app(&["--name", "Batch", "--grant", "client_credentials"]);
    let cc_secret = cc_secret.expect("secret");

    let confirmed = Arc::new(Mutex::new(Confirmed::default()));
    let base = fd.url("");
    let config = fd.config_path();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (base, confirmed, stop) = (base.clone(), confirmed.clone(), stop.clone());
        let (admin_token, cc_id, cc_secret) =
            (admin_token.clone(), cc_id.clone(), cc_secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                match (worker + n) % 5 {
                    0 => {
                        if let Some(c) = form_login(&base).await {
                            confirmed.lock().expect("lock").sessions.push(c);
                        }
                    }
                    1 => {
                        let r = plain_client()
                            .post(format!("{base}/api/v1/login-check"))
                            .json(&json!({"email": "ann@example.com", "password": PW}))
                            .send()
                            .await;
                        if let Ok(r) = r
                            && r.status() == 200
                            && let Ok(v) = r.json::<Value>().await
                            && let Some(t) = v["refresh_token"].as_str()
                        {
                            confirmed.lock().expect("lock").refresh_tokens.push(t.into());
                        }
                    }
                    2 => {
                        let body = json!({"name": format!("t{worker}-{n}"), "read_only": false});
                        if let Some(v) = post_json(&base, "/api/v1/tokens", &admin_token, body).await {
                            let id = v["id"].as_str().unwrap_or_default().to_string();
                            let token = v["token"].as_str().unwrap_or_default().to_string();
                            confirmed.lock().expect("lock").api_tokens.push((id, token));
                        }
                    }
                    3 => {
                        let body = json!({"name": format!("app {worker}-{n}"), "grant_types": ["client_credentials"]});
                        if let Some(v) = post_json(&base, "/api/v1/apps", &admin_token, body).await {
                            let id = v["client_id"].as_str().unwrap_or_default().to_string();
                            let secret = v["client_secret"].as_str().unwrap_or_default().to_string();
                            confirmed.lock().expect("lock").apps.push((id, secret));
                        }
                    }
                    _ => {
                        let _ = plain_client()
                            .post(format!("{base}/oauth/token"))
                            .basic_auth(&cc_id, Some(&cc_secret))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await;
                    }
                }
            }
        }));
    }
    // Users added by the CLI (another process writing the same SQLite file) meanwhile.
    let cli_users = {
        let (config, confirmed, stop) = (config.clone(), confirmed.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let email = format!("user{i}@example.com");
                let out = cli_with_config(
                    &config,
                    &[
                        "users",
                        "add",
                        "--email",
                        &email,
                        "--name",
                        "U",
                        "--password-stdin",
                    ],
                    Some(PW),
                );
                if out.status.success() {
                    confirmed.lock().expect("lock").users.push(email);
                }
            }
        })
    };

    // Let the burst get going, then SIGKILL the node in the middle of it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    fd.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.expect("worker");
    }
    cli_users.await.expect("cli users");
    let confirmed = std::mem::take(&mut *confirmed.lock().expect("lock"));
    assert!(
        !confirmed.sessions.is_empty()
            && !confirmed.refresh_tokens.is_empty()
            && !confirmed.api_tokens.is_empty()
            && !confirmed.apps.is_empty(),
        "the burst confirmed writes of every kind before the kill: {} sessions, {} refresh tokens, {} API tokens, {} apps, {} users",
        confirmed.sessions.len(),
        confirmed.refresh_tokens.len(),
        confirmed.api_tokens.len(),
        confirmed.apps.len(),
        confirmed.users.len()
    );

    // The database file is intact and holds no half-written row.
    let db = fd.data_dir().join("frontdoor.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .expect("open the store");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity check");
    assert_eq!(check, "ok");
    let half: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM apps WHERE name = '' OR (public = 0 AND (secret_hash IS NULL OR secret_hash = ''))",
    )
    .fetch_one(&mut conn)
    .await
    .expect("apps");
    assert_eq!(half, 0, "no app without its name or secret");
    conn.close().await.expect("close");

    fd.restart().await;
    // Every confirmed session still signs its browser in.
    for cookie in &confirmed.sessions {
        let r = plain_client()
            .get(fd.url("/wiki"))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("proxied");
        assert_eq!(r.status(), 200, "session {cookie} survived");
    }
    for (id, token) in &confirmed.api_tokens {
        let r = plain_client()
            .get(fd.url("/wiki"))
            .header("Api-Token", token)
            .send()
            .await
            .expect("proxied");
        assert_eq!(r.status(), 200, "API token {id} survived");
    }
    for (id, secret) in &confirmed.apps {
        let r = plain_client()
            .post(fd.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("grant");
        assert_eq!(r.status(), 200, "app {id} survived with its secret");
    }
    for t in &confirmed.refresh_tokens {
        let r = plain_client()
            .post(fd.url("/api/v1/token/refresh"))
            .json(&json!({"refresh_token": t}))
            .send()
            .await
            .expect("refresh");
        assert_eq!(r.status(), 200, "refresh token survived");
    }
    let listed = fd.cli(&["users", "list", "--json"], None);
    let users: Vec<Value> = serde_json::from_slice(&listed.stdout).expect("users json");
    let emails: Vec<&str> = users.iter().filter_map(|u| u["email"].as_str()).collect();
    for u in &confirmed.users {
        assert!(emails.contains(&u.as_str()), "user {u} survived");
    }
}

/// A PostgreSQL server of this test's own (it is stopped and started again).
struct OwnPostgres {
    port: u16,
}

impl OwnPostgres {
    fn start(port: u16) -> OwnPostgres {
        let out = std::process::Command::new("scripts/postgres.sh")
            .arg(port.to_string())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        OwnPostgres { port }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs pg_ctl on this server's cluster; whether it succeeded.
    fn pg_ctl(&self, args: &[&str]) -> bool {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL installed")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin/pg_ctl"))
            .find(|p| p.exists())
            .expect("pg_ctl");
        let data = format!("/tmp/frontdoor-pg-{}/data", self.port);
        let mut cmd = if unsafe_is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        cmd.args(["--pgdata", &data])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Ends every connection and stops the server, keeping what was committed. Not
    /// `--mode=immediate`: the test cluster runs with `synchronous_commit=off`
    /// (`scripts/postgres.sh`), so a crash-like stop lost the last commits now and then (the
    /// test's user, then refused as unknown after the restart).
    fn stop(&self) {
        assert!(
            self.pg_ctl(&["stop", "--mode=fast", "--wait"]),
            "pg_ctl stop"
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.pg_ctl(&["stop", "--mode=immediate", "--wait"]);
        let _ = std::fs::remove_dir_all(format!("/tmp/frontdoor-pg-{}", self.port));
    }
}

fn unsafe_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn while_postgres_restarts_warm_sessions_pass_store_work_gets_503_and_service_recovers() {
    let pg = OwnPostgres::start(free_port());
    let upstream = Upstream::start().await;
    let mut fd = Frontdoor::launch(
        Config::single(&upstream)
            .set("store", pg.url())
            .set("session.cache_ttl", "60s"),
    )
    .await;
    fd.add_user("ann@example.com", "Ann", "wiki", "ROLE_USER", PW);
    let warm = form_login(&fd.url("")).await.expect("login");
    let cold = form_login(&fd.url("")).await.expect("login");
    // A fresh process: only the session used after the restart is in its cache.
    fd.restart().await;
    let first = plain_client()
        .get(fd.url("/wiki"))
        .header("Cookie", &warm)
        .send()
        .await
        .expect("get");
    assert_eq!(first.status(), 200);

    // Load through the outage: a warm session's requests, and logins that need the store.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let statuses: Arc<Mutex<HashMap<&'static str, Vec<u16>>>> = Arc::default();
    let load = {
        let (stop, statuses, warm, url) =
            (stop.clone(), statuses.clone(), warm.clone(), fd.url(""));
        tokio::spawn(async move {
            let client = plain_client();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = client
                    .get(format!("{url}/wiki"))
                    .header("Cookie", &warm)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses
                    .lock()
                    .expect("lock")
                    .entry("warm")
                    .or_default()
                    .push(r);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    pg.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What needs the store is refused with 503, quickly and in the right shape.
    let started = Instant::now();
    let r = plain_client()
        .post(fd.url("/api/v1/login-check"))
        .json(&json!({"email": "ann@example.com", "password": PW}))
        .send()
        .await
        .expect("login-check");
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered within the pool's timeout"
    );
    let body: Value = r.json().await.expect("envelope");
    assert_eq!(body["error"]["status"], 503);
    let (status, cookie) = form_login_at(&fd.url("")).await.expect("login page");
    assert_eq!(status, 503, "the login form says the store is away");
    assert!(cookie.is_none());
    let ready = plain_client()
        .get(fd.admin_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "not ready while the store is away");
    // A session the cache has not seen cannot be checked: 503, not a login loop.
    let unknown = plain_client()
        .get(fd.url("/wiki"))
        .header("Accept", "application/json")
        .header("Cookie", &cold)
        .send()
        .await
        .expect("cold session");
    assert_eq!(unknown.status(), 503);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg = OwnPostgres::start(pg.port);
    // Recovers by itself: ready again, and logins work, without a restart. The wait polls
    // `/readyz`, not the login: every sign-in attempt counts against the per-address rate
    // limit, and a login polled for as long as a slow restart takes could spend it (429).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = plain_client()
            .get(fd.admin_url("/readyz"))
            .send()
            .await
            .expect("readyz");
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The pool may still hold a connection from before the restart: its first use fails
    // (503) and drops it, so a login is retried while it meets such a connection.
    loop {
        let login = plain_client()
            .post(fd.url("/api/v1/login-check"))
            .json(&json!({"email": "ann@example.com", "password": PW}))
            .send()
            .await
            .expect("login-check");
        if login.status() == 200 {
            break;
        }
        let status = login.status();
        assert!(
            status == 503 && Instant::now() < deadline,
            "login-check after recovery: {status} {}\n{}",
            login.text().await.unwrap_or_default(),
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        form_login(&fd.url("")).await.is_some(),
        "form login works again"
    );
    assert_eq!(
        plain_client()
            .get(fd.admin_url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.expect("load");
    let warm_statuses = statuses
        .lock()
        .expect("lock")
        .remove("warm")
        .unwrap_or_default();
    assert!(warm_statuses.len() > 50, "the load ran through the outage");
    assert!(
        warm_statuses.iter().all(|s| *s == 200),
        "the warm session was served throughout: {:?}",
        warm_statuses
            .iter()
            .filter(|s| **s != 200)
            .collect::<Vec<_>>()
    );
    drop(pg);
}
