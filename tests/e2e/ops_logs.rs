//! Operating frontdoor, against the real binary: JSON log lines, the access log and its
//! request id (the one the upstream received and the client got back), audit events of
//! sign-ins read by the shipped fail2ban filter through `fail2ban-regex`, the access log
//! switched off and on by a reload, and the metrics: every family from the first scrape, and
//! every metric the shipped dashboard and alert rules use present in a real scrape.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// The JSON objects of the log's lines; panics on a line that is not one.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

/// The lines of `target`, waiting briefly: the access line is written after the answer.
async fn lines_of(fd: &Frontdoor, target: &str, want: impl Fn(&Value) -> bool) -> Vec<Value> {
    for _ in 0..50 {
        let found: Vec<Value> = json_lines(&fd.log())
            .into_iter()
            .filter(|l| l["target"] == target && want(l))
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {target} line as wanted in:\n{}", fd.log());
}

/// The `X-Request-Id` an answer carries.
fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("the answer carries a request id")
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_gets_one_request_id_even_when_the_upstream_answers_with_its_own() {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        async move {
            if let Some(id) = headers.get("x-request-id") {
                log.lock()
                    .expect("lock")
                    .push(id.to_str().expect("ascii").to_string());
            }
            let mut h = axum::http::HeaderMap::new();
            for id in ["upstream-1", "upstream-2"] {
                h.append("x-request-id", axum::http::HeaderValue::from_static(id));
            }
            (h, "ok").into_response()
        }
    });
    let _task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let fd = Frontdoor::launch(Config::new().route(Route::new("/", port).public())).await;
    let r = plain_client().get(fd.url("/x")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    let ids: Vec<String> = r
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let upstream_saw = seen.lock().expect("lock").clone();
    assert_eq!(upstream_saw.len(), 1, "{upstream_saw:?}");
    assert_eq!(ids, upstream_saw, "the client gets frontdoor's id alone");
}

#[tokio::test]
async fn json_logs_parse_and_the_access_line_carries_the_request_id_the_upstream_and_client_saw() {
    // The test client is on 127.0.0.1: as a trusted proxy its X-Request-Id is believed.
    let (upstream, fd) = setup_with(
        |port| {
            Config::standard(format!("http://127.0.0.1:{port}"))
                .set("log.format", "json")
                .set("trusted_proxies", ["127.0.0.1/32"])
        },
        &[ANN],
    )
    .await;
    let (client, _) = signed_in(&fd, "/", ANN.0, ANN.4).await;

    let resp = client
        .get(fd.url("/wiki/page?access_token=SECRET-QUERY"))
        .send()
        .await
        .expect("proxied");
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);
    assert_eq!(id.len(), 32, "a generated id: {id}");
    let seen = upstream.last();
    assert_eq!(seen.header("x-request-id").as_deref(), Some(id.as_str()));

    let line = lines_of(&fd, "frontdoor::access", |l| l["request_id"] == id.as_str())
        .await
        .remove(0);
    assert_eq!(line["path"], "/wiki/page", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["host"], "127.0.0.1", "{line}");
    assert_eq!(line["client"], "127.0.0.1", "{line}");
    assert_eq!(line["route"], "*/", "{line}");
    assert_eq!(line["auth"], "session", "{line}");
    assert_eq!(line["user"], ANN.0, "{line}");
    assert_eq!(line["tenant"], "default", "{line}");
    assert_eq!(
        line["upstream"],
        format!("127.0.0.1:{}", upstream.port),
        "{line}"
    );
    assert!(line["bytes"].as_u64().is_some_and(|b| b > 0), "{line}");
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert!(line["upstream_ms"].as_f64().is_some(), "{line}");
    assert!(line["timestamp"].as_str().is_some(), "{line}");

    // A trusted proxy's id is kept and passed on; one that is not plain is replaced.
    let resp = client
        .get(fd.url("/wiki/again"))
        .header("x-request-id", "edge-4f2a:17")
        .send()
        .await
        .expect("proxied");
    assert_eq!(resp.headers()["x-request-id"], "edge-4f2a:17");
    assert_eq!(
        upstream.last().header("x-request-id").as_deref(),
        Some("edge-4f2a:17")
    );
    let resp = client
        .get(fd.url("/wiki/odd"))
        .header("x-request-id", "a;b \"c\"")
        .send()
        .await
        .expect("proxied");
    let replaced = request_id(&resp);
    assert_eq!(replaced.len(), 32, "{replaced}");

    // frontdoor's own answers carry one too, and are logged with the own route.
    let own = plain_client()
        .get(fd.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    let own_id = request_id(&own);
    let line = lines_of(&fd, "frontdoor::access", |l| {
        l["request_id"] == own_id.as_str()
    })
    .await
    .remove(0);
    assert_eq!(line["route"], "frontdoor", "{line}");
    assert!(line.get("upstream").is_none(), "{line}");

    // The sign-in above is an audit event; no line holds the query's value or the password.
    lines_of(&fd, "frontdoor::audit", |l| {
        l["event"] == "sign_in_succeeded" && l["account"] == ANN.0
    })
    .await;
    let log = fd.log();
    assert!(!log.contains("SECRET-QUERY"), "{log}");
    assert!(!log.contains(ANN.4), "{log}");
    json_lines(&log);
}

