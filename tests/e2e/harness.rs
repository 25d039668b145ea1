//! Test harness: the real `frontdoor` binary on a fresh data dir, a real upstream HTTP server
//! that records what it receives, and a cookie-keeping HTTP client that behaves like a browser.
#![allow(dead_code)] // shared helpers; not every test uses every one

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;

pub use crate::config::{Config, Provider, Route, Rule, Target};
use axum::http::{HeaderMap, Method, Uri};
use reqwest::redirect::Policy;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Every header whose name contains `needle`, lowercase.
    pub fn names_containing(&self, needle: &str) -> Vec<String> {
        self.headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k.contains(needle))
            .collect()
    }
}

/// A real HTTP server standing in for a wiki: records each request and answers 200.
pub struct Upstream {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                log.lock().expect("lock").push(Received {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    headers,
                });
                format!("upstream saw {method} {uri}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            port,
            received,
            _task: task,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The last request received.
    pub fn last(&self) -> Received {
        self.received()
            .last()
            .cloned()
            .expect("the upstream received nothing")
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

/// A free TCP port on 127.0.0.1 for a server a test starts later.
///
/// Taken below Linux's ephemeral range (32768–60999): a port the kernel hands out for an
/// outgoing connection or a `bind(0)` (chromedriver, Chromium, upstreams) can then never land on
/// a port chosen here between this check and the server's own bind. Each test process walks its
/// own stretch of the range, so parallel test runs on one machine rarely meet either.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 97) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % SPAN;
        let port = u16::try_from(LOW + offset).expect("port fits");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}

/// A running frontdoor on its own data dir and ports.
pub struct Frontdoor {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin_port: u16,
    child: Option<Child>,
}

impl Frontdoor {
    /// Starts frontdoor with `config` on free ports.
    pub async fn launch(config: Config) -> Frontdoor {
        Frontdoor::launch_on(free_port(), free_port(), config).await
    }

    /// Like [`Frontdoor::launch`], on ports chosen beforehand (with [`free_port`]): for a peer
    /// that must know frontdoor's URLs before frontdoor starts, such as an upstream identity
    /// provider with frontdoor's redirect URI registered.
    pub async fn launch_on(port: u16, admin_port: u16, config: Config) -> Frontdoor {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = Frontdoor::completed(config, port, admin_port, dir.path()).to_yaml();
        Frontdoor::spawn_with(dir, port, admin_port, &text).await
    }

    /// `config` with the listeners, public URL, data dir and thread count of an instance on
    /// these ports and dir, where it leaves them unset.
    fn completed(mut config: Config, port: u16, admin_port: u16, dir: &Path) -> Config {
        config.listen.get_or_insert(format!("127.0.0.1:{port}"));
        config
            .admin_listen
            .get_or_insert(format!("127.0.0.1:{admin_port}"));
        // Nodes of one cluster share a public URL (the load balancer's): the config may set it.
        config
            .public_url
            .get_or_insert(format!("http://127.0.0.1:{port}"));
        config
            .data_dir
            .get_or_insert(dir.join("data").display().to_string());
        config.threads.get_or_insert(2);
        config
    }

    /// The escape hatch for a test whose file is later edited into YAML a [`Config`] cannot
    /// write (unknown keys, misspellings): these routes (YAML list items, indented by two
    /// spaces) and extra top-level text.
    pub async fn start_yaml(routes: &str, extra: &str) -> Frontdoor {
        let (port, admin_port) = (free_port(), free_port());
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin_port}\npublic_url: http://127.0.0.1:{port}\ndata_dir: {data}\nthreads: 2\n{extra}\nroutes:\n{routes}",
            data = dir.path().join("data").display()
        );
        Frontdoor::spawn_with(dir, port, admin_port, &config).await
    }

    async fn spawn_with(
        dir: tempfile::TempDir,
        port: u16,
        admin_port: u16,
        config: &str,
    ) -> Frontdoor {
        std::fs::write(dir.path().join("frontdoor.yaml"), config).expect("write config");
        let mut fd = Frontdoor {
            dir,
            port,
            admin_port,
            child: None,
        };
        fd.spawn().await;
        fd
    }

    /// Starts frontdoor with [`Config::standard`] routes in front of `upstream`: `/`
    /// authenticated, `/public` public, `/admin` for group `admins`.
    pub async fn with_upstream(upstream: &Upstream) -> Frontdoor {
        Frontdoor::launch(Config::standard(upstream)).await
    }

