//! What wikis and trackers need from the proxy beyond plain requests: WebSocket upgrades and
//! streamed bodies through authenticated routes, and upstream faults (down, slow, resetting)
//! answered in the JSON envelope within the route's timeout while other routes keep serving.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::*;

const PW: &str = "a long enough password";
const ANN: &str = "ann@example.com";
/// Failing bound for steps that would otherwise hang (a buffered stream deadlocks).
const HANG: Duration = Duration::from_secs(60);

/// What the tool upstream saw and the levers a test pulls.
#[derive(Default)]
struct Shared {
    /// Headers of each WebSocket upgrade request.
    upgrades: Mutex<Vec<HeaderMap>>,
    /// Released by the test once it holds the first chunk of `/stream`.
    release: Notify,
    /// Set when `/stream` has sent its last chunk.
    finished: AtomicBool,
    /// Notified when `/slow` has received its request.
    slow_entered: Notify,
}

/// An axum upstream with a WebSocket echo, a hashing upload sink, a streamed download and an
/// endpoint that never answers.
struct Tools {
    port: u16,
    shared: Arc<Shared>,
}

/// Chunks of `/stream` and their size.
const STREAM_CHUNKS: usize = 64;
const STREAM_CHUNK: usize = 64 * 1024;

/// Deterministic, non-repeating-looking content of chunk `i`.
fn chunk(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j.wrapping_mul(31) ^ i.wrapping_mul(131) ^ (j >> 8)) as u8)
        .collect()
}

fn hex_sha256(data: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole `/stream` body, as the upstream sends it.
fn stream_body() -> Vec<u8> {
    (0..STREAM_CHUNKS)
        .flat_map(|i| chunk(i, STREAM_CHUNK))
        .collect()
}

async fn ws_echo(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    shared.upgrades.lock().expect("lock").push(headers);
    ws.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let echoed = match msg {
            WsMessage::Text(_) | WsMessage::Binary(_) => socket.send(msg).await,
            WsMessage::Close(_) => return,
            _ => Ok(()),
        };
        if echoed.is_err() {
            return;
        }
    }
}

/// Hashes the request body as it streams in; answers its length, hash and framing.
async fn upload(headers: HeaderMap, body: Body) -> axum::Json<serde_json::Value> {
    let mut hasher = Sha256::new();
    let mut len = 0usize;
    let mut chunks = 0usize;
    let mut data = body.into_data_stream();
    while let Some(piece) = data.next().await {
        let piece = piece.expect("request body");
        len += piece.len();
        chunks += 1;
        hasher.update(&piece);
    }
    let te = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    axum::Json(serde_json::json!({
        "len": len, "sha256": hex(&hasher.finalize()), "chunks": chunks, "transfer_encoding": te,
    }))
}

/// Sends the first chunk, then waits until the test has received it before sending the rest.
async fn stream(State(shared): State<Arc<Shared>>) -> Response {
    let body = futures_util::stream::unfold(0usize, move |i| {
        let shared = shared.clone();
        async move {
            if i == STREAM_CHUNKS {
                shared.finished.store(true, Ordering::SeqCst);
                return None;
            }
            if i == 1 {
                shared.release.notified().await;
            }
            Some((
                Ok::<_, std::io::Error>(Bytes::from(chunk(i, STREAM_CHUNK))),
                i + 1,
            ))
        }
    });
    Response::new(Body::from_stream(body))
}

async fn slow(State(shared): State<Arc<Shared>>) -> &'static str {
    shared.slow_entered.notify_one();
    std::future::pending::<()>().await;
    "never"
}

impl Tools {
    async fn start() -> Tools {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/ws", any(ws_echo))
            .route("/upload", any(upload))
            .route("/stream", get(stream))
            .route("/slow", get(slow))
            .fallback(|| async { "tools upstream" })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Tools { port, shared }
    }
}

/// frontdoor in front of the tool upstream (authenticated), with ann and her API token.
async fn setup() -> (Tools, Frontdoor, String) {
    let tools = Tools::start().await;
    let fd = Frontdoor::launch(Config::single(tools.port)).await;
    fd.add_user(ANN, "Ann", "wiki", "ROLE_USER", PW);
    let token = fd.api_token(&["--user", ANN]);
    (tools, fd, token)
}

/// Signs ann in with the browser flow; returns the session cookie's value.
async fn session_cookie(fd: &Frontdoor) -> String {
    signed_in(fd, "/start", ANN, PW).await.1
}