/// The fail2ban filter shipped in `contrib/`.
fn fail2ban_filter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/fail2ban/filter.d/frontdoor.conf")
}

/// `fail2ban-regex -o ip LOG FILTER`: the address of every matched line, in order.
fn fail2ban_matches(log: &Path) -> Vec<String> {
    let out = Command::new("fail2ban-regex")
        .arg("-o")
        .arg("ip")
        .arg(log)
        .arg(fail2ban_filter())
        .output()
        .expect("fail2ban-regex runs (Debian package fail2ban)");
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn failed_sign_ins_are_audited_with_account_and_address_and_fail2ban_matches_them() {
    // Text lines, the default: what a file appended from stderr holds. The client addresses
    // come from X-Forwarded-For, believed from the test client as a trusted proxy.
    let (_upstream, fd) = setup_with(
        |port| {
            Config::standard(format!("http://127.0.0.1:{port}"))
                .set("trusted_proxies", ["127.0.0.1/32"])
        },
        &[ANN],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&fd, ANN.0, "wrong password 1", "203.0.113.7").await,
            401
        );
    }
    assert_eq!(
        login_from(&fd, "nobody@example.com", "whatever 1", "2001:db8::7").await,
        401
    );
    // A success from another address never matches.
    assert_eq!(login_from(&fd, ANN.0, ANN.4, "198.51.100.9").await, 200);
    // The sign-in form's failures are the same event.
    let page = form_login(&fd, ANN.0, "wrong password 2").await;
    assert!(!page.status().is_redirection(), "{}", page.status());

    let log = fd.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("frontdoor::audit") && l.contains("event=\"sign_in_failed\""))
        .collect();
    assert_eq!(failed.len(), 5, "{log}");
    assert!(
        failed[0].contains("client=203.0.113.7")
            && failed[0].contains("method=\"api_password\"")
            && failed[0].contains(&format!("account=\"{}\"", ANN.0))
            && failed[0].contains("reason=\"wrong_password\""),
        "{}",
        failed[0]
    );
    assert!(
        failed[3].contains("reason=\"unknown_account\"")
            && failed[3].contains("account=\"nobody@example.com\""),
        "{}",
        failed[3]
    );
    assert!(failed[4].contains("method=\"password\""), "{}", failed[4]);
    assert!(
        log.lines().any(|l| l.contains("event=\"sign_in_succeeded\"")
            && l.contains("client=198.51.100.9")),
        "{log}"
    );
    assert!(
        !log.contains("wrong password"),
        "passwords never logged:\n{log}"
    );

    let file = fd.dir.path().join("frontdoor.log");
    let matched = fail2ban_matches(&file);
    assert_eq!(
        matched,
        [
            "203.0.113.7",
            "203.0.113.7",
            "203.0.113.7",
            "2001:db8::7",
            "127.0.0.1"
        ],
        "fail2ban-regex on:\n{log}"
    );
}

