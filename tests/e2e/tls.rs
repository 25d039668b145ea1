//! TLS on the listener: HTTPS with a browser login, Secure cookies, HSTS and
//! `X-Forwarded-Proto`, the HTTP→HTTPS redirect listener, certificates replaced on disk
//! without a restart, and check-config naming the `tls` keys. Certificates are made by the
//! `openssl` command line for each test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::harness::{
    Config, Upstream, cli_with_config, follow, form_field, free_port, navigate, plain_client,
    set_cookie,
};

/// Runs `openssl` in `dir` with these space-separated arguments; panics with its output when
/// it fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("run openssl (installed by scripts/test.sh)");
    assert!(
        out.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test certificate authority: `NAME-ca.crt` and `NAME-ca.key` in `dir`.
pub(crate) fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {name}-ca.key -out {name}-ca.crt -days 2 -subj /CN=frontdoor-test-ca-{name}"
        ),
    );
    dir.join(format!("{name}-ca.crt"))
}

/// A server certificate for 127.0.0.1 and localhost signed by CA `name`:
/// (`NAME.crt`, `NAME.key`).
pub(crate) fn make_server_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    openssl(
        dir,
        &format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout {name}.key -out {name}.csr -subj /CN=localhost"
        ),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {name}-ca.crt -CAkey {name}-ca.key -set_serial 2 \
             -days 2 -out {name}.crt -extfile {name}.ext"
        ),
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

