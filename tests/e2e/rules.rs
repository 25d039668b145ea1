//! Issue 14's ordered access rules (`routes[].rules`): each key alone and together, through the
//! inline proxy and forward-auth alike; `check-config` naming every malformed rule's key; and
//! `frontdoor explain`.

use std::net::{IpAddr, Ipv4Addr};

use crate::harness::*;

const PW: &str = "a long enough password";
const ANN: &str = "ann@example.com";
const ROOT: &str = "root@example.com";
const BOB: &str = "bob@example.com";
/// The one trusted proxy: the tests connect from it by binding this loopback address.
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Routes, each with its rules, in front of one recording upstream:
/// - `/m`: writes need a read-write credential, reads any credential;
/// - `/app`: `/app/healthz` open, `^/app/admin` for admins and denied to others, the rest for
///   group wiki; anything else falls to the default deny;
/// - `/net`: open to 10.0.0.0/8 (seen through the trusted proxy), GETs of `/net/ro/**` open to
///   192.0.2.0/24, else authenticated.
async fn start() -> (Upstream, Frontdoor) {
    setup_with(
        |up| {
            Config::new()
                .route(
                    Route::new("/m", up)
                        .rule(Rule::new("read_write").methods(&["POST", "put", "DELETE"]))
                        .rule(Rule::new("authenticated")),
                )
                .route(
                    Route::new("/app", up)
                        .rule(Rule::new("bypass").paths(&["/app/healthz"]))
                        .rule(
                            Rule::new("authenticated")
                                .paths(&["^/app/admin(/.*)?"])
                                .groups(&["admins"]),
                        )
                        .rule(Rule::new("deny").paths(&["^/app/admin(/.*)?"]))
                        .rule(
                            Rule::new("authenticated")
                                .paths(&["/app/**"])
                                .groups(&["wiki"]),
                        ),
                )
                .route(
                    Route::new("/net", up)
                        .rule(Rule::new("bypass").networks(&["10.0.0.0/8"]))
                        .rule(
                            Rule::new("bypass")
                                .methods(&["GET"])
                                .paths(&["/net/ro/**"])
                                .networks(&["192.0.2.0/24"]),
                        )
                        .rule(Rule::new("authenticated")),
                )
                .set("trusted_proxies", [PROXY.to_string()])
        },
        &[
            (ANN, "Ann", "wiki", "ROLE_USER", PW),
            (ROOT, "Root", "admins", "ROLE_USER", PW),
            (BOB, "Bob", "", "ROLE_USER", PW),
        ],
    )
    .await
}

