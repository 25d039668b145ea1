//! Federated sign-in against a hostile upstream provider (issue 18): a scripted OpenID
//! provider (`ScriptedIdp` of `scripted_idp.rs`) whose ID tokens, userinfo answers and callback parameters each test
//! writes, signed with the key it publishes, so that frontdoor accepts its signatures and only
//! frontdoor's own rules stand between the claims and an account. It counts the requests it
//! receives, for the bound on key refetches. Also: emails entering through the CLI, the sign-in
//! API and the login page are held to the same canonical form as the provider's claims.

use std::time::Duration;

use serde_json::{Value, json};

use crate::federation::{
    add_user_without_password, assert_refused, logout_claims, post_logout_token, users_list,
};
use crate::harness::*;
use crate::scripted_idp::{CLIENT_ID, ScriptedIdp, now, random_id, scripted_sign_in, sign};

const KID: &str = "hostile-key-1";

/// The hostile provider: the scripted one (`scripted_idp.rs`), whose ID tokens carry only the
/// protocol claims and what each test scripts.
async fn hostile_idp(advertise_iss: bool) -> ScriptedIdp {
    ScriptedIdp::start(KID, "u-hostile", advertise_iss).await
}

/// Provider `id`, named Corp SSO, played by `idp`.
fn corp(id: &str, idp: &ScriptedIdp) -> Provider {
    Provider::corp(id, &idp.issuer)
}