/// A client that trusts only the CA in `ca_file` and opens a new connection per request
/// (so each request makes a fresh handshake).
fn client_trusting(ca_file: &Path, cookies: bool) -> reqwest::Client {
    let pem = std::fs::read(ca_file).expect("read CA");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
        .pool_max_idle_per_host(0)
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// frontdoor serving HTTPS on `port`, with its certificate files in `dir`.
pub(crate) struct TlsFrontdoor {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    admin_port: u16,
    redirect_port: u16,
    child: Child,
}

impl TlsFrontdoor {
    /// Starts frontdoor with `tls` serving the files `server.crt`/`server.key` (copied from
    /// the certificate made for CA `ca`) and one authenticated route to `upstream`.
    pub(crate) async fn start(upstream: &Upstream) -> TlsFrontdoor {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = make_ca(dir.path(), "one");
        let (crt, key) = make_server_cert(dir.path(), "one");
        std::fs::copy(&crt, dir.path().join("server.crt")).expect("copy cert");
        std::fs::copy(&key, dir.path().join("server.key")).expect("copy key");
        let (port, admin_port, redirect_port) = (free_port(), free_port(), free_port());
        let config = Config::single(upstream)
            .listeners(port, admin_port, &dir.path().join("data"))
            .public_url(format!("https://127.0.0.1:{port}"))
            .set(
                "tls.cert",
                dir.path().join("server.crt").display().to_string(),
            )
            .set(
                "tls.key",
                dir.path().join("server.key").display().to_string(),
            )
            .set("tls.reload_interval", "1s")
            .set(
                "tls.redirect_http_listen",
                format!("127.0.0.1:{redirect_port}"),
            )
            .set("tls.hsts.max_age", "365d")
            .set("tls.hsts.include_subdomains", true);
        std::fs::write(dir.path().join("frontdoor.yaml"), config.to_yaml()).expect("write config");
        let log = std::fs::File::create(dir.path().join("frontdoor.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_frontdoor"))
            .arg("--config")
            .arg(dir.path().join("frontdoor.yaml"))
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn frontdoor");
        let mut fd = TlsFrontdoor {
            dir,
            port,
            admin_port,
            redirect_port,
            child,
        };
        let client = client_trusting(&ca, false);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = client
                .get(fd.url("/.well-known/openid-configuration"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return fd;
            }
            if let Ok(Some(status)) = fd.child.try_wait() {
                panic!("frontdoor exited with {status}:\n{}", fd.log());
            }
            assert!(
                Instant::now() < deadline,
                "frontdoor did not come up over https:\n{}",
                fd.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("frontdoor.log")).unwrap_or_default()
    }

    /// The admin listener's `/metrics`.
    async fn metrics(&self) -> String {
        plain_client()
            .get(format!("http://127.0.0.1:{}/metrics", self.admin_port))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of `frontdoor_tls_certificate_reloads_total{outcome}`.
    async fn reloads(&self, result: &str) -> u64 {
        let text = self.metrics().await;
        let prefix = format!("frontdoor_tls_certificate_reloads_total{{outcome=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in metrics:\n{text}"))
    }

    /// `frontdoor_tls_certificate_expiry_timestamp_seconds`, in seconds from now.
    async fn expires_in(&self) -> i64 {
        let text = self.metrics().await;
        let at: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("frontdoor_tls_certificate_expiry_timestamp_seconds "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no expiry in metrics:\n{text}"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        at - now
    }

    /// Replaces the served files the way certificate tools do: write aside, then rename.
    fn replace_files(&self, cert: &[u8], key: &[u8]) {
        for (name, content) in [("server.key", key), ("server.crt", cert)] {
            let tmp = self.path(&format!("{name}.new"));
            std::fs::write(&tmp, content).expect("write new file");
            std::fs::rename(&tmp, self.path(name)).expect("rename into place");
        }
    }
}

impl Drop for TlsFrontdoor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a fresh handshake with a client trusting only `ca` succeeds.
async fn handshake_trusted(fd: &TlsFrontdoor, ca: &Path) -> bool {
    client_trusting(ca, false)
        .get(fd.url("/.well-known/openid-configuration"))
        .send()
        .await
        .is_ok()
}

/// Adds the user Ada (password `correct horse battery`) through the CLI.
fn add_ada(fd: &TlsFrontdoor) {
    let out = cli_with_config(
        &fd.path("frontdoor.yaml"),
        &[
            "users",
            "add",
            "--email",
            "ada@example.com",
            "--name",
            "Ada",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hsts(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn https_login_sets_a_secure_cookie_and_sends_hsts_and_forwarded_proto() {
    let upstream = Upstream::start().await;
    let fd = TlsFrontdoor::start(&upstream).await;
    add_ada(&fd);
    let browser = client_trusting(&fd.path("one-ca.crt"), true);
    const HSTS: &str = "max-age=31536000; includeSubDomains";

    // The protected page sends the browser to the login page, over https, with HSTS.
    let first = navigate(&browser, &fd.url("/wiki/Start?x=1")).await;
    assert_eq!(first.status(), 302);
    assert_eq!(
        hsts(&first).as_deref(),
        Some(HSTS),
        "own redirects carry HSTS"
    );
    let page = follow(&browser, first, None).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().scheme(), "https");
    assert_eq!(page.url().path(), "/_frontdoor/login");
    assert_eq!(hsts(&page).as_deref(), Some(HSTS), "pages carry HSTS");
    let login_url = page.url().join("/_frontdoor/login").expect("url");
    let html = page.text().await.expect("html");
    let posted = browser
        .post(login_url)
        .form(&[
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
            (
                "csrf_token",
                &form_field(&html, "csrf_token").expect("csrf_token"),
            ),
            (
                "return_to",
                &form_field(&html, "return_to").expect("return_to"),
            ),
        ])
        .send()
        .await
        .expect("post login");
    assert!(posted.status().is_redirection(), "{}", posted.status());
    let session_cookie = set_cookie(&posted, "frontdoor_session")
        .expect("the login sets the session cookie")
        .to_string();
    assert!(
        session_cookie
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("secure")),
        "the session cookie is Secure on TLS: {session_cookie}"
    );

    // Back at the protected page: proxied, with HSTS, and the upstream is told https.
    let proxied = follow(&browser, posted, None).await;
    assert_eq!(proxied.status(), 200);
    assert_eq!(proxied.url().as_str(), fd.url("/wiki/Start?x=1"));
    assert_eq!(
        hsts(&proxied).as_deref(),
        Some(HSTS),
        "proxied responses carry HSTS"
    );
    assert_eq!(
        proxied.text().await.expect("body"),
        "upstream saw GET /wiki/Start?x=1"
    );
    let seen = upstream.last();
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("ada@example.com")
    );

    // Provider endpoints carry it too.
    let discovery = browser
        .get(fd.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(hsts(&discovery).as_deref(), Some(HSTS));
}

#[tokio::test]
async fn http2_and_http1_share_the_tls_listener_with_the_same_identity_rules() {
    let upstream = Upstream::start().await;
    let fd = TlsFrontdoor::start(&upstream).await;
    add_ada(&fd);
    let out = cli_with_config(
        &fd.path("frontdoor.yaml"),
        &[
            "tokens",
            "create",
            "--user",
            "ada@example.com",
            "--name",
            "h2",
            "--json",
        ],
        None,
    );
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let token = token["token"].as_str().expect("token").to_string();
    let ca = fd.path("one-ca.crt");
    let h2 = client_trusting(&ca, false);
    let pem = std::fs::read(&ca).expect("read CA");
    let h1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"))
        .http1_only()
        .build()
        .expect("client");

    // ALPN offers both; each client gets the protocol it asked for.
    for (client, version) in [
        (&h2, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        let resp = client
            .get(fd.url("/wiki/x"))
            .header("api-token", &token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), 200, "{version:?}");
        assert_eq!(
            upstream.last().header("x-auth-request-email").as_deref(),
            Some("ada@example.com")
        );
    }

    // Over HTTP/2: identity and forwarding headers from the client are stripped; frontdoor's
    // cookies are cut out of every `cookie` field (HTTP/2 sends them split), others kept.
    let resp = h2
        .get(fd.url("/wiki/y"))
        .header("api-token", &token)
        .header("x-auth-request-user", "root@example.com")
        .header("x-auth-request-groups", "admins")
        .header("x-forwarded-for", "10.9.9.9")
        .header("cookie", "theme=dark")
        .header("cookie", "frontdoor_session=forged; lang=en")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("ada@example.com")
    );
    assert_ne!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("admins")
    );
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    // The request id, pushed into the HTTP/1 wire form of the request and the response,
    // reaches both ends over HTTP/2 too (merged into the map for the HTTP/2 answer).
    let ids: Vec<_> = resp.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(seen.header("x-request-id").as_deref(), ids[0].to_str().ok());
    let cookies = seen
        .headers
        .get_all("cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        cookies.contains("theme=dark") && cookies.contains("lang=en"),
        "the app's cookies pass: {cookies}"
    );
    assert!(!cookies.contains("frontdoor_session"), "{cookies}");
    // The upstream is HTTP/1.1 and gets a Host made from `:authority`.
    assert_eq!(
        seen.header("host").as_deref(),
        Some(format!("127.0.0.1:{}", fd.port).as_str())
    );

    // A `Host` field that disagrees with `:authority` is refused, as on HTTP/1.1 with an
    // absolute-form target: routing and the upstream must see one host.
    let resp = h2
        .get(fd.url("/wiki/z"))
        .header("api-token", &token)
        .header("host", "evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 400);
    assert_ne!(upstream.last().uri, "/wiki/z");

    // Without a credential, HTTP/2 gets the same 401 envelope.
    let resp = h2.get(fd.url("/wiki/w")).send().await.expect("request");
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.expect("JSON envelope");
    assert!(
        body["error"].is_object() || body["error"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn the_redirect_listener_sends_every_request_to_https() {
    let upstream = Upstream::start().await;
    let fd = TlsFrontdoor::start(&upstream).await;
    let http = |path: &str| format!("http://127.0.0.1:{}{path}", fd.redirect_port);
    for (method, path) in [
        ("GET", "/wiki/Some%20Page?action=edit&next=%2Fhome"),
        ("POST", "/_frontdoor/token"),
        ("GET", "/"),
    ] {
        let resp = plain_client()
            .request(method.parse().expect("method"), http(path))
            .send()
            .await
            .expect("redirect listener");
        assert_eq!(resp.status(), 308, "{method} {path}");
        assert_eq!(
            resp.headers().get("location").and_then(|v| v.to_str().ok()),
            Some(fd.url(path).as_str()),
            "{method} {path}"
        );
        assert!(
            hsts(&resp).is_none(),
            "HSTS is meaningless (and not sent) over plain HTTP"
        );
    }
    // A Host header is kept (with the https port); one that is not a host is not used.
    let status_and_location = |host: &'static str| {
        let url = http("/x?y=1");
        async move {
            let resp = plain_client()
                .get(url)
                .header("host", host)
                .send()
                .await
                .expect("redirect listener");
            (
                resp.status().as_u16(),
                resp.headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            )
        }
    };
    assert_eq!(
        status_and_location("wiki.example.com").await,
        (
            308,
            Some(format!("https://wiki.example.com:{}/x?y=1", fd.port))
        )
    );
    assert_eq!(
        status_and_location("evil.example/x").await,
        (308, Some(fd.url("/x?y=1")))
    );
    assert_eq!(
        upstream.count(),
        0,
        "nothing is proxied from the redirect listener"
    );
}

#[tokio::test]
async fn replaced_certificate_files_serve_new_handshakes_without_a_restart() {
    let upstream = Upstream::start().await;
    let fd = TlsFrontdoor::start(&upstream).await;
    let (ca_one, ca_two) = (fd.path("one-ca.crt"), make_ca(fd.dir.path(), "two"));
    let (two_crt, two_key) = make_server_cert(fd.dir.path(), "two");
    assert!(handshake_trusted(&fd, &ca_one).await);
    assert!(!handshake_trusted(&fd, &ca_two).await);
    let pid = fd.child.id();
    // The test certificates are valid for two days: the expiry alert's metric says so.
    let day = 86_400;
    assert!((day..=2 * day).contains(&fd.expires_in().await));

    // A broken replacement (not a certificate; then a key that does not match) is refused
    // and the old certificate keeps serving.
    let key_one = std::fs::read(fd.path("server.key")).expect("key");
    fd.replace_files(b"-----BEGIN CERTIFICATE-----\nnot base64!\n", &key_one);
    wait_for_reloads(&fd, "refused", 1).await;
    assert!(
        handshake_trusted(&fd, &ca_one).await,
        "the old certificate still serves"
    );
    let crt_two = std::fs::read(&two_crt).expect("cert two");
    fd.replace_files(&crt_two, &key_one);
    wait_for_reloads(&fd, "refused", 2).await;
    assert!(
        handshake_trusted(&fd, &ca_one).await,
        "the old certificate still serves"
    );
    assert!(!handshake_trusted(&fd, &ca_two).await);
    assert_eq!(fd.reloads("loaded").await, 0);
    let log = fd.log();
    assert!(
        log.contains("new TLS certificate refused") && log.contains("tls.key"),
        "a refused pair is logged with its key:\n{log}"
    );

    // A good replacement serves the next handshakes, in the same process.
    fd.replace_files(&crt_two, &std::fs::read(&two_key).expect("key two"));
    wait_for_reloads(&fd, "loaded", 1).await;
    assert_eq!(
        fd.reloads("refused").await,
        2,
        "each refused pair is reported once, not at every check"
    );
    assert!(
        handshake_trusted(&fd, &ca_two).await,
        "the new certificate serves"
    );
    assert!((day..=2 * day).contains(&fd.expires_in().await));
    assert!(
        !handshake_trusted(&fd, &ca_one).await,
        "the old one no longer does"
    );
    assert_eq!(fd.child.id(), pid);
    let resp = client_trusting(&ca_two, false)
        .get(fd.url("/wiki/"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("request over the new certificate");
    assert_eq!(resp.status(), 401, "routes answer as before");
}

/// Waits (bounded) until the reload counter reaches `at_least`.
async fn wait_for_reloads(fd: &TlsFrontdoor, result: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while fd.reloads(result).await < at_least {
        assert!(
            Instant::now() < deadline,
            "no {result} certificate reload:\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn check_config_names_the_tls_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path(), "one");
    let (crt, key) = make_server_cert(dir.path(), "one");
    make_ca(dir.path(), "two");
    let (_, other_key) = make_server_cert(dir.path(), "two");
    let check = |tls: String| {
        let path = dir.path().join("frontdoor.yaml");
        std::fs::write(
            &path,
            format!("listen: 127.0.0.1:8443\nadmin_listen: 127.0.0.1:9090\npublic_url: https://localhost:8443\n{tls}"),
        )
        .expect("write config");
        let out = cli_with_config(&path, &["check-config"], None);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let missing = dir.path().join("missing.crt");
    let (ok, err) = check(format!(
        "tls: {{ cert: {}, key: {} }}\n",
        missing.display(),
        key.display()
    ));
    assert!(!ok);
    assert!(
        err.contains(&format!("tls.cert: cannot read {}", missing.display())),
        "{err}"
    );

    let (ok, err) = check(format!(
        "tls: {{ cert: {}, key: {} }}\n",
        crt.display(),
        other_key.display()
    ));
    assert!(!ok);
    assert!(
        err.contains("tls.key") && err.contains("does not match the certificate"),
        "{err}"
    );

    let (ok, err) = check(format!(
        "tls: {{ cert: {}, key: {}, hsts: {{ max_age: 1y, subdomains: true }} }}\n",
        crt.display(),
        key.display()
    ));
    assert!(!ok);
    assert!(
        err.contains("tls.hsts") && err.contains("unknown field `subdomains`"),
        "{err}"
    );

    let (ok, err) = check(format!(
        "tls: {{ cert: {}, key: {}, redirect_http_listen: 127.0.0.1:8080 }}\n",
        crt.display(),
        key.display()
    ));
    assert!(ok, "{err}");
}
