//! Forward-auth (`GET /_frontdoor/auth`) behind the real nginx (`auth_request`) and Caddy
//! (`forward_auth`) from Debian's packages, as the README configures them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

struct Server {
    child: Child,
    name: &'static str,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_listening(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(server.dir.path().join("log")).unwrap_or_default();
            panic!("{} exited with {status}:\n{log}", server.name);
        }
        assert!(Instant::now() < deadline, "{} did not start", server.name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_file(dir: &tempfile::TempDir) -> std::fs::File {
    std::fs::File::create(dir.path().join("log")).expect("log")
}

/// nginx with `auth_request` to frontdoor, in front of `upstream`.
async fn nginx(port: u16, frontdoor: u16, upstream: u16) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let conf = format!(
        r#"daemon off;
# One process, so that killing it when the test ends leaves no worker behind (a killed
# master's workers live on).
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_frontdoor_auth {{
      internal;
      proxy_pass http://127.0.0.1:{frontdoor}/_frontdoor/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
    location /_frontdoor/ {{
      proxy_pass http://127.0.0.1:{frontdoor};
      proxy_set_header Host $http_host;
    }}
    location / {{
      auth_request /_frontdoor_auth;
      auth_request_set $fd_user $upstream_http_x_auth_request_user;
      auth_request_set $fd_email $upstream_http_x_auth_request_email;
      auth_request_set $fd_groups $upstream_http_x_auth_request_groups;
      auth_request_set $fd_access $upstream_http_x_auth_request_access;
      proxy_set_header X-Auth-Request-User $fd_user;
      proxy_set_header X-Auth-Request-Email $fd_email;
      proxy_set_header X-Auth-Request-Groups $fd_groups;
      proxy_set_header X-Auth-Request-Access $fd_access;
      proxy_pass http://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(log_file(&dir))
        .spawn()
        .expect("nginx (Debian package nginx; scripts/test.sh installs it)");
    let mut s = Server {
        child,
        name: "nginx",
        dir,
    };
    wait_listening(port, &mut s).await;
    s
}

/// Caddy with `forward_auth` to frontdoor, in front of `upstream`.
async fn caddy(port: u16, frontdoor: u16, upstream: u16) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = format!(
        "{{\n  admin off\n  auto_https off\n}}\nhttp://127.0.0.1:{port} {{\n  handle /_frontdoor/* {{\n    reverse_proxy 127.0.0.1:{frontdoor}\n  }}\n  handle {{\n    forward_auth 127.0.0.1:{frontdoor} {{\n      uri /_frontdoor/auth\n      copy_headers X-Auth-Request-User X-Auth-Request-Email X-Auth-Request-Groups X-Auth-Request-Access\n    }}\n    reverse_proxy 127.0.0.1:{upstream}\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("Caddyfile"), conf).expect("conf");
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.path().join("Caddyfile"))
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(log_file(&dir))
        .spawn()
        .expect("caddy (Debian package caddy; scripts/test.sh installs it)");
    let mut s = Server {
        child,
        name: "caddy",
        dir,
    };
    wait_listening(port, &mut s).await;
    s
}

/// frontdoor behind a proxy listening on `front`: the proxy's origin is where sign-ins end.
async fn setup_for(front: u16) -> (Upstream, Frontdoor, String, String) {
    // The routes' upstream is never contacted: the proxy in front forwards to `upstream`.
    let (upstream, fd) = setup_with(
        |_| {
            Config::single(1)
                .route(Route::new("/open", 1).public())
                .route(Route::new("/ops", 1).groups(["ops"]))
                .set("trusted_proxies", ["127.0.0.1"])
                .set("sign_in_origins", [front.url()])
        },
        &[(
            "ann@example.com",
            "Ann",
            "wiki",
            "ROLE_USER",
            "a long password",
        )],
    )
    .await;
    let rw = fd.api_token(&["--user", "ann@example.com"]);
    let ro = fd.api_token(&["--user", "ann@example.com", "--read-only"]);
    (upstream, fd, rw, ro)
}

async fn exercise(front: u16, upstream: &Upstream, rw: &str, ro: &str) {
    let client = plain_client();
    let url = |p: &str| format!("http://127.0.0.1:{front}{p}");
    // No credential: refused, nothing reaches the app.
    let r = client.get(url("/wiki/page")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    assert_eq!(upstream.count(), 0);
    // Public route: passes without identity.
    let r = client.get(url("/open/x")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let open = upstream.last();
    assert!(
        open.header("x-auth-request-user")
            .is_none_or(|v| v.is_empty()),
        "{:?}",
        open.headers
    );
    // A read-write token: passes with the identity; a spoofed header is overwritten.
    let r = client
        .get(url("/wiki/page"))
        .header("Api-Token", rw)
        .header("X-Auth-Request-User", "evil")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let got = upstream.last();
    assert_eq!(got.uri, "/wiki/page");
    assert_eq!(
        got.header("x-auth-request-user").as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(got.header("x-auth-request-groups").as_deref(), Some("wiki"));
    assert_eq!(
        got.header("x-auth-request-access").as_deref(),
        Some("read-write")
    );
    // Read-only token: GET passes, POST is 403 and never arrives.
    let r = client
        .get(url("/wiki/page"))
        .header("Api-Token", ro)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(
        upstream.last().header("x-auth-request-access").as_deref(),
        Some("read-only")
    );
    let before = upstream.count();
    let r = client
        .post(url("/wiki/page"))
        .header("Api-Token", ro)
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert_eq!(upstream.count(), before);
    // Outside the route's groups: 403.
    let r = client
        .get(url("/ops/panel"))
        .header("Api-Token", rw)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    assert_eq!(upstream.count(), before);
}

#[tokio::test]
async fn nginx_auth_request_decides_with_frontdoor() {
    let port = free_port();
    let (upstream, fd, rw, ro) = setup_for(port).await;
    let _nginx = nginx(port, fd.port, upstream.port).await;
    exercise(port, &upstream, &rw, &ro).await;
}

#[tokio::test]
async fn caddy_forward_auth_decides_with_frontdoor_and_sends_browsers_to_sign_in() {
    let port = free_port();
    let (upstream, fd, rw, ro) = setup_for(port).await;
    let _caddy = caddy(port, fd.port, upstream.port).await;
    exercise(port, &upstream, &rw, &ro).await;
    // A browser without a session is sent to sign in, and comes back through Caddy.
    fd.add_user(
        "bob@example.com",
        "Bob",
        "wiki",
        "ROLE_USER",
        "another long password",
    );
    let client = browser();
    let target = format!("http://127.0.0.1:{port}/wiki/Start?x=1");
    let done = browser_login(&client, &target, "bob@example.com", "another long password").await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.url().as_str(), target);
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("bob@example.com")
    );
}

#[tokio::test]
async fn forward_auth_answers_trusted_proxies_only() {
    let fd = Frontdoor::launch(Config::single(1)).await;
    let r = plain_client()
        .get(fd.url("/_frontdoor/auth"))
        .header("X-Original-URL", "http://app.example/x")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
}

/// Forward-auth takes the inline proxy's decision: the same browser-navigation test
/// (`Sec-Fetch-Mode` first, then `Accept`) and the same refusal metric.
#[tokio::test]
async fn forward_auth_decides_like_the_inline_proxy() {
    let port = free_port();
    let (_upstream, fd, _rw, _ro) = setup_for(port).await;
    let ask = |headers: &'static [(&'static str, &'static str)]| {
        let url = fd.url("/_frontdoor/auth");
        async move {
            let mut r = plain_client()
                .get(url)
                .header("X-Forwarded-Method", "GET")
                .header("X-Forwarded-Host", format!("127.0.0.1:{port}"))
                .header("X-Forwarded-Uri", "/wiki/Start");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send().await.expect("auth").status().as_u16()
        }
    };
    // A navigation by its fetch metadata, whatever it accepts, is sent to sign in.
    assert_eq!(
        ask(&[("Sec-Fetch-Mode", "navigate"), ("Accept", "*/*")]).await,
        302
    );
    // A script's fetch that accepts HTML is not a navigation.
    assert_eq!(
        ask(&[("Sec-Fetch-Mode", "cors"), ("Accept", "text/html")]).await,
        401
    );
    assert_eq!(
        ask(&[
            ("Accept", "text/html"),
            ("X-Requested-With", "XMLHttpRequest")
        ])
        .await,
        401
    );
    assert_eq!(ask(&[("Accept", "text/html")]).await, 302);
    // A refused credential is counted as the proxy counts it.
    assert_eq!(ask(&[("Api-Token", "not-a-token")]).await, 401);
    let metrics = fd.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("frontdoor_auth_decisions_total")
                && l.contains("api_token")
                && l.contains("invalid")),
        "{metrics}"
    );
}
