//! Per-route upstream options: `preserve_host` / `host_header` (the `Host` an app sees) and
//! `strip_authorization` (the client's `Authorization` never reaches the app).

use crate::harness::*;

const ANN: &str = "ann@example.com";
const PW: &str = "a long enough password";

/// What `check-config` says of `config` (written in `dir`), which it must refuse.
fn refused(config: Config, dir: &std::path::Path) -> String {
    let path = dir.join("frontdoor.yaml");
    let text = config
        .listeners(free_port(), free_port(), dir)
        .public_url("http://127.0.0.1:1")
        .to_yaml();
    std::fs::write(&path, text).expect("write");
    let out = cli_with_config(&path, &["check-config"], None);
    assert!(!out.status.success(), "refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_and_authorization_sent_upstream_follow_the_route() {
    let (upstream, fd) = setup_with(
        |up| {
            Config::new()
                .route(Route::new("/kept", up))
                .route(Route::new("/named", up).set("host_header", "app.internal:8443"))
                .route(Route::new("/own", up).set("preserve_host", false))
                .route(Route::new("/stripped", up).set("strip_authorization", true))
        },
        &[(ANN, "Ann", "", "ROLE_USER", PW)],
    )
    .await;
    let token = fd.api_token(&["--user", ANN]);
    let send = |path: &'static str| {
        plain_client()
            .get(fd.url(path))
            .header("Host", format!("wiki.localhost:{}", fd.port))
            .header("Api-Token", &token)
            .header("Authorization", "Basic YXBwOnNlY3JldA==")
            .send()
    };
    let expected = [
        ("/kept", format!("wiki.localhost:{}", fd.port), true),
        ("/named", "app.internal:8443".to_string(), true),
        ("/own", format!("127.0.0.1:{}", upstream.port), true),
        ("/stripped", format!("wiki.localhost:{}", fd.port), false),
    ];
    for (path, host, authorization) in expected {
        let resp = send(path).await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        let got = upstream.last();
        assert_eq!(got.header("host").as_deref(), Some(host.as_str()), "{path}");
        assert_eq!(
            got.header("authorization").is_some(),
            authorization,
            "{path}: {:?}",
            got.header("authorization")
        );
        assert_eq!(
            got.header("x-auth-request-email").as_deref(),
            Some(ANN),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_header_that_is_no_host_is_refused_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = refused(
        Config::new().route(Route::new("/", 1u16).set("host_header", "a b")),
        dir.path(),
    );
    assert!(
        err.contains("routes[0].host_header: `a b` is not a host[:port]"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_can_strip_its_prefix_and_refuses_a_disguised_one() {
    let (upstream, fd) = setup_with(
        |up| Config::new().route(Route::new("/wiki", up).public().set("strip_prefix", true)),
        &[],
    )
    .await;
    for (sent, seen) in [
        ("/wiki/a/b?x=1", "/a/b?x=1"),
        ("/wiki", "/"),
        ("/wiki?q", "/?q"),
    ] {
        let resp = plain_client()
            .get(fd.url(sent))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{sent}");
        assert_eq!(upstream.last().uri, seen, "{sent}");
    }
    // `/wiki;x/a` routes as `/wiki/a`: the raw path does not spell the prefix, so it is not
    // cut at a guess.
    let before = upstream.count();
    let status = raw_status(
        fd.port,
        "GET /wiki;x/a HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(upstream.count(), before);
}

/// An `https` upstream signed by an internal CA: trusted with the route's `ca_file` and
/// checked against its `sni`; refused (`502`) with another CA, another name, or the system's
/// roots.
#[tokio::test(flavor = "multi_thread")]
async fn an_https_upstream_is_verified_with_the_routes_ca_file_and_sni() {
    let inner = Upstream::start().await;
    // frontdoor itself serves HTTPS with a certificate for 127.0.0.1 and localhost from CA
    // `one`: its discovery document stands in for an app.
    let app = crate::tls::TlsFrontdoor::start(&inner).await;
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = crate::tls::make_ca(other.path(), "two");
    let ca = app.path("one-ca.crt").display().to_string();
    let https = format!("https://127.0.0.1:{}", app.port);
    let route = |prefix: &str| {
        Route::new(prefix, https.as_str())
            .public()
            .set("host_header", "127.0.0.1")
    };
    let fd = Frontdoor::launch(
        Config::new()
            .route(
                route("/.well-known/")
                    .host("ok.localhost")
                    .set("upstream_tls.ca_file", &ca)
                    .set("upstream_tls.sni", "localhost"),
            )
            .route(
                route("/.well-known/")
                    .host("ip.localhost")
                    .set("upstream_tls.ca_file", &ca),
            )
            .route(
                route("/.well-known/")
                    .host("wrong-ca.localhost")
                    .set("upstream_tls.ca_file", other_ca.display().to_string()),
            )
            .route(
                route("/.well-known/")
                    .host("wrong-name.localhost")
                    .set("upstream_tls.ca_file", &ca)
                    .set("upstream_tls.sni", "wiki.example"),
            )
            .route(route("/.well-known/").host("system.localhost")),
    )
    .await;
    let get = |host: &'static str| {
        plain_client()
            .get(fd.url("/.well-known/openid-configuration"))
            .header("Host", host)
            .send()
    };
    for host in ["ok.localhost", "ip.localhost"] {
        let resp = get(host).await.expect("request");
        assert_eq!(resp.status(), 200, "{host}");
        let body = resp.text().await.expect("body");
        assert!(
            body.contains(&format!("\"issuer\":\"{https}\"")),
            "{host}: {body}"
        );
    }
    for host in [
        "wrong-ca.localhost",
        "wrong-name.localhost",
        "system.localhost",
    ] {
        let resp = get(host).await.expect("request");
        assert_eq!(resp.status(), 502, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_upstream_tls_settings_are_refused_with_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-ca.pem");
    let err = refused(
        Config::new()
            .route(Route::new("/", 1u16).set("upstream_tls.sni", "localhost"))
            .route(
                Route::new("/x", "https://127.0.0.1:1")
                    .set("upstream_tls.ca_file", missing.display().to_string())
                    .set("upstream_tls.sni", "a:1"),
            ),
        dir.path(),
    );
    for expected in [
        "routes[0].upstream_tls: applies only to an https upstream",
        &format!(
            "routes[1].upstream_tls.ca_file: cannot read {}",
            missing.display()
        ),
        "routes[1].upstream_tls.sni: `a:1` is not a host name (without port)",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}
