//! frontdoor's own sign-in client (`client_id=frontdoor`). Against one-click account takeover,
//! its redirect URIs are a fixed set computed from the configuration, never from a request's
//! `Host`, and a `*` route never widens it; its codes are redeemed as the token endpoint
//! redeems an app's (a replay revokes the grant).

use crate::harness::*;

const PW: &str = "a long enough password";

/// The default configuration's shape: `*` routes, one of them group-restricted.
async fn setup() -> (Upstream, Frontdoor) {
    setup_with(
        Config::standard,
        &[
            ("vic@example.com", "Vic", "admins", "ROLE_USER", PW),
            ("mallory@example.com", "Mallory", "", "ROLE_USER", PW),
        ],
    )
    .await
}

fn own_authorize(fd: &Frontdoor, redirect_uri: &str, response_type: &str) -> String {
    fd.url(&format!(
        "/oauth/authorize?client_id=frontdoor&redirect_uri={}&response_type={response_type}&scope=openid+profile+email+groups+roles&state=attacker-state&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlencode(redirect_uri)
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_never_gets_a_sign_in_round_trip_of_the_own_client() {
    let (upstream, fd) = setup().await;
    // Step 1 of the attack: a navigation with `Host: evil.example` on a `*` route.
    let resp = plain_client()
        .get(fd.url("/anything"))
        .header("Host", "evil.example")
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let redirect = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or("").to_string());
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        status, 400,
        "no sign-in on an unnamed host (Location: {redirect:?})"
    );
    assert!(redirect.is_none(), "no redirect: {redirect:?}");
    assert!(
        !cookies.iter().any(|c| c.starts_with("frontdoor_login=")),
        "no pending-login cookie for the attacker: {cookies:?}"
    );
    assert!(
        resp.text().await.expect("page").contains("not available"),
        "the page says why"
    );
    // The same request with Host: the public host still starts a sign-in, to the public host.
    let resp = navigate(&plain_client(), &fd.url("/anything")).await;
    assert_eq!(resp.status(), 302);
    let loc = location(&resp);
    assert!(
        loc.contains(&urlencode(&fd.url("/_frontdoor/callback"))),
        "{loc}"
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_victim_is_never_sent_with_a_code_to_an_unregistered_callback() {
    let (upstream, fd) = setup().await;
    let victim = browser();
    let landed = browser_login(&victim, &fd.url("/"), "vic@example.com", PW).await;
    assert_eq!(landed.status(), 200, "the victim is signed in");
    let port = fd.url("").rsplit(':').next().unwrap_or("").to_string();
    let bad_callbacks = [
        // Any host a `*` route serves.
        "http://evil.example/_frontdoor/callback".to_string(),
        format!("http://evil.example:{port}/_frontdoor/callback"),
        // The public host on another port (the port was never compared).
        "http://127.0.0.1:1/_frontdoor/callback".to_string(),
        // Another scheme, path, query, userinfo, fragment.
        format!("https://127.0.0.1:{port}/_frontdoor/callback"),
        format!("http://127.0.0.1:{port}/_frontdoor/callback/"),
        format!("http://127.0.0.1:{port}/_frontdoor/callback?x=1"),
        format!("http://a@127.0.0.1:{port}/_frontdoor/callback"),
        format!("http://127.0.0.1:{port}/_frontdoor/callback#x"),
        format!("http://127.0.0.1.:{port}/_frontdoor/callback"),
    ];
    for uri in &bad_callbacks {
        for response_type in ["code", "token", "id_token", "nonsense"] {
            let resp = victim
                .get(own_authorize(&fd, uri, response_type))
                .header("Accept", "text/html")
                .send()
                .await
                .expect("authorize");
            let status = resp.status().as_u16();
            let loc = resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap_or("").to_string());
            assert_eq!(
                status, 400,
                "{uri} ({response_type}) refused with a page, got {status} to {loc:?}"
            );
            assert!(loc.is_none(), "{uri} ({response_type}): no redirect");
        }
    }
    // The registered callback still works for the victim (a code on frontdoor's own host).
    let good = fd.url("/_frontdoor/callback");
    let resp = victim
        .get(own_authorize(&fd, &good, "code"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 302);
    assert!(location(&resp).starts_with(&format!("{good}?code=")));
    // Only the victim's own sign-in reached the upstream.
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callback_on_an_unnamed_host_is_refused_even_with_a_valid_code_and_pending_login() {
    let (upstream, fd) = setup().await;
    // The attacker signs in as themselves, stopping before the callback, and replays the
    // callback under another Host (the last step of the attack).
    let (mallory, jar) = browser_with_jar();
    let first = navigate(&mallory, &fd.url("/admin/secret")).await;
    assert_eq!(first.status(), 302);
    let login_page = follow(&mallory, first, None).await;
    let posted = submit_login(&mallory, login_page, "mallory@example.com", PW).await;
    let callback = follow(&mallory, posted, Some(&fd.url("/_frontdoor/callback"))).await;
    let callback_url = location(&callback);
    assert!(callback_url.starts_with(&fd.url("/_frontdoor/callback?code=")));
    let pending = jar_cookie(&jar, &callback_url, "frontdoor_login").expect("pending login cookie");
    let query = callback_url.split_once('?').expect("query").1.to_string();
    let resp = plain_client()
        .get(fd.url(&format!("/_frontdoor/callback?{query}")))
        .header("Host", "evil.example")
        .header("Cookie", format!("frontdoor_login={pending}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 400, "the callback refuses an unnamed host");
    assert!(
        !resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").starts_with("frontdoor_session=")),
        "no session is set"
    );
    // The code was burned by that attempt: the real host cannot use it either.
    let resp = mallory
        .get(fd.url(&format!("/_frontdoor/callback?{query}")))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 400);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn named_route_and_tenant_hosts_sign_in_on_their_own_host() {
    let (_upstream, fd) = setup_with(
        |up| {
            Config::new()
                .route(Route::new("/", up).host("wiki.localhost"))
                .route(Route::new("/", up))
                .tenant("acme", ["acme.localhost"])
        },
        &[],
    )
    .await;
    let port = fd.url("").rsplit(':').next().unwrap_or("").to_string();
    for host in ["wiki.localhost", "acme.localhost", "WIKI.localhost"] {
        let resp = plain_client()
            .get(fd.url("/page"))
            .header("Host", format!("{host}:{port}"))
            .header("Accept", "text/html")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 302, "{host}");
        let loc = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        let expected = format!(
            "http://{}:{port}/_frontdoor/callback",
            host.to_ascii_lowercase()
        );
        assert!(loc.contains(&urlencode(&expected)), "{host}: {loc}");
    }
    let resp = plain_client()
        .get(fd.url("/page"))
        .header("Host", format!("other.localhost:{port}"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400, "a host only the `*` route serves");
}

/// The grants of frontdoor's own client, read from the instance's SQLite file: (id, revoked).
async fn own_grants(fd: &Frontdoor) -> Vec<(String, i64)> {
    use sqlx::Connection;
    let db = fd.data_dir().join("frontdoor.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open the store");
    sqlx::query_as("SELECT id, revoked FROM grants WHERE client_id = 'frontdoor' ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .expect("grants")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_sign_in_code_revokes_its_grant_as_at_the_token_endpoint() {
    let (_upstream, fd) = setup().await;
    let (ann, jar) = browser_with_jar();
    let first = navigate(&ann, &fd.url("/wiki")).await;
    let login_page = follow(&ann, first, None).await;
    let posted = submit_login(&ann, login_page, "vic@example.com", PW).await;
    let callback = follow(&ann, posted, Some(&fd.url("/_frontdoor/callback"))).await;
    let callback_url = location(&callback);
    let pending = jar_cookie(&jar, &callback_url, "frontdoor_login").expect("pending login");
    let redeem = || async {
        plain_client()
            .get(&callback_url)
            .header("Cookie", format!("frontdoor_login={pending}"))
            .send()
            .await
            .expect("callback")
            .status()
            .as_u16()
    };
    assert!(
        (300..400).contains(&redeem().await),
        "the first redemption signs in"
    );
    let grants = own_grants(&fd).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].1, 0, "the grant stands after one redemption");
    assert_eq!(redeem().await, 400, "a replay is refused");
    assert_eq!(
        own_grants(&fd).await[0].1,
        1,
        "a replay revokes the grant, as at the token endpoint"
    );
}
