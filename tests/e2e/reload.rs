//! Graceful reload and shutdown against the real binary: a changed file applied on SIGHUP and
//! by `frontdoor reload` while a long request keeps its old route, an invalid file refused with
//! its key named while the old routes keep serving, and SIGTERM draining a request in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::harness::*;
use crate::idp::Idp;

/// An upstream whose answers wait until the test releases them: a request that is
/// deterministically in flight for as long as the test needs.
struct Gate {
    port: u16,
    arrived: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
    _task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start() -> Gate {
        let arrived = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Semaphore::new(0));
        let (a, r) = (arrived.clone(), release.clone());
        let app = Router::new().fallback(move || {
            let (a, r) = (a.clone(), r.clone());
            async move {
                a.fetch_add(1, Ordering::SeqCst);
                if let Ok(permit) = r.acquire().await {
                    permit.forget();
                }
                "gate opened"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gate");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gate {
            port,
            arrived,
            release,
            _task: task,
        }
    }

    /// Waits until `n` requests have reached the gate.
    async fn wait_arrived(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.arrived.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the request never reached the gate"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lets one waiting request answer.
    fn open_one(&self) {
        self.release.add_permits(1);
    }
}

/// Starts a GET that will be held at the gate; its (status, body), or `None` when the
/// connection ended without a whole answer.
fn held_request(url: String) -> tokio::task::JoinHandle<Option<(u16, String)>> {
    tokio::spawn(async move {
        let resp = plain_client().get(url).send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    })
}

/// GET through frontdoor: (status, body).
async fn get(fd: &Frontdoor, path: &str) -> (u16, String) {
    let resp = plain_client()
        .get(fd.url(path))
        .send()
        .await
        .expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// The server's reload status from the admin listener.
async fn reload_status(fd: &Frontdoor) -> Value {
    get_json(&plain_client(), &fd.admin_url("/reload")).await
}

/// Waits until the server has handled `generation` reloads; its status then.
async fn wait_generation(fd: &Frontdoor, generation: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = reload_status(fd).await;
        if s["generation"].as_u64() >= Some(generation) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no reload reported: {s}\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(fd: &Frontdoor, sig: Signal) {
    let pid = i32::try_from(fd.pid()).expect("pid fits");
    kill(Pid::from_raw(pid), sig).expect("signal frontdoor");
}

fn edit_config(fd: &Frontdoor, edit: impl FnOnce(String) -> String) {
    let path = fd.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    std::fs::write(&path, edit(text)).expect("write config");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Public routes `/app` and `/slow` to these ports, and `/new` when given one.
fn routes(app: u16, slow: u16, new: Option<u16>) -> Config {
    let config = Config::new()
        .route(Route::new("/app", app).public())
        .route(Route::new("/slow", slow).public());
    match new {
        Some(port) => config.route(Route::new("/new", port).public()),
        None => config,
    }
}

/// A public route as YAML text, for the test that edits its file into invalid ones.
fn public_route(prefix: &str, port: u16) -> String {
    format!(
        "  - {{ host: '*', path_prefix: {prefix}, upstream: 'http://127.0.0.1:{port}', policy: public }}\n"
    )
}

#[tokio::test]
async fn sighup_and_reload_command_switch_routes_while_a_long_request_keeps_its_own() {
    let (a, b, gate) = (
        Upstream::start().await,
        Upstream::start().await,
        Gate::start().await,
    );
    let mut fd = Frontdoor::launch(routes(a.port, gate.port, None)).await;
    // The pid file names this process (`frontdoor reload` finds it there).
    let pid_file = fd.data_dir().join("frontdoor.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file").trim(),
        fd.pid().to_string()
    );
    assert_eq!(reload_status(&fd).await["generation"], 0);
    assert_eq!(get(&fd, "/app/x").await.0, 200);
    assert_eq!(a.count(), 1);
    assert_eq!(get(&fd, "/new").await.0, 404);

    // A long request is in flight on /slow when the file moves /app and /slow to B and adds /new.
    let held = held_request(fd.url("/slow/report"));
    gate.wait_arrived(1).await;
    fd.write_config(routes(b.port, b.port, Some(b.port)));
    signal(&fd, Signal::SIGHUP);
    let s = wait_generation(&fd, 1).await;
    assert_eq!(s["outcome"], "applied", "{s}");
    assert_eq!(
        get(&fd, "/app/after").await,
        (200, "upstream saw GET /app/after".into())
    );
    assert_eq!(get(&fd, "/new/route").await.0, 200);
    assert_eq!(get(&fd, "/slow/fresh").await.0, 200);
    assert_eq!(b.last().uri, "/slow/fresh");
    assert_eq!(a.count(), 1, "nothing more reached the old upstream");
    // The request that started before the reload finishes on its original route.
    assert!(!held.is_finished());
    gate.open_one();
    assert_eq!(
        held.await.expect("held request"),
        Some((200, "gate opened".into()))
    );

    // The same with `frontdoor reload`: /app back to A and /slow back to the gate …
    fd.write_config(routes(a.port, gate.port, Some(b.port)));
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "reload failed: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("reloaded (generation 2)"), "{stdout}");
    assert_eq!(get(&fd, "/app/again").await.0, 200);
    assert_eq!(a.last().uri, "/app/again");
    // … and, with a request held on the gate, /slow to B.
    let held = held_request(fd.url("/slow/second"));
    gate.wait_arrived(2).await;
    fd.write_config(routes(a.port, b.port, Some(b.port)));
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "reload failed: {}", stderr(&out));
    assert_eq!(get(&fd, "/slow/moved").await.0, 200);
    assert_eq!(b.last().uri, "/slow/moved");
    gate.open_one();
    assert_eq!(
        held.await.expect("held request"),
        Some((200, "gate opened".into()))
    );
    assert!(fd.log().contains("configuration reloaded"));

    // A changed thread count is not applied without a restart, and the reload says so.
    fd.write_config(routes(a.port, b.port, Some(b.port)).threads(3));
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "reload failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("kept until a restart: threads"),
        "{}",
        stderr(&out)
    );
    assert_eq!(reload_status(&fd).await["restart_required"][0], "threads");
    fd.kill();
}

#[tokio::test]
async fn an_invalid_file_is_refused_with_its_key_and_the_old_routes_keep_serving() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let fd = Frontdoor::start_yaml(&public_route("/app", a.port), "").await;
    let original = std::fs::read_to_string(fd.config_path()).expect("config");

    // An unknown key.
    edit_config(&fd, |t| {
        t.replace(&format!(":{}'", a.port), &format!(":{}'", b.port))
            .replace("policy: public", "policy: public, upstrem: x")
    });
    let out = fd.cli(&["reload"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reload refused")
            && stderr(&out).contains("routes[0].upstrem: unknown field `upstrem`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(get(&fd, "/app/still").await.0, 200);
    assert_eq!(a.last().uri, "/app/still");
    assert_eq!(b.count(), 0);

    // A bad upstream URL, by SIGHUP: the admin listener and the metrics show the refusal.
    std::fs::write(
        fd.config_path(),
        original.replace(
            &format!("upstream: 'http://127.0.0.1:{}'", a.port),
            "upstream: 'ftp://127.0.0.1:21'",
        ),
    )
    .expect("write config");
    signal(&fd, Signal::SIGHUP);
    let s = wait_generation(&fd, 2).await;
    assert_eq!(s["outcome"], "refused", "{s}");
    assert!(
        s["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("routes[0].upstream: scheme `ftp`")),
        "{s}"
    );
    let metrics = fd.metrics().await;
    assert!(
        metrics.contains("frontdoor_config_reloads_total{outcome=\"refused\"} 2")
            && metrics.contains("frontdoor_config_last_reload_successful 0"),
        "{metrics}"
    );
    assert!(fd.log().contains("routes[0].upstream: scheme `ftp`"));
    assert_eq!(get(&fd, "/app/still-old").await.0, 200);
    assert_eq!(a.last().uri, "/app/still-old");

    // Fixed, it applies.
    std::fs::write(
        fd.config_path(),
        original.replace(&format!(":{}'", a.port), &format!(":{}'", b.port)),
    )
    .expect("write config");
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(get(&fd, "/app/new").await.0, 200);
    assert_eq!(b.last().uri, "/app/new");
    let metrics = fd.metrics().await;
    assert!(metrics.contains("frontdoor_config_last_reload_successful 1"));
}

#[tokio::test]
async fn sigterm_drains_a_request_in_flight_then_exits_0() {
    let gate = Gate::start().await;
    let mut fd = Frontdoor::launch(
        Config::new()
            .route(Route::new("/slow", gate.port).public())
            .set("shutdown.grace_period", "60s"),
    )
    .await;
    let held = held_request(fd.url("/slow/export"));
    gate.wait_arrived(1).await;
    signal(&fd, Signal::SIGTERM);
    // Draining: the server waits for the request instead of exiting.
    assert!(
        fd.wait_exit(Duration::from_millis(500)).await.is_none(),
        "exited with a request in flight:\n{}",
        fd.log()
    );
    gate.open_one();
    assert_eq!(
        held.await.expect("held request"),
        Some((200, "gate opened".into()))
    );
    let status = fd
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("frontdoor exits once drained");
    assert!(status.success(), "{status}\n{}", fd.log());
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", fd.port)).await;
    assert!(
        refused.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the listener is gone"
    );
    assert!(!fd.data_dir().join("frontdoor.pid").exists());
    assert!(fd.log().contains("drained; exiting"));
}

#[tokio::test]
async fn sigterm_exits_after_the_grace_period_when_a_request_never_ends() {
    let gate = Gate::start().await;
    let mut fd = Frontdoor::launch(
        Config::new()
            .route(Route::new("/slow", gate.port).public())
            .set("shutdown.grace_period", "1s"),
    )
    .await;
    let held = held_request(fd.url("/slow/stuck"));
    gate.wait_arrived(1).await;
    signal(&fd, Signal::SIGTERM);
    let status = fd
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("frontdoor exits when the grace period is over");
    assert!(status.success(), "{status}");
    assert!(fd.log().contains("grace period over"));
    // The request that never finished is cut, not answered.
    assert_eq!(held.await.expect("held request"), None);
}

#[tokio::test]
async fn a_reload_adds_and_removes_identity_providers() {
    let idp = Idp::start(
        "rp",
        "rp-secret",
        &["http://127.0.0.1:1/callback".to_string()],
        None,
        &[],
        serde_json::json!([]),
    )
    .await;
    let a = Upstream::start().await;
    let without = || Config::new().route(Route::new("/app", &a).public());
    let fd = Frontdoor::launch(without()).await;
    let login_page = || async {
        navigate(&plain_client(), &fd.url("/_frontdoor/login"))
            .await
            .text()
            .await
            .expect("login page")
    };
    assert!(!login_page().await.contains("idp-corp"));
    fd.write_config(
        without()
            .federation(Provider::new("corp", "Corp SSO", &idp.issuer, "rp").secret("rp-secret")),
    );
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    // The new provider is discovered by itself: its button becomes a link.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let html = login_page().await;
        if html.contains("<a class=\"button idp\" id=\"idp-corp\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Corp SSO never became available:\n{html}\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fd.write_config(without());
    let out = fd.cli(&["reload"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!login_page().await.contains("idp-corp"));
}
