//! Draining on `SIGTERM`: Pingora stops accepting and the process exits as soon as no proxied
//! request is in flight, or when `shutdown.grace_period` is over, whichever comes first.
//!
//! Pingora alone would always sleep the whole grace period and then drop what is still
//! running; counting requests lets an idle server stop at once and a busy one finish its work.

use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch, UnixShutdownSignalWatch};

/// Requests between `new_ctx` and the end of their logging phase, counted in shards: one
/// counter that every worker thread writes twice per request keeps its cache line moving
/// between cores. Each thread counts in its own shard; a request that ends on another thread
/// than it began on decrements the shard it incremented, so only the sum is meaningful.
static IN_FLIGHT: [Shard; SHARDS] = [const { Shard(AtomicIsize::new(0)) }; SHARDS];
const SHARDS: usize = 16;

/// One counter on a cache line of its own.
#[repr(align(128))]
struct Shard(AtomicIsize);

/// Hands each thread a shard, in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// How often the drain checks whether the last request has finished.
const POLL: Duration = Duration::from_millis(20);

/// One request in flight, for as long as this value lives.
#[derive(Debug)]
pub struct InFlight {
    shard: usize,
}

impl InFlight {
    /// Counts a request that has just started.
    pub fn start() -> InFlight {
        let shard = MY_SHARD.with(|s| *s);
        IN_FLIGHT[shard].0.fetch_add(1, Ordering::Relaxed);
        InFlight { shard }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT[self.shard].0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Proxied requests in flight now.
pub fn in_flight() -> usize {
    let sum: isize = IN_FLIGHT.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    usize::try_from(sum).unwrap_or(0)
}

/// Pingora's Unix signals (`SIGTERM` graceful, `SIGINT` fast, `SIGQUIT` upgrade), with
/// `SIGTERM` also starting the drain that ends the process.
pub struct DrainOnTerm {
    /// Longest wait for requests in flight.
    pub grace: Duration,
    /// Removed before exiting.
    pub pid_file: PathBuf,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnTerm {
    async fn recv(&self) -> ShutdownSignal {
        let signal = UnixShutdownSignalWatch.recv().await;
        if matches!(signal, ShutdownSignal::GracefulTerminate) {
            let (grace, pid_file) = (self.grace, self.pid_file.clone());
            // A plain thread: Pingora's runtimes are about to be shut down.
            std::thread::spawn(move || drain(grace, pid_file));
        }
        signal
    }
}

/// Waits until nothing is in flight or the grace period is over, then exits 0.
fn drain(grace: Duration, pid_file: PathBuf) {
    let deadline = Instant::now() + grace;
    tracing::info!(
        in_flight = in_flight(),
        grace_period = ?grace,
        "SIGTERM: no new connections; draining requests in flight"
    );
    loop {
        let n = in_flight();
        if n == 0 {
            tracing::info!("drained; exiting");
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                in_flight = n,
                "grace period over; exiting with requests unfinished"
            );
            break;
        }
        std::thread::sleep(POLL);
    }
    remove_pid_file(&pid_file);
    crate::logging::flush();
    std::process::exit(0);
}

/// Removes the pid file on the way out (a missing one is fine).
pub fn remove_pid_file(pid_file: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(pid_file)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %pid_file.display(), error = %e, "could not remove the pid file");
    }
}