/// frontdoor with these provider entries and one authenticated route in front of `upstream`;
/// returns once every provider's button on the login page is a link (discovered).
async fn start_fd(upstream: &Upstream, providers: Vec<Provider>, config: Config) -> Frontdoor {
    let ids: Vec<String> = providers.iter().map(|p| p.id().to_string()).collect();
    let config = providers
        .into_iter()
        .fold(config.route(Route::new("/", upstream)), Config::federation);
    let fd = Frontdoor::launch(config).await;
    let started = std::time::Instant::now();
    loop {
        let html = navigate(&plain_client(), &fd.url("/_frontdoor/login"))
            .await
            .text()
            .await
            .expect("login page");
        let doc = scraper::Html::parse_document(&html);
        let all_links = ids.iter().all(|id| {
            let sel = scraper::Selector::parse(&format!("a#idp-{id}")).expect("selector");
            doc.select(&sel).next().is_some()
        });
        if all_links {
            return fd;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "providers {ids:?} not available:\n{html}\n{}",
            fd.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The provider `corp` (provisioning on) and frontdoor.
async fn setup() -> (ScriptedIdp, Upstream, Frontdoor) {
    let idp = hostile_idp(false).await;
    let upstream = Upstream::start().await;
    let fd = start_fd(
        &upstream,
        vec![corp("corp", &idp).provision(true)],
        Config::new(),
    )
    .await;
    (idp, upstream, fd)
}

/// A sign-in in `browser` through provider `id` (see [`scripted_sign_in`]).
async fn sign_in_with(browser: &reqwest::Client, fd: &Frontdoor, id: &str) -> reqwest::Response {
    scripted_sign_in(browser, fd, id, None).await
}

/// A sign-in in a new browser (see [`sign_in_with`]).
async fn sign_in(fd: &Frontdoor, id: &str) -> reqwest::Response {
    sign_in_with(&browser(), fd, id).await
}

/// A sign-in that succeeds: the callback answers 303 with a session, and the browser lands on
/// the upstream; returns what the upstream received.
async fn signed_in(fd: &Frontdoor, upstream: &Upstream, id: &str) -> Received {
    let (browser, _jar) = browser_with_jar();
    let done = sign_in_with(&browser, fd, id).await;
    let status = done.status();
    if status != 303 {
        let body = done.text().await.unwrap_or_default();
        panic!("expected a sign-in, got {status}: {body}");
    }
    let before = upstream.count();
    let landed = follow(&browser, done, None).await;
    assert_eq!(landed.status(), 200, "the upstream answers");
    assert_eq!(upstream.count(), before + 1, "the upstream was reached");
    upstream.last()
}

/// Refused: a page with `status`, no session; nothing reached the upstream meanwhile.
async fn refused(fd: &Frontdoor, upstream: &Upstream, id: &str, status: u16, needle: &str) {
    let before = upstream.count();
    let resp = sign_in(fd, id).await;
    assert_refused(resp, status, needle).await;
    assert_eq!(upstream.count(), before, "nothing reached the upstream");
}

fn emails(fd: &Frontdoor) -> Vec<String> {
    users_list(fd)
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_string())
        .collect()
}

/// The sum of the samples of metric `name` whose line contains every `needle`.
async fn metric(fd: &Frontdoor, name: &str, needles: &[&str]) -> f64 {
    let text = fd.metrics().await;
    text.lines()
        .filter(|l| l.starts_with(name) && needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Pre-account takeover and the linking rule.

/// An attacker signs in first with the address of a future colleague, unverified: no account
/// is made. The owner, verified, gets a fresh account; the attacker's `sub` never reaches it.
#[tokio::test]
async fn an_unverified_email_never_provisions_an_account_for_its_later_owner() {
    let (idp, upstream, fd) = setup().await;
    idp.claims(json!({"sub": "attacker", "email": "newhire@example.com",
                      "email_verified": false, "name": "Mallory"}));
    refused(&fd, &upstream, "corp", 403, "has not verified").await;
    assert_eq!(emails(&fd), Vec::<String>::new(), "nobody provisioned");

    idp.claims(json!({"sub": "owner", "email": "newhire@example.com",
                      "email_verified": true, "name": "New Hire"}));
    let seen = signed_in(&fd, &upstream, "corp").await;
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("newhire@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-name").as_deref(),
        Some("New Hire")
    );

    // The attacker's `sub` again, unverified or without an email: never the owner's account.
    for claims in [
        json!({"sub": "attacker", "email": "newhire@example.com", "email_verified": false}),
        json!({"sub": "attacker", "email": "newhire@example.com"}),
        json!({"sub": "attacker"}),
    ] {
        idp.claims(claims.clone());
        let resp = sign_in(&fd, "corp").await;
        assert_eq!(resp.status(), 403, "{claims}");
    }
    assert_eq!(emails(&fd), vec!["newhire@example.com".to_string()]);
    assert_eq!(users_list(&fd)[0]["name"], "New Hire", "untouched");
}

/// A provider with `link_existing: false` never signs into a local account by its address
/// (it may still provision new ones); one left at the default does, and then its `sub` alone
/// keeps the link, whatever email it asserts later.
#[tokio::test]
async fn a_verified_email_links_a_local_account_only_where_link_existing_allows() {
    let idp = hostile_idp(false).await;
    let upstream = Upstream::start().await;
    let providers = vec![
        corp("trusted", &idp),
        corp("partner", &idp)
            .provision(true)
            .set("link_existing", false),
    ];
    let fd = start_fd(&upstream, providers, Config::new()).await;
    add_user_without_password(&fd, "frank@example.com", "Frank");

    idp.claims(
        json!({"sub": "p-frank", "email": "frank@example.com", "email_verified": true,
                      "name": "Partner Frank"}),
    );
    refused(&fd, &upstream, "partner", 403, "may not sign in").await;
    assert_eq!(emails(&fd), vec!["frank@example.com".to_string()]);

    idp.claims(json!({"sub": "p-newbie", "email": "newbie@example.com",
                      "email_verified": true}));
    let seen = signed_in(&fd, &upstream, "partner").await;
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("newbie@example.com")
    );

    idp.claims(
        json!({"sub": "t-frank", "email": "frank@example.com", "email_verified": true,
                      "name": "Frank"}),
    );
    let seen = signed_in(&fd, &upstream, "trusted").await;
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("frank@example.com")
    );
    // The same `sub` with another (verified) address still signs into Frank's account, and
    // does not move to the account of that address.
    idp.claims(
        json!({"sub": "t-frank", "email": "newbie@example.com", "email_verified": true,
                      "name": "Frank"}),
    );
    let seen = signed_in(&fd, &upstream, "trusted").await;
    assert_eq!(
        seen.header("x-auth-request-user").as_deref(),
        Some("frank@example.com")
    );
    assert_eq!(emails(&fd).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Email identity.

/// Addresses that are not canonical are refused, verified or not, whether they would create an
/// account, link one by Unicode case folding or trimming, or slip past `allowed_domains`.
#[tokio::test]
async fn email_claims_that_are_not_canonical_are_refused() {
    let idp = hostile_idp(false).await;
    let upstream = Upstream::start().await;
    let providers = vec![
        corp("corp", &idp).provision(true),
        corp("corpd", &idp)
            .provision(true)
            .set("allowed_domains", ["corp.example"]),
    ];
    let fd = start_fd(&upstream, providers, Config::new()).await;
    add_user_without_password(&fd, "frank@example.com", "Frank");
    add_user_without_password(&fd, "admin@example.com", "Admin");

    for (i, (idp_id, email)) in [
        ("corp", "admin@example.com\u{0}"),
        ("corp", "fran\u{212a}@example.com"),
        ("corp", "frank@example.com\t"),
        ("corp", " frank@example.com"),
        ("corp", "frank@example.com\r\nX-Evil: 1"),
        ("corpd", "admin@example.com@corp.example"),
        ("corp", "new\u{0}@example.com"),
        ("corp", "\"admin\"@example.com"),
    ]
    .into_iter()
    .enumerate()
    {
        for verified in [true, false] {
            idp.claims(json!({"sub": format!("s-{i}-{verified}"), "email": email,
                              "email_verified": verified, "name": "Impostor"}));
            let before = upstream.count();
            let resp = sign_in(&fd, idp_id).await;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            assert_eq!(
                status, 403,
                "{email:?} (verified: {verified}) through {idp_id}: {body}"
            );
            assert_eq!(upstream.count(), before);
        }
    }
    let mut got = emails(&fd);
    got.sort();
    assert_eq!(got, ["admin@example.com", "frank@example.com"]);
    let users = users_list(&fd);
    assert!(
        users
            .as_array()
            .expect("array")
            .iter()
            .all(|u| u["name"] != "Impostor"),
        "{users}"
    );
    // An upper-case address is the same mailbox: Frank, verified, signs in.
    idp.claims(json!({"sub": "s-frank", "email": "Frank@EXAMPLE.com", "email_verified": true}));
    let seen = signed_in(&fd, &upstream, "corp").await;
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("frank@example.com")
    );
}

/// The CLI, the sign-in API and the login page take only canonical addresses: KELVIN SIGN
/// is not `k`, NUL is not the end, a second `@` is not a domain. What a person types keeps
/// losing surrounding spaces and upper case.
#[tokio::test]
async fn emails_entering_by_the_cli_the_api_and_the_login_page_are_canonical() {
    let upstream = Upstream::start().await;
    let fd = Frontdoor::with_upstream(&upstream).await;
    fd.add_user(
        "frank@example.com",
        "Frank",
        "",
        "ROLE_USER",
        "frank's password",
    );

    for bad in [
        "kelvin\u{212a}@example.com",
        "x@example.com@corp.example",
        "a b@example.com",
    ] {
        let out = fd.cli(&["users", "add", "--email", bad, "--name", "X"], None);
        assert!(!out.status.success(), "users add {bad:?} was accepted");
    }
    let out = fd.cli(
        &[
            "users",
            "add",
            "--email",
            "  Typed@Example.COM ",
            "--name",
            "T",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = emails(&fd);
    got.sort();
    assert_eq!(got, ["frank@example.com", "typed@example.com"]);
    // Naming an account: KELVIN SIGN does not find Frank's; his address in capitals does.
    let out = fd.cli(
        &["tokens", "create", "--user", "fran\u{212a}@example.com"],
        None,
    );
    assert!(
        !out.status.success(),
        "a token for the KELVIN SIGN spelling"
    );
    let out = fd.cli(&["tokens", "create", "--user", " FRANK@example.com"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let api = |path: &'static str, body: Value| {
        let url = fd.url(path);
        async move {
            let resp = plain_client()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("api");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for bad in [
        "fran\u{212a}@example.com",
        "frank@example.com\u{0}",
        "frank@example.com@x.example",
    ] {
        let (status, body) = api(
            "/api/v1/login-check",
            json!({"email": bad, "password": "frank's password"}),
        )
        .await;
        assert_eq!(status, 400, "login-check {bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        let (status, body) = api("/api/v1/request-login-otp", json!({"email": bad})).await;
        assert_eq!(status, 400, "request-login-otp {bad:?}: {body}");
        let (status, body) = api(
            "/api/v1/verify-login-otp",
            json!({"email": bad, "code": "123456"}),
        )
        .await;
        assert_eq!(status, 400, "verify-login-otp {bad:?}: {body}");
    }
    let (status, body) = api(
        "/api/v1/login-check",
        json!({"email": " FRANK@example.com", "password": "frank's password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The login page: the KELVIN SIGN spelling with Frank's password signs nobody in.
    let (browser, jar) = browser_with_jar();
    let first = navigate(&browser, &fd.url("/wiki")).await;
    let page = follow(&browser, first, None).await;
    let posted = submit_login(
        &browser,
        page,
        "fran\u{212a}@example.com",
        "frank's password",
    )
    .await;
    let _ = follow(&browser, posted, None).await;
    assert_eq!(
        session_of(&jar, &fd),
        None,
        "no session for the KELVIN SIGN spelling"
    );
    assert_eq!(upstream.count(), 0, "nothing reached the upstream");
}

// ---------------------------------------------------------------------------------------------
// Bounded work.

/// Too many groups or roles, or an over-long one, refuse the sign-in (a cut list could drop a
/// group that a deny rule names); an over-long name is cut; a userinfo answer over the size
/// bound is not read to the end and refuses the sign-in. Each is logged and counted.
#[tokio::test]
async fn oversized_claims_and_userinfo_are_refused_or_cut_and_counted() {
    let (idp, upstream, fd) = setup().await;
    let limited = "frontdoor_federation_claims_limited_total";
    let many: Vec<String> = (0..5500).map(|i| format!("g{i}")).collect();
    idp.claims(
        json!({"sub": "s-groups", "email": "groups@example.com", "email_verified": true,
                      "groups": many}),
    );
    refused(&fd, &upstream, "corp", 403, "too many groups").await;
    let roles: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
    idp.claims(
        json!({"sub": "s-roles", "email": "roles@example.com", "email_verified": true,
                      "roles": roles}),
    );
    refused(&fd, &upstream, "corp", 403, "too many roles").await;
    idp.claims(
        json!({"sub": "s-long", "email": "long@example.com", "email_verified": true,
                      "groups": ["ok", "g".repeat(300)]}),
    );
    refused(&fd, &upstream, "corp", 403, "too long").await;
    assert_eq!(emails(&fd), Vec::<String>::new(), "nobody provisioned");
    let groups_refused = metric(&fd, limited, &["claim=\"groups\"", "outcome=\"refused\""]).await;
    assert_eq!(groups_refused, 2.0);

    // A 100 kB name makes the token answer larger than max_response_bytes: refused unread.
    idp.claims(
        json!({"sub": "s-name", "email": "name@example.com", "email_verified": true,
                      "name": "N".repeat(100_000), "groups": ["staff"]}),
    );
    refused(
        &fd,
        &upstream,
        "corp",
        502,
        "could not be reached or refused",
    )
    .await;
    assert_eq!(
        metric(&fd, limited, &["claim=\"token\"", "outcome=\"refused\""]).await,
        1.0
    );
    // A 20 kB name is cut to the bound; the upstream gets a bounded header.
    idp.claims(
        json!({"sub": "s-name", "email": "name@example.com", "email_verified": true,
                      "name": "N".repeat(20_000), "groups": ["staff"]}),
    );
    let seen = signed_in(&fd, &upstream, "corp").await;
    let name = seen.header("x-auth-request-name").expect("a name header");
    assert_eq!(name.len(), 256, "the name is cut to max_claim_length");
    assert_eq!(
        seen.header("x-auth-request-groups").as_deref(),
        Some("staff")
    );
    assert_eq!(
        metric(&fd, limited, &["claim=\"name\"", "outcome=\"cut\""]).await,
        1.0
    );

    // Claims only at userinfo, and userinfo 2 MB large.
    idp.claims(json!({"sub": "s-big"}));
    idp.script(|s| {
        s.userinfo = json!({"email": "big@example.com", "email_verified": true});
        s.userinfo_padding = 2_000_000;
    });
    refused(&fd, &upstream, "corp", 502, "too large").await;
    assert_eq!(
        metric(&fd, limited, &["claim=\"userinfo\"", "outcome=\"refused\""]).await,
        1.0
    );
    assert!(
        fd.log().contains("more than max_response_bytes"),
        "a log line says why:\n{}",
        fd.log()
    );
    // Within the bound, the same answer signs in.
    idp.script(|s| s.userinfo_padding = 1000);
    let seen = signed_in(&fd, &upstream, "corp").await;
    assert_eq!(
        seen.header("x-auth-request-email").as_deref(),
        Some("big@example.com")
    );
    let emails = emails(&fd);
    assert_eq!(emails.len(), 2, "{emails:?}");
}

/// Thirty unauthenticated back-channel logout POSTs, at once, each signed with an unknown
/// `kid`: frontdoor fetches the provider's JWKS at most once for all of them (the refetch
/// interval, shared), and never discovery.
#[tokio::test]
async fn backchannel_logouts_with_unknown_kids_refetch_keys_at_most_once_per_interval() {
    let (idp, _upstream, fd) = setup().await;
    let discovery = "/.well-known/openid-configuration";
    let (d0, j0) = (idp.hits(discovery), idp.hits("/jwks"));
    assert!(d0 >= 1 && j0 >= 1, "discovered at start-up");
    let mut posts = Vec::new();
    for _ in 0..30 {
        let key = idp.key.clone().with_key_id(&random_id());
        let token = sign(
            &key,
            "logout+jwt",
            &logout_claims(&idp.issuer, Some("u-x"), None),
        );
        let url = fd.url("/_frontdoor/idp/corp/backchannel-logout");
        posts.push(tokio::spawn(async move {
            plain_client()
                .post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }));
    }
    for p in posts {
        assert_eq!(p.await.expect("join"), 400, "an unknown key is refused");
    }
    let (d1, j1) = (idp.hits(discovery), idp.hits("/jwks"));
    assert_eq!(d1, d0, "discovery fetched {} times on this path", d1 - d0);
    assert!(j1 <= j0 + 1, "JWKS fetched {} times for 30 tokens", j1 - j0);
    // A known key still works (nothing to end, so 200).
    let token = sign(
        &idp.key,
        "logout+jwt",
        &logout_claims(&idp.issuer, Some("u-x"), None),
    );
    let (status, body) = post_logout_token(&fd, &token).await;
    assert_eq!(status, 200, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Protocol details.

/// RFC 9207: a wrong `iss` on the callback is refused; when the provider advertises
/// `authorization_response_iss_parameter_supported`, a missing one is refused too.
#[tokio::test]
async fn rfc9207_iss_on_the_callback_is_checked_and_required_when_advertised() {
    let (idp, upstream, fd) = setup().await;
    idp.claims(json!({"sub": "s-iss", "email": "iss@example.com", "email_verified": true}));
    for wrong in ["http://127.0.0.1:9".to_string(), format!("{}/", idp.issuer)] {
        idp.script(|s| s.iss_param = Some(wrong));
        refused(&fd, &upstream, "corp", 400, "another provider").await;
    }
    let issuer = idp.issuer.clone();
    idp.script(|s| s.iss_param = Some(issuer));
    signed_in(&fd, &upstream, "corp").await;
    idp.script(|s| s.iss_param = None);
    signed_in(&fd, &upstream, "corp").await;

    let strict = hostile_idp(true).await;
    let fd2 = start_fd(
        &upstream,
        vec![corp("corp", &strict).provision(true)],
        Config::new(),
    )
    .await;
    strict.claims(json!({"sub": "s-iss", "email": "iss@example.com", "email_verified": true}));
    refused(&fd2, &upstream, "corp", 400, "did not say which provider").await;
    let issuer = strict.issuer.clone();
    strict.script(|s| s.iss_param = Some(issuer));
    signed_in(&fd2, &upstream, "corp").await;
}

/// ID tokens issued in the future, valid for years, or for another authorized party are
/// refused.
#[tokio::test]
async fn id_tokens_from_the_future_for_years_or_for_another_party_are_refused() {
    let (idp, upstream, fd) = setup().await;
    let base = json!({"sub": "s-time", "email": "time@example.com", "email_verified": true});
    let with = |extra: &Value| {
        let mut c = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    for extra in [
        json!({"iat": now() + 3600}),
        json!({"exp": now() + 5 * 365 * 86400}),
        json!({"aud": "another-client", "azp": CLIENT_ID}),
        json!({"aud": [CLIENT_ID, "another-client"]}),
        json!({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}),
        json!({"azp": "another-client"}),
    ] {
        idp.claims(with(&extra));
        let resp = sign_in(&fd, "corp").await;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{extra}: {body}");
        assert!(body.contains("is not valid"), "{extra}: {body}");
    }
    assert_eq!(emails(&fd), Vec::<String>::new());
    // Within the bounds: a little clock skew, a day's validity, `azp` naming frontdoor.
    idp.claims(with(
        &json!({"iat": now() + 30, "exp": now() + 86_000, "azp": CLIENT_ID}),
    ));
    signed_in(&fd, &upstream, "corp").await;
}

/// A sign-in started on one tenant's host finishes in that tenant or not at all, whatever
/// `Host` the callback names.
#[tokio::test]
async fn a_sign_in_finishes_in_the_tenant_it_started_in() {
    let idp = hostile_idp(false).await;
    let upstream = Upstream::start().await;
    let fd = start_fd(
        &upstream,
        vec![corp("corp", &idp).provision(true)],
        Config::new().tenant("acme", ["acme.localhost"]),
    )
    .await;
    idp.claims(json!({"sub": "s-tenant", "email": "t@example.com", "email_verified": true}));
    let client = plain_client();
    let start = client
        .get(fd.url("/_frontdoor/idp/corp/start?return_to=/home"))
        .header("Host", "acme.localhost")
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), 302);
    let pending = set_cookie_pair(&start, "frontdoor_idp").expect("the pending cookie");
    let back = client.get(location(&start)).send().await.expect("provider");
    // The callback on the default tenant's host, with the pending cookie of acme's sign-in.
    let resp = client
        .get(location(&back))
        .header("Cookie", &pending)
        .send()
        .await
        .expect("callback");
    assert_refused(resp, 400, "another site").await;
    assert_eq!(emails(&fd), Vec::<String>::new(), "nobody provisioned");
}

/// No identity header larger than `max_identity_header_bytes` reaches an upstream, whoever
/// filled the account (here a local account with 600 groups, a 13 kB `X-Auth-Request-Groups`):
/// the request is refused instead, and within the bound it goes through.
#[tokio::test]
async fn an_identity_header_over_the_bound_is_never_sent_upstream() {
    let upstream = Upstream::start().await;
    let fd = Frontdoor::launch(
        Config::single(&upstream)
            .set("max_identity_header_bytes", 8192)
            .set("trusted_proxies", ["127.0.0.1"]),
    )
    .await;
    let groups: Vec<String> = (0..600).map(|i| format!("group-number-{i:06}")).collect();
    fd.add_user(
        "many@example.com",
        "Many",
        &groups.join(","),
        "ROLE_USER",
        "many's password",
    );
    fd.add_user(
        "few@example.com",
        "Few",
        "staff",
        "ROLE_USER",
        "few's password",
    );
    let (browser, _jar) = browser_with_jar();
    let landed = browser_login(
        &browser,
        &fd.url("/wiki"),
        "many@example.com",
        "many's password",
    )
    .await;
    assert_eq!(landed.status(), 500, "refused, not sent upstream");
    assert_eq!(upstream.count(), 0, "nothing reached the upstream");
    assert!(
        fd.log().contains("max_identity_header_bytes"),
        "a log line says why:\n{}",
        fd.log()
    );
    let (browser, _jar) = browser_with_jar();
    let landed = browser_login(
        &browser,
        &fd.url("/wiki"),
        "few@example.com",
        "few's password",
    )
    .await;
    assert_eq!(landed.status(), 200);
    assert_eq!(
        upstream.last().header("x-auth-request-groups").as_deref(),
        Some("staff")
    );

    // Forward-auth answers a proxy in front the same way: it would copy the headers upstream.
    for (user, status, groups) in [
        ("many@example.com", 500, None),
        ("few@example.com", 200, Some("staff")),
    ] {
        let out = fd.cli(&["tokens", "create", "--user", user, "--json"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token: Value = serde_json::from_slice(&out.stdout).expect("json");
        let resp = plain_client()
            .get(fd.url("/_frontdoor/auth"))
            .header("X-Original-URL", "http://app.example/wiki")
            .header("Api-Token", token["token"].as_str().expect("token"))
            .send()
            .await
            .expect("forward-auth");
        assert_eq!(resp.status(), status, "{user}");
        assert_eq!(
            resp.headers()
                .get("x-auth-request-groups")
                .map(|v| v.to_str().expect("text")),
            groups,
            "{user}"
        );
    }
}

/// The callback's path to a key refetch is bounded the same way: ID tokens under unknown
/// `kid`s, one sign-in after another, make at most one JWKS fetch per interval and no
/// discovery. A `sub` longer than OIDC's 255 characters is refused.
#[tokio::test]
async fn id_tokens_with_unknown_kids_refetch_keys_at_most_once_and_long_subs_are_refused() {
    let (idp, upstream, fd) = setup().await;
    let discovery = "/.well-known/openid-configuration";
    let (d0, j0) = (idp.hits(discovery), idp.hits("/jwks"));
    idp.claims(json!({"sub": "s-kid", "email": "kid@example.com", "email_verified": true}));
    for _ in 0..5 {
        idp.script(|s| s.kid = Some(random_id()));
        let resp = sign_in(&fd, "corp").await;
        assert_eq!(resp.status(), 400, "an unknown key is refused");
    }
    let (d1, j1) = (idp.hits(discovery), idp.hits("/jwks"));
    assert_eq!(d1, d0, "discovery fetched {} times on this path", d1 - d0);
    assert!(
        j1 <= j0 + 1,
        "JWKS fetched {} times for 5 ID tokens",
        j1 - j0
    );
    idp.script(|s| s.kid = None);
    signed_in(&fd, &upstream, "corp").await;

    idp.claims(json!({"sub": "s".repeat(256), "email": "sub@example.com",
                      "email_verified": true}));
    refused(&fd, &upstream, "corp", 403, "subject identifier").await;
    assert_eq!(emails(&fd), ["kid@example.com"]);
}