#[tokio::test]
async fn the_access_log_can_be_off_and_a_reload_turns_it_on_and_is_audited() {
    let (upstream, fd) = setup_with(
        |port| Config::single(format!("http://127.0.0.1:{port}")).set("log.access", false),
        &[],
    )
    .await;
    let _ = upstream;
    let resp = plain_client()
        .get(fd.url("/oauth/jwks"))
        .send()
        .await
        .expect("jwks");
    assert!(resp.headers().contains_key("x-request-id"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fd.log().contains("frontdoor::access"), "{}", fd.log());

    fd.write_config(Config::single(format!(
        "http://127.0.0.1:{}",
        upstream.port
    )));
    let out = fd.cli(&["reload"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = plain_client()
        .get(fd.url("/oauth/jwks"))
        .send()
        .await
        .expect("jwks");
    let id = request_id(&resp);
    let mut found = false;
    for _ in 0..50 {
        found = fd
            .log()
            .lines()
            .any(|l| l.contains("frontdoor::access") && l.contains(&id));
        if found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "access line after the reload:\n{}", fd.log());
    assert!(
        fd.log().lines().any(|l| l.contains("frontdoor::audit")
            && l.contains("event=\"config_reload\"")
            && l.contains("outcome=\"applied\"")),
        "{}",
        fd.log()
    );
}

/// Every family frontdoor registers, which the first scrape must list.
const FAMILIES: &[&str] = &[
    "frontdoor_http_requests_total",
    "frontdoor_http_request_duration_seconds",
    "frontdoor_upstream_duration_seconds",
    "frontdoor_upstream_failures_total",
    "frontdoor_auth_decisions_total",
    "frontdoor_logins_total",
    "frontdoor_tokens_issued_total",
    "frontdoor_federation_claims_limited_total",
    "frontdoor_regulation_bans_total",
    "frontdoor_rate_limited_total",
    "frontdoor_session_cache_requests_total",
    "frontdoor_active_sessions",
    "frontdoor_config_reloads_total",
    "frontdoor_config_last_reload_successful",
    "frontdoor_backchannel_logout_total",
    "frontdoor_refresh_rotations_per_commit",
    "frontdoor_refresh_rotation_commit_duration_seconds",
    "frontdoor_store_up",
    "frontdoor_revocation_listener_up",
    "frontdoor_tls_certificate_reloads_total",
    "frontdoor_tls_certificate_expiry_timestamp_seconds",
    "frontdoor_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

/// The families (`# TYPE` lines) and the sample names of a scrape.
fn scraped(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let families = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    (families, samples)
}

/// The metric names an expression uses: frontdoor's and the process collector's.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:frontdoor|process)_[a-z_]+\b").expect("pattern");
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// Every PromQL expression of the dashboard (`expr` of each panel's targets).
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_first_scrape_lists_every_family_and_the_dashboard_and_alerts_use_only_real_metrics() {
    // Families labelled by provider have children for the configured ones: one that is not
    // reachable (its discovery is retried in the background) is enough.
    let upstream = Upstream::start().await;
    let dead = free_port();
    let fd = Frontdoor::launch(
        Config::standard(&upstream)
            .route(Route::new("/dead", format!("http://127.0.0.1:{dead}")).public())
            .federation(Provider::corp("corp", "http://127.0.0.1:9")),
    )
    .await;
    let (families, samples) = scraped(&fd.metrics().await);
    let missing: Vec<&&str> = FAMILIES
        .iter()
        .filter(|f| !families.contains(**f))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the first scrape: {missing:?}"
    );
    // One vocabulary: no family still uses the old label names.
    let text = fd.metrics().await;
    for old in ["status=\"", "result=\"", "action=\""] {
        assert!(!text.contains(old), "{old} in:\n{text}");
    }

    assert!(
        text.contains("frontdoor_upstream_failures_total{code=\"502\",route=\"*/dead\"} 0"),
        "{text}"
    );
    assert!(text.contains("frontdoor_store_up 1"), "{text}");
    assert!(
        text.contains("frontdoor_revocation_listener_up 1"),
        "{text}"
    );
    assert!(
        text.contains("frontdoor_tls_certificate_expiry_timestamp_seconds 0"),
        "{text}"
    );

    // An upstream that is not there: counted by route and code.
    let resp = plain_client()
        .get(fd.url("/dead/x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 502);
    let text = fd.metrics().await;
    assert!(
        text.contains("frontdoor_upstream_failures_total{code=\"502\",route=\"*/dead\"} 1"),
        "{text}"
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/frontdoor.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "dashboard panels: {exprs:?}");
    let rules: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("prometheus/alerts.yml")).expect("alerts"),
    )
    .expect("the rules are YAML");
    let mut alerts = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            let expr = rule["expr"].as_str().expect("expr");
            alerts.push(name.to_string());
            exprs.push(expr.to_string());
        }
    }
    for want in [
        "FrontdoorHighErrorRatio",
        "FrontdoorUpstreamFailures",
        "FrontdoorStoreUnavailable",
        "FrontdoorBanSpike",
        "FrontdoorCertificateExpiresSoon",
        "FrontdoorRevocationListenerDown",
    ] {
        assert!(alerts.iter().any(|a| a == want), "{want} in {alerts:?}");
    }
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "an expression without a metric: {e}");
        used.extend(names);
    }
    let absent: Vec<&String> = used.iter().filter(|n| !samples.contains(*n)).collect();
    assert!(
        absent.is_empty(),
        "used by the dashboard or the alerts but not in a scrape: {absent:?}"
    );
}
