//! The soak load driver (`bench/soak.sh` runs it): mixed traffic against one or more frontdoor
//! nodes for a fixed time, in bounded loops — a fixed number of workers per kind, each
//! sending one request at a time, some paced — and a report of what came back.
//!
//! Kinds: form logins (login page, CSRF, POST), `client_credentials` grants, login-check
//! followed by a refresh, proxied requests with a session cookie (made on one node, used on
//! all), proxied requests with an Api-Token. Every answer other than the expected one is an
//! error, counted by kind and status.
//!
//! `soak --nodes http://127.0.0.1:1,http://127.0.0.1:2 --seconds 600 --email E --password P
//!       --client-id ID --client-secret S --api-token T [--report FILE]`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

#[derive(Clone)]
struct Args {
    nodes: Vec<String>,
    seconds: u64,
    email: String,
    password: String,
    client_id: String,
    client_secret: String,
    api_token: String,
    report: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut map = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {k}"))?
            .to_string();
        let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        map.insert(key, v);
    }
    let get = |k: &str| map.get(k).cloned().ok_or_else(|| format!("missing --{k}"));
    Ok(Args {
        nodes: get("nodes")?.split(',').map(str::to_string).collect(),
        seconds: get("seconds")?
            .parse()
            .map_err(|e| format!("--seconds: {e}"))?,
        email: get("email")?,
        password: get("password")?,
        client_id: get("client-id")?,
        client_secret: get("client-secret")?,
        api_token: get("api-token")?,
        report: map.get("report").cloned(),
    })
}