/// A client connecting from `from` (127.0.0.1 is not a trusted proxy, 127.0.0.2 is).
fn client_from(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The status of `method path` through the proxy, with `headers`.
async fn status(fd: &Frontdoor, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let client = client_from(Ipv4Addr::LOCALHOST);
    let mut req = client.request(method.parse().expect("method"), fd.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send").status().as_u16()
}

/// The status forward-auth answers for `method path`, asked by the trusted proxy.
async fn forward_auth(fd: &Frontdoor, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = client_from(PROXY)
        .get(fd.url("/_frontdoor/auth"))
        .header("X-Original-URL", fd.url(path))
        .header("X-Original-Method", method);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send").status().as_u16()
}

/// `method path` with Api-Token `token` is refused with `403` and `message`.
async fn refused(fd: &Frontdoor, method: &str, path: &str, token: &str, message: &str) {
    let r = plain_client()
        .request(method.parse().expect("method"), fd.url(path))
        .header("Api-Token", token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let body = r.text().await.expect("body");
    assert!(body.contains(message), "{body}");
}

/// The decisions metric counted `outcome` for credentials of `kind`.
async fn counted(fd: &Frontdoor, kind: &str, outcome: &str) {
    let metrics = fd.metrics().await;
    let series = format!("frontdoor_auth_decisions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
    assert!(metrics.contains(&series), "{series} in:\n{metrics}");
}

/// Both modes answer `expected`.
async fn both(fd: &Frontdoor, method: &str, path: &str, headers: &[(&str, &str)], expected: u16) {
    assert_eq!(
        status(fd, method, path, headers).await,
        expected,
        "proxy: {method} {path} {headers:?}"
    );
    assert_eq!(
        forward_auth(fd, method, path, headers).await,
        expected,
        "forward-auth: {method} {path} {headers:?}"
    );
}

#[tokio::test]
async fn method_rule_refuses_a_read_only_token_on_post() {
    let (up, fd) = start().await;
    let ro = fd.api_token(&["--user", ANN, "--read-only"]);
    let rw = fd.api_token(&["--user", ANN]);
    both(&fd, "GET", "/m/x", &[("Api-Token", &ro)], 200).await;
    both(&fd, "POST", "/m/x", &[("Api-Token", &rw)], 200).await;
    both(&fd, "PUT", "/m/x", &[("Api-Token", &ro)], 403).await;
    let before = up.count();
    refused(
        &fd,
        "POST",
        "/m/x",
        &ro,
        "this needs a read-write credential",
    )
    .await;
    assert_eq!(up.count(), before, "a refused write never arrives");
    // No credential: the rule needs one.
    both(&fd, "POST", "/m/x", &[], 401).await;
    counted(&fd, "api_token", "read_only").await;
}

#[tokio::test]
async fn bypass_asks_nothing_and_still_strips_identity_headers() {
    let (up, fd) = start().await;
    let spoofed = [
        ("X-Auth-Request-User", "root@example.com"),
        ("X-Auth-Request-Groups", "admins"),
    ];
    both(&fd, "GET", "/app/healthz", &spoofed, 200).await;
    let got = up.last();
    assert_eq!(got.uri, "/app/healthz");
    assert!(
        got.header("x-auth-request-user")
            .is_none_or(|v| v.is_empty())
            && got
                .header("x-auth-request-groups")
                .is_none_or(|v| v.is_empty()),
        "spoofed identity reached the app: {:?}",
        got.headers
    );
    // Forward-auth answers the identity headers empty, never the client's.
    let r = client_from(PROXY)
        .get(fd.url("/_frontdoor/auth"))
        .header("X-Original-URL", fd.url("/app/healthz"))
        .header("X-Auth-Request-User", "root@example.com")
        .send()
        .await
        .expect("auth");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-auth-request-user")
            .map(|v| v.as_bytes().to_vec()),
        Some(Vec::new())
    );
    // A bypass rule decided without looking at the (bad) credential.
    both(
        &fd,
        "GET",
        "/app/healthz",
        &[("Api-Token", "not-a-token")],
        200,
    )
    .await;
    counted(&fd, "none", "bypass").await;
}

#[tokio::test]
async fn regexes_are_anchored_and_paths_canonical() {
    let (up, fd) = start().await;
    let ann = fd.api_token(&["--user", ANN]);
    let root = fd.api_token(&["--user", ROOT]);
    let bob = fd.api_token(&["--user", BOB]);
    let ann_h = [("Api-Token", ann.as_str())];
    // `^/app/admin(/.*)?` is the whole path: `/app/administrator` is not the admin area.
    both(&fd, "GET", "/app/admin", &ann_h, 403).await;
    both(&fd, "GET", "/app/admin/users", &ann_h, 403).await;
    both(&fd, "GET", "/app/administrator", &ann_h, 200).await;
    both(&fd, "GET", "/app/admin", &[("Api-Token", &root)], 200).await;
    // Encoded and parameterised spellings are matched as their canonical path.
    let before = up.count();
    for spelling in [
        "/app/%61dmin",
        "/app/admin;x=1",
        "/app/%61dmin/users",
        "/app/ADMIN/../admin",
    ] {
        let s = status(&fd, "GET", spelling, &ann_h).await;
        assert!(s == 403 || s == 400, "{spelling}: {s}");
    }
    assert_eq!(forward_auth(&fd, "GET", "/app/%61dmin", &ann_h).await, 403);
    assert_eq!(
        up.count(),
        before,
        "no spelling of /app/admin reached the app"
    );
    // Bob is in no group: no rule matches /app/x, and nothing matched is denied.
    both(&fd, "GET", "/app/x", &[("Api-Token", &bob)], 403).await;
    // Without a credential, a rule about groups cannot decide: sign in first.
    both(&fd, "GET", "/app/x", &[], 401).await;
}

#[tokio::test]
async fn networks_come_from_trusted_proxies_only() {
    let (_up, fd) = start().await;
    let via = |from: Ipv4Addr, xff: &'static str, method: &'static str, path: &'static str| {
        let fd_url = fd.url(path);
        async move {
            client_from(from)
                .request(method.parse().expect("method"), fd_url)
                .header("X-Forwarded-For", xff)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    };
    // Behind the trusted proxy, the client is the forwarded address.
    assert_eq!(via(PROXY, "10.1.2.3", "GET", "/net/x").await, 200);
    // From an untrusted peer, the same header is ignored: the client is the peer.
    assert_eq!(
        via(Ipv4Addr::LOCALHOST, "10.1.2.3", "GET", "/net/x").await,
        401
    );
    // Methods, paths and networks together.
    assert_eq!(via(PROXY, "192.0.2.7", "GET", "/net/ro/a").await, 200);
    assert_eq!(via(PROXY, "192.0.2.7", "POST", "/net/ro/a").await, 401);
    assert_eq!(via(PROXY, "192.0.2.7", "GET", "/net/rw/a").await, 401);
    assert_eq!(via(PROXY, "198.51.100.1", "GET", "/net/ro/a").await, 401);
    // Forward-auth finds the client in the trusted proxy's X-Forwarded-For as well.
    assert_eq!(
        forward_auth(&fd, "GET", "/net/x", &[("X-Forwarded-For", "10.9.9.9")]).await,
        200
    );
    assert_eq!(forward_auth(&fd, "GET", "/net/x", &[]).await, 401);
}

#[tokio::test]
async fn nothing_matched_is_denied() {
    let (up, fd) = setup_with(
        |up| {
            Config::new().route(
                Route::new("/", up)
                    .rule(Rule::new("bypass").paths(&["/open/*"]))
                    .rule(Rule::new("authenticated").users(&["ANN@example.com"])),
            )
        },
        &[
            (ANN, "Ann", "wiki", "ROLE_USER", PW),
            (BOB, "Bob", "", "ROLE_USER", PW),
        ],
    )
    .await;
    let ann = fd.api_token(&["--user", ANN]);
    let bob = fd.api_token(&["--user", BOB]);
    assert_eq!(status(&fd, "GET", "/open/a", &[]).await, 200);
    assert_eq!(status(&fd, "GET", "/open/a/b", &[]).await, 401);
    assert_eq!(status(&fd, "GET", "/x", &[("Api-Token", &ann)]).await, 200);
    let before = up.count();
    refused(&fd, "GET", "/x", &bob, "no access rule allows this request").await;
    assert_eq!(up.count(), before);
    counted(&fd, "api_token", "no_rule").await;
}

#[tokio::test]
async fn check_config_names_each_malformed_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\nroutes:\n  - host: wiki\n    upstream: http://127.0.0.1:1\n";
    let cases = [
        (
            "    rules: [ { paths: ['^/a('], policy: deny } ]\n",
            "routes[0].rules[0].paths[0]: `^/a(` is not a regex",
        ),
        (
            "    rules: [ { paths: ['/a[b'], policy: deny } ]\n",
            "routes[0].rules[0].paths[0]: `/a[b` is not a glob",
        ),
        (
            "    rules: [ { paths: [admin], policy: deny } ]\n",
            "routes[0].rules[0].paths[0]: `admin` is neither a glob",
        ),
        (
            "    rules: [ { methods: [GET, 'GE T'], policy: deny } ]\n",
            "routes[0].rules[0].methods[1]: `GE T` is not an HTTP method",
        ),
        (
            "    rules: [ { networks: [10.0.0.0/33], policy: deny } ]\n",
            "routes[0].rules[0].networks[0]: `10.0.0.0/33` is not an IP address",
        ),
        (
            "    rules: [ { policy: one_factor } ]\n",
            "routes[0].rules[0].policy: `one_factor` is spelled `authenticated`",
        ),
        (
            "    rules: [ { policy: allow } ]\n",
            "routes[0].rules[0].policy: `allow` is not a policy",
        ),
        (
            "    rules: [ { paths: [/a] } ]\n",
            "routes[0].rules[0]: missing field `policy`",
        ),
        (
            "    rules: [ { hosts: [a], policy: deny } ]\n",
            "routes[0].rules[0].hosts: unknown field `hosts`",
        ),
        (
            "    rules: [ { policy: authenticated }, { paths: [/a], policy: deny } ]\n",
            "routes[0].rules[1]: unreachable: rules[0] has no condition",
        ),
        (
            "    rules: [ { groups: [ops], policy: bypass } ]\n",
            "routes[0].rules[0].policy: `bypass` asks for no credential",
        ),
        (
            "    policy: public\n    rules: [ { policy: bypass } ]\n",
            "routes[0].policy: with `rules`, write a `bypass` rule",
        ),
        (
            "    groups: [ops]\n    rules: [ { policy: authenticated } ]\n",
            "routes[0].groups: with `rules`, name groups in the rules",
        ),
    ];
    for (rules, expected) in cases {
        let yaml = format!("{base}{rules}");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, &yaml).expect("write");
        let out = cli_with_config(&path, &["check-config"], None);
        assert!(!out.status.success(), "accepted:\n{yaml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
    let path = dir.path().join("ok.yaml");
    std::fs::write(
        &path,
        format!("{base}    rules: [ {{ methods: [post], paths: ['^/a', '/b/**'], networks: [10.0.0.0/8, '::1'], users: [a@b.c], groups: [g], roles: [r], policy: read_write }}, {{ policy: deny }} ]\n"),
    )
    .expect("write");
    let out = cli_with_config(&path, &["check-config"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn explain_says_which_rule_decides() {
    let (_up, fd) = start().await;
    let explain = |args: &[&str]| {
        let mut all = vec!["explain"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&fd.cli_ok(&all, None).stdout).into_owned()
    };
    let m = fd.url("/m/x");
    let out = explain(&[
        "--url",
        &m,
        "--method",
        "POST",
        "--user",
        ANN,
        "--token-kind",
        "read-only",
    ]);
    assert!(out.contains("route:   */m"), "{out}");
    assert!(
        out.contains("rules[0]: methods=[POST, PUT, DELETE] → read_write"),
        "{out}"
    );
    assert!(out.contains("verdict: refused (403)"), "{out}");
    let out = explain(&["--url", &m, "--method", "POST", "--user", ANN]);
    assert!(out.contains("verdict: allowed"), "{out}");
    let admin = fd.url("/app/%61dmin");
    let out = explain(&["--url", &admin, "--user", ANN]);
    assert!(
        out.contains("rules[2]: paths=[^/app/admin(/.*)?] → deny") && out.contains("403"),
        "{out}"
    );
    let out = explain(&["--url", &admin, "--user", ROOT]);
    assert!(
        out.contains("rules[1]") && out.contains("verdict: allowed"),
        "{out}"
    );
    let out = explain(&["--url", &fd.url("/net/x"), "--from", "10.1.2.3"]);
    assert!(
        out.contains("rules[0]: networks=[10.0.0.0/8] → bypass")
            && out.contains("allowed without a credential"),
        "{out}"
    );
    let out = explain(&["--url", &fd.url("/app/x"), "--user", BOB]);
    assert!(out.contains("denied by default"), "{out}");
    // Routes of named hosts only: another host is unknown.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hosts.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\npublic_url: http://localhost:8080\ndata_dir: {}\nroutes:\n  - host: wiki.localhost\n    upstream: http://127.0.0.1:1\n",
            dir.path().display()
        ),
    )
    .expect("write");
    let explain_url = |url: &str| {
        let out = cli_with_config(&path, &["explain", "--url", url], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = explain_url("http://nowhere.example/x");
    assert!(
        out.contains("unknown host: no route serves host `nowhere.example`"),
        "{out}"
    );
    let out = explain_url("http://WIKI.localhost./x");
    assert!(
        out.contains("route:   wiki.localhost/") && out.contains("policy authenticated"),
        "{out}"
    );
}