/// Opens a WebSocket to `/ws` through frontdoor with these extra headers.
async fn open_ws(
    fd: &Frontdoor,
    headers: &[(&'static str, String)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = format!("ws://127.0.0.1:{}/ws", fd.port)
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("header value"));
    }
    tokio::time::timeout(HANG, tokio_tungstenite::connect_async(request))
        .await
        .expect("the handshake finishes")
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn websockets_pass_through_with_a_session_or_an_api_token_and_not_without() {
    let (tools, fd, token) = setup().await;
    let cookie = session_cookie(&fd).await;
    let big: Vec<u8> = chunk(7, 1 << 20);
    for (label, credential) in [
        ("session", ("cookie", format!("frontdoor_session={cookie}"))),
        ("api token", ("api-token", token.clone())),
    ] {
        // A client that tries to name itself is overridden.
        let mut ws = open_ws(
            &fd,
            &[
                credential,
                ("x-auth-request-user", "mallory@example.com".to_string()),
                ("remote-user", "mallory".to_string()),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: the upgrade is refused: {e}"));
        for (n, msg) in [
            Message::text(format!("hello over {label}")),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::binary(big.clone()),
        ]
        .into_iter()
        .enumerate()
        {
            ws.send(msg.clone()).await.expect("send");
            let back = tokio::time::timeout(HANG, ws.next())
                .await
                .expect("an echo")
                .expect("an open socket")
                .unwrap_or_else(|e| panic!("{label}: message {n}: {e}\n{}", fd.log()));
            assert_eq!(back, msg, "{label}: echoed unchanged");
        }
        ws.close(None).await.expect("close");

        let upgrade = tools
            .shared
            .upgrades
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("an upgrade reached the upstream");
        let text = |name: &str| {
            upgrade
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        assert_eq!(text("x-auth-request-user").as_deref(), Some(ANN), "{label}");
        assert_eq!(
            text("x-auth-request-email").as_deref(),
            Some(ANN),
            "{label}"
        );
        assert_eq!(text("remote-user"), None, "{label}: spoofed header removed");
        assert_eq!(text("api-token"), None, "{label}: credential not forwarded");
        assert!(
            !text("cookie")
                .unwrap_or_default()
                .contains("frontdoor_session"),
            "{label}: session cookie not forwarded"
        );
        assert_eq!(
            text("upgrade").map(|u| u.to_ascii_lowercase()).as_deref(),
            Some("websocket")
        );
    }

    let upgrades_before = tools.shared.upgrades.lock().expect("lock").len();
    for headers in [
        vec![],
        vec![("api-token", "not-a-token".to_string())],
        vec![("x-auth-request-user", ANN.to_string())],
    ] {
        match open_ws(&fd, &headers).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "{headers:?}");
                let body: serde_json::Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                        .expect("JSON envelope");
                assert_eq!(body["error"]["status"], 401);
            }
            Err(e) => panic!("{headers:?}: unexpected error {e}"),
            Ok(_) => panic!("{headers:?}: upgraded without credentials"),
        }
    }
    assert_eq!(
        tools.shared.upgrades.lock().expect("lock").len(),
        upgrades_before,
        "nothing unauthenticated reached the upstream"
    );
}

#[tokio::test]
async fn a_large_chunked_upload_arrives_intact() {
    let (_tools, fd, token) = setup().await;
    // 20 MiB in 80 chunks of 256 KiB, sent as they are produced (Transfer-Encoding: chunked).
    let pieces: Vec<Vec<u8>> = (0..80).map(|i| chunk(i, 256 * 1024)).collect();
    let expected = hex_sha256(pieces.concat());
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let resp = tokio::time::timeout(
        HANG,
        plain_client()
            .post(fd.url("/upload"))
            .header("Api-Token", &token)
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    )
    .await
    .expect("the upload finishes")
    .expect("upload");
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(seen["len"], 20 * 1024 * 1024);
    assert_eq!(seen["sha256"], expected.as_str());
    assert_eq!(seen["transfer_encoding"], "chunked", "{seen}");
}

#[tokio::test]
async fn a_streamed_response_arrives_as_it_is_produced_and_intact() {
    let (tools, fd, _token) = setup().await;
    let cookie = session_cookie(&fd).await;
    let mut resp = plain_client()
        .get(fd.url("/stream"))
        .header("Cookie", format!("frontdoor_session={cookie}"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("transfer-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"chunked"[..])
    );
    // The upstream sends the rest only after this client holds the first bytes: a proxy that
    // buffered the response would never deliver them (and the timeout fails the test).
    let first = tokio::time::timeout(HANG, resp.chunk())
        .await
        .expect("the first chunk arrives before the upstream finishes")
        .expect("body")
        .expect("a chunk");
    assert!(!first.is_empty());
    assert!(
        !tools.shared.finished.load(Ordering::SeqCst),
        "the upstream is still producing"
    );
    tools.shared.release.notify_one();
    let mut body = first.to_vec();
    while let Some(piece) = tokio::time::timeout(HANG, resp.chunk())
        .await
        .expect("the rest arrives")
        .expect("body")
    {
        body.extend_from_slice(&piece);
    }
    assert!(tools.shared.finished.load(Ordering::SeqCst));
    assert_eq!(body.len(), STREAM_CHUNKS * STREAM_CHUNK);
    assert_eq!(hex_sha256(&body), hex_sha256(stream_body()));
}

// ---------------------------------------------------------------------------------------------
// Faults.

/// A listener on a free port of 127.0.0.1, and the port.
async fn local_listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// Reads one request head from `conn`, through its blank line (anything after it is dropped):
/// `None` when the connection ends first, or stays silent for `idle` when given.
async fn read_head(conn: &mut tokio::net::TcpStream, idle: Option<Duration>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = match idle {
            Some(idle) => tokio::time::timeout(idle, conn.read(&mut buf)).await.ok()?,
            None => conn.read(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// An upstream that accepts, reads the request head, and resets the connection: at once
/// (`/reset/now`), inside the response head (`/reset/head`), or inside the body (`/reset/body`).
async fn resetting_upstream() -> u16 {
    let (listener, port) = local_listener().await;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut conn, None).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&head);
                let path = text.split(' ').nth(1).unwrap_or("");
                let partial: &[u8] = if path.starts_with("/reset/head") {
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/pl"
                } else if path.starts_with("/reset/body") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nthe first few bytes"
                } else {
                    b""
                };
                let _ = conn.write_all(partial).await;
                let _ = conn.flush().await;
                // Linger 0: closing sends RST instead of FIN (and so never blocks).
                #[allow(deprecated)]
                let _ = conn.set_linger(Some(Duration::ZERO));
                drop(conn);
            });
        }
    });
    port
}

