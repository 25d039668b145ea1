//! Client connections held open (issue 17): what an idle keep-alive connection costs frontdoor's
//! memory, and that requests still arrive whole on a plain connection without a read buffer in
//! front of it (`tls::PLAIN_BUFFERS`).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::*;

/// Enough connections that their cost stands out of the process's other growth.
const IDLE: usize = 400;
/// Pingora's default read buffer per client connection, zeroed (so resident) at its start.
const PINGORA_READ_BUFFER: u64 = 64 * 1024;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Reads one answer: its status and whether the connection stays open after it.
async fn answer(conn: &mut BufReader<TcpStream>) -> (u16, bool) {
    let mut line = String::new();
    conn.read_line(&mut line).await.expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (mut length, mut keep) = (0usize, true);
    loop {
        line.clear();
        conn.read_line(&mut line).await.expect("header line");
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse().expect("content-length");
        }
        if header == "connection: close" {
            keep = false;
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.expect("body");
    (status, keep)
}

async fn get(conn: &mut BufReader<TcpStream>, port: u16, path: &str) -> (u16, bool) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    conn.get_mut()
        .write_all(request.as_bytes())
        .await
        .expect("write");
    answer(conn).await
}

async fn open(port: u16) -> BufReader<TcpStream> {
    BufReader::new(
        TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_costs_less_than_a_read_buffer() {
    let (_upstream, fd) = setup_with(Config::standard, &[]).await;
    // The worker threads' own buffers and caches exist before the first reading.
    for _ in 0..16 {
        let mut conn = open(fd.port).await;
        assert_eq!(get(&mut conn, fd.port, "/public/warm").await, (200, true));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes(fd.pid());
    let mut held = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut conn = open(fd.port).await;
        let got = get(&mut conn, fd.port, &format!("/public/{i}")).await;
        assert_eq!(got, (200, true), "connection {i}");
        held.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per = rss_bytes(fd.pid()).saturating_sub(before) / IDLE as u64;
    assert!(
        per < PINGORA_READ_BUFFER,
        "{per} bytes of RSS per idle keep-alive connection: at least Pingora's read buffer"
    );
    // Held, not dropped: each answers again.
    for (i, conn) in held.iter_mut().enumerate() {
        assert_eq!(
            get(conn, fd.port, "/public/again").await,
            (200, true),
            "connection {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_header_sent_in_pieces_arrives_whole() {
    let (upstream, fd) = setup_with(Config::standard, &[]).await;
    // Over Pingora's first 4 KiB header read, sent in pieces with pauses, then the next request
    // on the same connection right behind the first one's answer.
    let pad = "p".repeat(9000);
    let request = format!(
        "GET /public/big HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Pad: {pad}\r\n\r\n",
        fd.port
    );
    let mut conn = open(fd.port).await;
    for piece in request.as_bytes().chunks(2500) {
        conn.get_mut().write_all(piece).await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer(&mut conn).await, (200, true));
    assert_eq!(
        upstream.last().header("x-pad").as_deref(),
        Some(pad.as_str())
    );
    assert_eq!(get(&mut conn, fd.port, "/public/next").await, (200, true));
    assert!(
        upstream.last().uri.ends_with("/next"),
        "{}",
        upstream.last().uri
    );
}
