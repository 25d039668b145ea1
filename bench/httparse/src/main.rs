//! Nanoseconds per parse of one request by the released httparse and by the patched copy, for a
//! plain browser request, the same among 3.4 KB of other cookies, and one with a 2 KB path; both
//! parsers must return the same header length. Prints a line per request and the ratio.

use std::hint::black_box;
use std::time::Instant;

const PARSES: u32 = 200_000;
const ROUNDS: usize = 7;

fn request(cookie_bytes: usize, path_bytes: usize) -> Vec<u8> {
    let mut cookies = String::new();
    for i in 0.. {
        let pair = format!("pref_{i:02}={}; ", "a".repeat(80));
        if cookies.len() + pair.len() > cookie_bytes {
            break;
        }
        cookies.push_str(&pair);
    }
    format!(
        "GET /{path} HTTP/1.1\r\nHost: wiki.example.com\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
         Accept-Language: en-US,en;q=0.9\r\nCookie: {cookies}frontdoor_session=0123456789abcdef\r\n\r\n",
        path = "p".repeat(path_bytes),
    )
    .into_bytes()
}

macro_rules! ns_per_parse {
    ($krate:ident, $req:expr) => {{
        let started = Instant::now();
        for _ in 0..PARSES {
            let mut headers = [$krate::EMPTY_HEADER; 32];
            let mut parsed = $krate::Request::new(&mut headers);
            black_box(parsed.parse(black_box($req)).expect("a valid request"));
        }
        started.elapsed().as_nanos() as f64 / f64::from(PARSES)
    }};
}

/// The header's length as `$krate` parses `$req`, `None` unless complete.
macro_rules! header_len {
    ($krate:ident, $req:expr) => {{
        let mut headers = [$krate::EMPTY_HEADER; 32];
        match $krate::Request::new(&mut headers).parse($req) {
            Ok($krate::Status::Complete(len)) => Some(len),
            _ => None,
        }
    }};
}

fn main() {
    let requests = [
        ("browser request", request(0, 10)),
        ("with 3.4 KB of other cookies", request(3400, 10)),
        ("with a 2 KB path", request(0, 2000)),
    ];
    for (name, req) in &requests {
        assert_eq!(
            header_len!(released, req),
            header_len!(patched, req),
            "{name}"
        );
        // Best of alternating rounds: the lowest time is the one least disturbed by the machine.
        let (mut released_ns, mut patched_ns) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            released_ns = released_ns.min(ns_per_parse!(released, req));
            patched_ns = patched_ns.min(ns_per_parse!(patched, req));
        }
        println!(
            "{name:30} {:5} bytes: released {released_ns:7.1} ns, patched {patched_ns:7.1} ns, released / patched {:.2}",
            req.len(),
            released_ns / patched_ns
        );
    }
}