/// The value of `frontdoor_http_requests_total` for a route label and status.
fn requests_counted(metrics: &str, route: &str, status: u16) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("frontdoor_http_requests_total{"))
        .filter(|l| l.contains(&format!("route=\"{route}\"")))
        .filter(|l| l.contains(&format!("code=\"{status}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Asserts an error answer in the JSON envelope.
async fn assert_envelope(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status(), status);
    let body: serde_json::Value = resp.json().await.expect("JSON envelope");
    assert_eq!(body["error"]["status"], status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn slow_dead_and_resetting_upstreams_are_answered_in_time_and_other_routes_keep_serving() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let tools = Tools::start().await;
    let reset = resetting_upstream().await;
    let dead = free_port();
    let t = tools.port;
    let fd = Frontdoor::launch(
        Config::new()
            .route(Route::new("/slow", t).public().read_timeout("2s"))
            .route(Route::new("/reset", reset).public().read_timeout("2s"))
            .route(Route::new("/dead", dead).public().connect_timeout("2s"))
            .route(Route::new("/", t).public()),
    )
    .await;
    let client = plain_client();
    let timed = |path: &'static str| {
        let client = client.clone();
        let url = fd.url(path);
        async move {
            let start = Instant::now();
            let resp = client.get(url).send().await.expect("an answer");
            (resp, start.elapsed())
        }
    };

    // Slow: the upstream never answers. While it hangs, other routes answer.
    let slow = tokio::spawn(timed("/slow"));
    tools.shared.slow_entered.notified().await;
    let alive = client.get(fd.url("/alive")).send().await.expect("get");
    assert_eq!(alive.status(), 200, "another route answers meanwhile");
    let (resp, took) = slow.await.expect("task");
    assert!(
        took >= TIMEOUT && took < 2 * TIMEOUT,
        "504 after {took:?} with read_timeout {TIMEOUT:?}"
    );
    assert_envelope(resp, 504, "upstream_timeout").await;

    // Down: connection refused.
    let (resp, took) = timed("/dead/x").await;
    assert!(took < 2 * TIMEOUT, "502 after {took:?}");
    assert_envelope(resp, 502, "bad_gateway").await;

    // Reset before any answer, and inside the response head.
    for path in ["/reset/now", "/reset/head"] {
        let (resp, took) = timed(path).await;
        assert!(took < 2 * TIMEOUT, "{path}: answered after {took:?}");
        assert_envelope(resp, 502, "bad_gateway").await;
    }
    // Reset inside the body: the status line has gone out, so the client must see the body
    // cut short, never a complete response.
    let (resp, _) = timed("/reset/body").await;
    assert_eq!(resp.status(), 200);
    if let Ok(b) = resp.bytes().await {
        assert!(b.len() < 100_000, "a truncated body passed as whole");
    }
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", fd.port))
        .await
        .expect("connect");
    raw.write_all(b"GET /reset/body HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(HANG, raw.read_to_end(&mut seen)).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("the first few bytes"), "{seen}");
    assert!(
        !seen.contains("bad_gateway") && seen.matches("HTTP/1.1").count() == 1,
        "nothing is appended to a body already under way: {seen}"
    );

    // Everything still works, and each fault was counted.
    for _ in 0..3 {
        let ok = client.get(fd.url("/alive")).send().await.expect("get");
        assert_eq!(ok.status(), 200);
    }
    // A request is counted when its logging runs, just after its answer went out: wait for it.
    let expected = [
        ("*/slow", 504, 1),
        ("*/dead", 502, 1),
        ("*/reset", 502, 2),
        ("*/", 200, 4),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = fd.metrics().await;
        let counted = expected
            .iter()
            .all(|&(route, status, n)| requests_counted(&metrics, route, status) >= n);
        if counted {
            break;
        }
        assert!(Instant::now() < deadline, "faults not counted:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keep-alive answer of the raw upstreams below: `ok`.
const OK_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// An upstream that keeps a connection open for `idle` after each answer and then closes it,
/// as a server with a short keep-alive timeout does; counts the connections it accepted.
async fn short_keep_alive_upstream(idle: Duration) -> (u16, Arc<AtomicUsize>) {
    let (listener, port) = local_listener().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Idle past the keep-alive timeout, or closed: close.
                while read_head(&mut conn, Some(idle)).await.is_some() {
                    if conn.write_all(OK_ANSWER).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

/// An upstream that closes idle keep-alive connections soon after each answer: a request that
/// comes after the close (in the first 100 ms, before frontdoor's connection pool watches the
/// idle connection, or after) gets a fresh connection and its answer, never a 502; requests in
/// a row share one connection.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_closing_idle_connections_costs_no_request() {
    const IDLE: Duration = Duration::from_millis(20);
    let (port, accepted) = short_keep_alive_upstream(IDLE).await;
    let fd = Frontdoor::launch(Config::new().route(Route::new("/", port).public())).await;
    let client = plain_client();
    let get = || async {
        let resp = client.get(fd.url("/page")).send().await.expect("answer");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    };
    // Gaps after which the upstream has closed the pooled connection: before the pool's watch
    // starts (50 ms), around it (150 ms) and well after it (400 ms).
    assert_eq!(get().await, (200, "ok".to_string()));
    for gap in [50, 150, 400, 50, 50] {
        tokio::time::sleep(Duration::from_millis(gap)).await;
        // Once, under the whole suite's load, this answered 502 after 150 ms (session 35,
        // not reproduced alone or beside busy loops): the log says which error it was.
        assert_eq!(
            get().await,
            (200, "ok".to_string()),
            "after {gap} ms; frontdoor's log:\n{}",
            fd.log()
        );
    }
    let before = accepted.load(Ordering::SeqCst);
    assert!(
        before >= 6,
        "each request after a close had its own connection ({before})"
    );
    // Back to back, inside the upstream's 20 ms: they share pooled connections.
    for _ in 0..10 {
        assert_eq!(get().await, (200, "ok".to_string()));
    }
    let during = accepted.load(Ordering::SeqCst) - before;
    assert!(
        during < 10,
        "requests in a row reuse the pooled connection ({during} new)"
    );
}

/// An upstream that, 20 ms after each answer, sends a second unasked-for answer on the idle
/// connection (`evil`), as a confused or hostile server could to poison the next request.
async fn unsolicited_answer_upstream() -> u16 {
    let (listener, port) = local_listener().await;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                while read_head(&mut conn, None).await.is_some() {
                    if conn.write_all(OK_ANSWER).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let evil = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil";
                    if conn.write_all(evil).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Bytes an upstream sends on an idle pooled connection never become the answer to the next
/// request: whether they come before frontdoor's pool watches the connection (the read right
/// before each reuse drops it) or after (the watch drops it).
#[tokio::test(flavor = "multi_thread")]
async fn an_unasked_for_answer_on_an_idle_upstream_connection_answers_no_request() {
    let port = unsolicited_answer_upstream().await;
    let fd = Frontdoor::launch(Config::new().route(Route::new("/", port).public())).await;
    let client = plain_client();
    for gap in [0, 50, 400, 50, 150, 50] {
        tokio::time::sleep(Duration::from_millis(gap)).await;
        let resp = client.get(fd.url("/page")).send().await.expect("answer");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.text().await.expect("body"),
            "ok",
            "after a gap of {gap} ms"
        );
    }
}