/// Outcomes by kind: successes and errors by status (0: no answer).
#[derive(Default)]
struct Tally {
    ok: BTreeMap<&'static str, u64>,
    errors: BTreeMap<(&'static str, u16), u64>,
}

impl Tally {
    fn record(&mut self, kind: &'static str, expected: u16, got: u16) {
        if got == expected {
            *self.ok.entry(kind).or_default() += 1;
        } else {
            *self.errors.entry((kind, got)).or_default() += 1;
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("HTTP client: {e}"))
}

async fn status(r: Result<reqwest::Response, reqwest::Error>) -> u16 {
    r.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// A form login on `node`: (status of the POST, session cookie).
async fn form_login(node: &str, a: &Args) -> (u16, Option<String>) {
    let c = client();
    let Ok(page) = c.get(format!("{node}/_frontdoor/login")).send().await else {
        return (0, None);
    };
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("frontdoor_csrf="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let html = page.text().await.unwrap_or_default();
    let token = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string();
    let mut req = c.post(format!("{node}/_frontdoor/login")).form(&[
        ("email", a.email.as_str()),
        ("password", a.password.as_str()),
        ("csrf_token", token.as_str()),
        ("return_to", "/"),
    ]);
    if let Some(cookie) = csrf_cookie {
        req = req.header("Cookie", cookie);
    }
    match req.send().await {
        Ok(r) => {
            let session = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("frontdoor_session="))
                .and_then(|v| v.split(';').next())
                .map(str::to_string);
            (r.status().as_u16(), session)
        }
        Err(_) => (0, None),
    }
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    // Session cookies made by the login workers, shared with the proxied-request workers.
    let sessions: Arc<Mutex<Vec<String>>> = Arc::default();
    let (_, first) = form_login(&a.nodes[0], &a).await;
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(first.unwrap_or_else(|| panic!("the first login failed")));
    let round = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let spawn_kind = |workers: usize,
                      pace: Option<Duration>,
                      kind: &'static str,
                      tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
        for w in 0..workers {
            let (a, tally, stop, sessions, round) = (
                a.clone(),
                tally.clone(),
                stop.clone(),
                sessions.clone(),
                round.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let c = client();
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    i += 1;
                    let node = &a.nodes[i % a.nodes.len()];
                    match kind {
                        "form_login" => {
                            let (got, cookie) = form_login(node, &a).await;
                            if let Some(cookie) = cookie {
                                let mut s = sessions.lock().unwrap_or_else(|p| p.into_inner());
                                // A bounded pool of live sessions, replaced round-robin.
                                if s.len() < 256 {
                                    s.push(cookie);
                                } else {
                                    let at = round.fetch_add(1, Ordering::Relaxed) as usize % 256;
                                    s[at] = cookie;
                                }
                            }
                            tally
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .record(kind, 303, got);
                        }
                        "client_credentials" => {
                            let got = status(
                                c.post(format!("{node}/oauth/token"))
                                    .basic_auth(&a.client_id, Some(&a.client_secret))
                                    .form(&[("grant_type", "client_credentials")])
                                    .send()
                                    .await,
                            )
                            .await;
                            tally
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .record(kind, 200, got);
                        }
                        "login_check_refresh" => {
                            let r = c
                                .post(format!("{node}/api/v1/login-check"))
                                .json(&json!({"email": a.email, "password": a.password}))
                                .send()
                                .await;
                            let (got, refresh) = match r {
                                Ok(r) => {
                                    let s = r.status().as_u16();
                                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                                    (s, v["refresh_token"].as_str().map(str::to_string))
                                }
                                Err(_) => (0, None),
                            };
                            tally.lock().unwrap_or_else(|p| p.into_inner()).record(
                                "login_check",
                                200,
                                got,
                            );
                            if let Some(refresh) = refresh {
                                // Refreshed on another node than the one that issued it.
                                let other = &a.nodes[(i + 1) % a.nodes.len()];
                                let got = status(
                                    c.post(format!("{other}/api/v1/token/refresh"))
                                        .json(&json!({"refresh_token": refresh}))
                                        .send()
                                        .await,
                                )
                                .await;
                                tally
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .record("refresh", 200, got);
                            }
                        }
                        "session_proxy" => {
                            let cookie = {
                                let s = sessions.lock().unwrap_or_else(|p| p.into_inner());
                                s[i % s.len()].clone()
                            };
                            let got = status(
                                c.get(format!("{node}/soak/page"))
                                    .header("Cookie", cookie)
                                    .send()
                                    .await,
                            )
                            .await;
                            tally
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .record(kind, 200, got);
                        }
                        _ => {
                            let got = status(
                                c.get(format!("{node}/soak/api"))
                                    .header("Api-Token", &a.api_token)
                                    .send()
                                    .await,
                            )
                            .await;
                            tally
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .record(kind, 200, got);
                        }
                    }
                    if let Some(p) = pace
                        && let Some(rest) = p.checked_sub(t0.elapsed())
                    {
                        tokio::time::sleep(rest).await;
                    }
                }
            }));
        }
    };
    // Logins are paced (Argon2 is meant to be slow); the rest run flat out, one request at a
    // time per worker.
    spawn_kind(
        2,
        Some(Duration::from_millis(250)),
        "form_login",
        &mut tasks,
    );
    spawn_kind(
        2,
        Some(Duration::from_millis(250)),
        "login_check_refresh",
        &mut tasks,
    );
    spawn_kind(4, None, "client_credentials", &mut tasks);
    spawn_kind(8, None, "session_proxy", &mut tasks);
    spawn_kind(4, None, "api_token_proxy", &mut tasks);

    let total = Duration::from_secs(a.seconds);
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(10).min(total.saturating_sub(started.elapsed())))
            .await;
        let t = tally.lock().unwrap_or_else(|p| p.into_inner());
        let ok: u64 = t.ok.values().sum();
        let errors: u64 = t.errors.values().sum();
        eprintln!(
            "soak: {:>4}s {ok} ok, {errors} errors",
            started.elapsed().as_secs()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let report = json!({
        "seconds": started.elapsed().as_secs_f64(),
        "ok": t.ok,
        "errors": t.errors.iter().map(|((k, s), n)| json!({"kind": k, "status": s, "count": n})).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{text}");
    if let Some(path) = &a.report
        && let Err(e) = std::fs::write(path, &text)
    {
        eprintln!("soak: cannot write {path}: {e}");
    }
    if !t.errors.is_empty() {
        std::process::exit(1);
    }
}
