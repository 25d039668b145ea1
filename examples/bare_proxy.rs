//! A bare Pingora proxy for the benchmark (`bench/run.sh`): only `upstream_peer`, one fixed
//! upstream, no routing, no header work, no authentication. It shows what Pingora itself costs
//! per proxied request on this machine, so that frontdoor's own cost can be read off as the
//! difference.
//!
//! `cargo run --release --example bare_proxy -- LISTEN UPSTREAM [THREADS]`
//! e.g. `bare_proxy 127.0.0.1:8100 127.0.0.1:8081 2`. THREADS defaults to the number of CPUs,
//! as frontdoor's `threads` does. The pid file and upgrade socket go to the system's temp
//! directory, named after the listen port, so two instances do not collide.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

/// The same allocator as frontdoor's binary, so the comparison is of the proxy path alone.
#[global_allocator]
static ALLOCATOR: frontdoor::allocator::MiMalloc = frontdoor::allocator::MiMalloc;

struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!(
            "usage: bare_proxy LISTEN UPSTREAM [THREADS]   e.g. 127.0.0.1:8100 127.0.0.1:8081 2"
        );
        std::process::exit(2);
    }
    let listen = &args[0];
    let upstream = args[1].clone();
    let threads = match args.get(2) {
        Some(t) => t.parse().unwrap_or_else(|_| {
            eprintln!("THREADS must be a number, not {t}");
            std::process::exit(2)
        }),
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let port = listen.rsplit(':').next().unwrap_or("0");
    let tmp = std::env::temp_dir();
    let conf = ServerConf {
        threads,
        pid_file: tmp
            .join(format!("bare_proxy-{port}.pid"))
            .to_string_lossy()
            .into_owned(),
        upgrade_sock: tmp
            .join(format!("bare_proxy-{port}-upgrade.sock"))
            .to_string_lossy()
            .into_owned(),
        // BARE_WORK_STEALING=0 runs one single-threaded runtime per thread, as frontdoor's
        // `work_stealing: false` does, to compare like with like.
        work_stealing: std::env::var("BARE_WORK_STEALING").map_or(true, |v| v != "0"),
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    proxy.add_tcp(listen);
    server.add_service(proxy);
    eprintln!("bare_proxy: {listen} -> {}", args[1]);
    server.run_forever()
}