    /// Replaces the config file with `config` on this instance's ports and data dir (for a
    /// reload or a restart).
    pub fn write_config(&self, config: Config) {
        let config = Frontdoor::completed(config, self.port, self.admin_port, self.dir.path());
        std::fs::write(self.config_path(), config.to_yaml()).expect("write config");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("frontdoor.yaml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn issuer(&self) -> String {
        self.url("")
    }

    /// The admin listener's `/metrics` page, as text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin_url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("frontdoor.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_frontdoor"))
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn frontdoor");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        loop {
            let health = client.get(self.admin_url("/healthz")).send().await;
            let proxy = client
                .get(self.url("/.well-known/openid-configuration"))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success())
                && proxy.is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("frontdoor exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "frontdoor did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops (SIGKILL) and starts again on the same data dir and ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("frontdoor is running").id()
    }

    /// Waits up to `timeout` for the server to exit by itself (after a signal the test sent):
    /// its exit status, or `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("frontdoor.log")).unwrap_or_default()
    }

    /// Runs a CLI command against this instance's config and store.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli_with_config(&self.config_path(), args, stdin)
    }

    /// Adds a user with a password.
    pub fn add_user(&self, email: &str, name: &str, groups: &str, roles: &str, password: &str) {
        let out = self.cli(
            &[
                "users",
                "add",
                "--email",
                email,
                "--name",
                name,
                "--groups",
                groups,
                "--roles",
                roles,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        );
        assert!(
            out.status.success(),
            "users add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a CLI command that must succeed; its output.
    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "frontdoor {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a CLI command that prints JSON and must succeed; the JSON.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli_ok(args, None);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} prints JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The id of the user with this email (`users list --json`).
    pub fn user_id(&self, email: &str) -> String {
        self.cli_json(&["users", "list", "--json"])
            .as_array()
            .expect("list")
            .iter()
            .find(|u| u["email"] == email)
            .and_then(|u| u["id"].as_str())
            .unwrap_or_else(|| panic!("no user {email}"))
            .to_string()
    }

    /// The published JWKS, read as a relying party would.
    pub async fn jwks(&self) -> serde_json::Value {
        get_json(&plain_client(), &self.url("/oauth/jwks")).await
    }

    /// The provider's discovery document.
    pub async fn discovery(&self) -> serde_json::Value {
        get_json(
            &plain_client(),
            &self.url("/.well-known/openid-configuration"),
        )
        .await
    }

    /// Adds a user of `tenant` with a password; `flags` are further `users add` options
    /// (`--groups`, `--roles`), left out when empty.
    pub fn add_tenant_user(
        &self,
        tenant: &str,
        email: &str,
        name: &str,
        flags: &[&str],
        password: &str,
    ) {
        let mut args = vec![
            "users", "add", "--email", email, "--name", name, "--tenant", tenant,
        ];
        args.extend_from_slice(flags);
        args.push("--password-stdin");
        self.cli_ok(&args, Some(&format!("{password}\n")));
    }

    /// `tokens create --json` with `args` (`--user …` and more); the token.
    pub fn api_token(&self, args: &[&str]) -> String {
        let mut all = vec!["tokens", "create", "--json"];
        all.extend_from_slice(args);
        let out = self.cli_ok(&all, None);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["token"].as_str().expect("token").to_string()
    }

    /// Creates an app; returns (client_id, client_secret).
    pub fn create_app(&self, args: &[&str]) -> (String, Option<String>) {
        let mut all = vec!["apps", "create", "--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all, None);
        assert!(
            out.status.success(),
            "apps create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("apps create --json prints JSON");
        (
            v["client_id"].as_str().expect("client_id").to_string(),
            v["client_secret"].as_str().map(str::to_string),
        )
    }
}

impl Drop for Frontdoor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A user to add: (email, name, groups, roles, password), as [`Frontdoor::add_user`] takes them.
pub type User<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// The password of [`ANN`], [`BOB`] and [`ROOT`].
pub const TEAM_PW: &str = "a long enough password";
/// Ann and Bob (group wiki) and Root (an administrator), of the default tenant.
pub const ANN: User<'static> = ("ann@example.com", "Ann", "wiki", "ROLE_USER", TEAM_PW);
pub const BOB: User<'static> = ("bob@example.com", "Bob", "wiki", "ROLE_USER", TEAM_PW);
pub const ROOT: User<'static> = (
    "root@example.com",
    "Root",
    "ops",
    "ROLE_USER,ROLE_ADMIN",
    TEAM_PW,
);

/// A recording upstream, frontdoor started with `config(upstream's port)`, and `users` added:
/// the `setup()` most test files need.
pub async fn setup_with(
    config: impl FnOnce(u16) -> Config,
    users: &[User<'_>],
) -> (Upstream, Frontdoor) {
    let upstream = Upstream::start().await;
    let fd = Frontdoor::launch(config(upstream.port)).await;
    for &(email, name, groups, roles, password) in users {
        fd.add_user(email, name, groups, roles, password);
    }
    (upstream, fd)
}

/// Two nodes of one cluster on `config` (which names a shared store and key files, see
/// [`Config::shared`]): node B announces node A's public URL, as behind a load balancer.
pub async fn two_nodes(config: Config) -> (Frontdoor, Frontdoor) {
    let a = Frontdoor::launch(config.clone()).await;
    let b = Frontdoor::launch(config.public_url(a.url(""))).await;
    (a, b)
}

/// Runs the binary with `--config` and arguments.
pub fn cli_with_config(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdoor"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn frontdoor cli");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("cli output")
}

/// A cookie-keeping client that does not follow redirects by itself.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A cookie-keeping client and its jar, to read cookies back.
pub fn browser_with_jar() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .expect("client");
    (client, jar)
}

/// The `Set-Cookie` line of `resp` that sets cookie `name`, attributes included.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The `name=value` that `resp` sets for cookie `name`, without the attributes.
pub fn set_cookie_pair(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookie(resp, name).map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// The value of one cookie the jar holds for `url`.
pub fn jar_cookie(jar: &reqwest::cookie::Jar, url: &str, name: &str) -> Option<String> {
    use reqwest::cookie::CookieStore;
    let header = jar.cookies(&url.parse().expect("url"))?;
    let text = header.to_str().ok()?.to_string();
    text.split("; ")
        .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// Sends raw bytes and returns the head of the answer as it came on the wire (status line and
/// header lines, without the blank line), read until the head ends or the connection closes:
/// for requests an HTTP client library would normalise, and answers it would.
pub async fn raw_head(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

/// Sends raw bytes and returns the status code of the answer (0 without one).
pub async fn raw_status(port: u16, request: &str) -> u16 {
    raw_head(port, request)
        .await
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A client without cookies that does not follow redirects.
/// The JSON body of a GET of `url` with `client`, whatever its status.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// GET as a browser navigation.
pub async fn navigate(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request")
}

/// The `Location` of a redirect, made absolute against `base`.
pub fn location(resp: &reqwest::Response) -> String {
    let loc = resp
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {} {}", resp.status(), resp.url()))
        .to_str()
        .expect("location text");
    resp.url().join(loc).expect("join location").to_string()
}

/// The value of a form field (input) in an HTML page.
pub fn form_field(html: &str, name: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).expect("selector");
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .map(str::to_string)
}

/// Every hidden input of the first form with this id.
pub fn form_fields(html: &str, form_id: &str) -> Vec<(String, String)> {
    let doc = scraper::Html::parse_document(html);
    let sel =
        scraper::Selector::parse(&format!("form#{form_id} input[type=hidden]")).expect("selector");
    doc.select(&sel)
        .filter_map(|e| {
            Some((
                e.value().attr("name")?.to_string(),
                e.value().attr("value")?.to_string(),
            ))
        })
        .collect()
}

/// Follows redirects from `resp` until a non-redirect or a URL that starts with `stop_at`.
pub async fn follow(
    client: &reqwest::Client,
    mut resp: reqwest::Response,
    stop_at: Option<&str>,
) -> reqwest::Response {
    for _ in 0..10 {
        if !resp.status().is_redirection() {
            return resp;
        }
        let next = location(&resp);
        if stop_at.is_some_and(|s| next.starts_with(s)) {
            return resp;
        }
        resp = navigate(client, &next).await;
    }
    panic!("too many redirects");
}

/// From a protected URL to the upstream: follows the login redirects, fills the login form,
/// and returns the final response (after the redirect back to `url`).
pub async fn browser_login(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let first = navigate(client, url).await;
    assert_eq!(first.status(), 302, "a protected URL redirects to login");
    let login_page = follow(client, first, None).await;
    assert_eq!(login_page.status(), 200);
    let page_url = login_page.url().clone();
    assert_eq!(
        page_url.path(),
        "/_frontdoor/login",
        "ends on the login page"
    );
    let posted = submit_login(client, login_page, email, password).await;
    assert!(
        posted.status().is_redirection(),
        "login POST redirects, got {}",
        posted.status()
    );
    follow(client, posted, None).await
}

/// The session cookie `jar` holds for `fd`.
pub fn session_of(jar: &reqwest::cookie::Jar, fd: &Frontdoor) -> Option<String> {
    jar_cookie(jar, &fd.url("/"), "frontdoor_session")
}

/// Signs in with the login form in a new browser, starting at `path` (see [`browser_login`]),
/// and checks that the upstream answered: the browser and its session cookie.
pub async fn signed_in(
    fd: &Frontdoor,
    path: &str,
    email: &str,
    password: &str,
) -> (reqwest::Client, String) {
    let (client, jar) = browser_with_jar();
    let landed = browser_login(&client, &fd.url(path), email, password).await;
    assert_eq!(landed.status(), 200, "signed in and landed on the upstream");
    let cookie = session_of(&jar, fd).expect("session cookie");
    (client, cookie)
}

/// Opens the sign-in page in `client`, which keeps its CSRF cookie; the form's CSRF token.
pub async fn login_csrf(client: &reqwest::Client, fd: &Frontdoor) -> String {
    let page = client
        .get(fd.url("/_frontdoor/login"))
        .send()
        .await
        .expect("login page");
    let html = page.text().await.expect("html");
    form_field(&html, "csrf_token").expect("csrf token")
}

/// Posts the sign-in form as a browser: the page (for its CSRF cookie and token), then the form.
pub async fn form_login(fd: &Frontdoor, email: &str, password: &str) -> reqwest::Response {
    let client = browser();
    let csrf = login_csrf(&client, fd).await;
    client
        .post(fd.url("/_frontdoor/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
            ("return_to", "/"),
        ])
        .send()
        .await
        .expect("post login")
}

/// Fills and posts the sign-in form of `login_page` (a response showing it); the POST's answer.
pub async fn submit_login(
    client: &reqwest::Client,
    login_page: reqwest::Response,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page_url = login_page.url().clone();
    let html = login_page.text().await.expect("login html");
    let csrf = form_field(&html, "csrf_token").expect("the login form has a csrf_token");
    let return_to = form_field(&html, "return_to").expect("the login form has return_to");
    client
        .post(page_url.join("/_frontdoor/login").expect("url"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("post login")
}

/// The status of `POST /api/v1/login-check` with these credentials, sent as if through a
/// proxy for the client at `from` (`X-Forwarded-For`, believed when the test client is a
/// trusted proxy).
pub async fn login_from(fd: &Frontdoor, email: &str, password: &str, from: &str) -> u16 {
    plain_client()
        .post(fd.url("/api/v1/login-check"))
        .header("X-Forwarded-For", from)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login-check")
        .status()
        .as_u16()
}

/// The access token that `POST /api/v1/login-check` answers for these credentials.
pub async fn login_check_token(fd: &Frontdoor, email: &str, password: &str) -> String {
    let answer: serde_json::Value = plain_client()
        .post(fd.url("/api/v1/login-check"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login-check")
        .json()
        .await
        .expect("json");
    answer["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login-check answered a token: {answer}"))
        .to_string()
}

/// The newest message in the outbox that mentions `to`, waiting briefly for it.
pub async fn outbox_code(fd: &Frontdoor, to: &str) -> String {
    let dir = fd.data_dir().join("outbox");
    for _ in 0..50 {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            if text.contains(to)
                && let Some(m) = modified
                && newest.as_ref().is_none_or(|(t, _)| m >= *t)
            {
                newest = Some((m, text));
            }
        }
        if let Some((_, text)) = newest {
            let code = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .expect("a 6-digit code in the message")
                .to_string();
            return code;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} in {}", dir.display());
}

/// Asks for a one-time code for `email` (`POST /api/v1/request-login-otp`, answered 202) and
/// reads it from the outbox.
pub async fn emailed_code(fd: &Frontdoor, email: &str) -> String {
    let asked = plain_client()
        .post(fd.url("/api/v1/request-login-otp"))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .expect("request a code");
    assert_eq!(asked.status(), 202);
    outbox_code(fd, email).await
}

/// Signs a session out the way a browser does, without a cookie jar: GET the logout page with
/// the session cookie, then POST its form with the CSRF cookie and token. Returns the POST's answer.
pub async fn logout_with_cookie(fd: &Frontdoor, session_cookie: &str) -> reqwest::Response {
    let page = plain_client()
        .get(fd.url("/_frontdoor/logout"))
        .header("Cookie", format!("frontdoor_session={session_cookie}"))
        .send()
        .await
        .expect("logout page");
    let csrf_cookie = set_cookie_pair(&page, "frontdoor_csrf").expect("csrf cookie");
    let html = page.text().await.expect("html");
    let csrf = form_field(&html, "csrf_token").expect("csrf");
    plain_client()
        .post(fd.url("/_frontdoor/logout"))
        .header(
            "Cookie",
            format!("frontdoor_session={session_cookie}; {csrf_cookie}"),
        )
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout")
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
