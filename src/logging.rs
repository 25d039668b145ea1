//! The process's log: `tracing` events written as text or JSON lines to stderr, every line
//! through the redaction of credentials ([`crate::redact`]), with the filter and the format
//! swappable once the configuration is read (`log:`), and the filter again on reload.
//!
//! Two targets stand apart from the level: `frontdoor::access` (one line per request, on
//! unless `log.access: false`) and `frontdoor::audit` (security events, always on unless the
//! level names the target itself).

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, Once, OnceLock};
use std::time::Duration;

use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogConfig, LogFormat};

/// The target of the access log's lines.
pub const ACCESS: &str = "frontdoor::access";
/// The target of audit events.
pub const AUDIT: &str = "frontdoor::audit";

/// A client address as a log field: `-` when unknown (a CLI command, a socket without one).
#[derive(Clone, Copy)]
pub struct Client(pub Option<IpAddr>);

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

struct Handles {
    filter: reload::Handle<EnvFilter, Registry>,
    output: reload::Handle<Output, Filtered>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Whether lines are JSON (`log.format`), for the lines written without the subscriber's
/// formatter (the access log, `gateway::access_log`).
static JSON: AtomicBool = AtomicBool::new(false);

/// Whether the filter lets access lines through, worked out when the filter is set: asking
/// the subscriber on every request took a lock and a map lookup in `EnvFilter` (about 150 ns
/// of a proxied request in `perf`).
static ACCESS_ON: AtomicBool = AtomicBool::new(false);

/// Whether access lines are written (`log.access`, or a `RUST_LOG` directive naming the
/// target).
pub fn access_on() -> bool {
    ACCESS_ON.load(Ordering::Relaxed)
}

/// Reads [`ACCESS_ON`] off the filter now in place.
fn read_access_on() {
    ACCESS_ON.store(
        tracing::enabled!(target: ACCESS, tracing::Level::INFO),
        Ordering::Relaxed,
    );
}

/// The format lines are written in.
pub fn format() -> LogFormat {
    if JSON.load(Ordering::Relaxed) {
        LogFormat::Json
    } else {
        LogFormat::Text
    }
}

/// Access lines not yet written. A `write` per request costs a system call (about 2 µs of
/// kernel time against a proxied request's ~30 µs, `INSTR_MODE=cpu bench/instructions.sh`),
/// so they are written together, by a thread of their own: every [`FLUSH_EVERY`], as soon as
/// [`FLUSH_BYTES`] are waiting, before any other line (so the order of lines stays the order
/// of events), and at exit ([`flush`]). A request's thread only appends: copying 64 KB into
/// the kernel (about 2 % of a proxied request's CPU in `perf`) and waiting behind another
/// thread's write stay off the request path.
static LINES: Lines = Lines::new();

/// The longest an access line waits.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Written at once past this much.
const FLUSH_BYTES: usize = 64 * 1024;
/// Past this much waiting (the writer is behind, or there is none), the thread that appends
/// writes too, so that memory stays bounded and a slow disk slows requests rather than fills
/// memory.
const BEHIND_BYTES: usize = 16 * FLUSH_BYTES;

/// Lines waiting, and the writes they go out in.
struct Lines {
    pending: Mutex<Vec<u8>>,
    /// Held while lines go out: lines taken from `pending` are written before any taken later
    /// and before a line written past them (the subscriber's own).
    out: Mutex<()>,
    /// Wakes the writer when [`FLUSH_BYTES`] are waiting.
    full: Condvar,
    /// The writer has been woken and has not yet taken the lines: one wake per batch.
    woken: AtomicBool,
}

impl Lines {
    const fn new() -> Lines {
        Lines {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(()),
            full: Condvar::new(),
            woken: AtomicBool::new(false),
        }
    }

    /// Appends a line. True when the caller is to write the lines out itself: [`BEHIND_BYTES`]
    /// are waiting, or [`FLUSH_BYTES`] and there is no writer (`alone`).
    fn push(&self, line: &[u8], alone: bool) -> bool {
        let waiting = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line);
            pending.len()
        };
        if waiting >= BEHIND_BYTES || (alone && waiting >= FLUSH_BYTES) {
            return true;
        }
        if waiting >= FLUSH_BYTES && !self.woken.swap(true, Ordering::AcqRel) {
            self.full.notify_one();
        }
        false
    }

    /// Waits until [`FLUSH_BYTES`] are waiting, or `most`.
    fn wait(&self, most: Duration) {
        let pending = lock(&self.pending);
        if pending.len() < FLUSH_BYTES {
            let _ = self.full.wait_timeout(pending, most);
        }
    }

    /// Writes the waiting lines, then `after`, to `sink`; `spare` (empty) takes the place of
    /// the waiting lines' buffer, and is left empty with that buffer's room. The error is
    /// `after`'s: the waiting lines' writer has nowhere to report one.
    fn write_out(
        &self,
        sink: &mut dyn Write,
        spare: &mut Vec<u8>,
        after: &[u8],
    ) -> std::io::Result<()> {
        let _out = lock(&self.out);
        {
            let mut pending = lock(&self.pending);
            std::mem::swap(&mut *pending, spare);
            self.woken.store(false, Ordering::Release);
        }
        if !spare.is_empty() {
            let _ = sink.write_all(spare);
        }
        spare.clear();
        // A burst's buffer is not kept for ever.
        spare.shrink_to(FLUSH_BYTES * 2);
        sink.write_all(after)
    }
}

/// A lock that a panic elsewhere does not make unusable: the lines stay valid bytes.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Appends one whole line (formatted and redacted by its maker, newline included) to the
/// lines waiting to be written.
pub fn write_line(line: &[u8]) {
    static WRITER: Once = Once::new();
    static ALONE: AtomicBool = AtomicBool::new(false);
    WRITER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("frontdoor-log".into())
            .spawn(|| {
                let mut spare = Vec::new();
                loop {
                    LINES.wait(FLUSH_EVERY);
                    let _ = LINES.write_out(&mut std::io::stderr().lock(), &mut spare, &[]);
                }
            });
        if let Err(e) = started {
            ALONE.store(true, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot start the log writer thread; lines are written when more come");
        }
    });
    if LINES.push(line, ALONE.load(Ordering::Relaxed)) {
        flush();
    }
}

/// Writes the waiting lines out.
pub fn flush() {
    let _ = LINES.write_out(&mut std::io::stderr().lock(), &mut Vec::new(), &[]);
}

/// stderr for the subscriber's lines, with the waiting access lines written first.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.write_out(&mut std::io::stderr().lock(), &mut Vec::new(), buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the process's subscriber: text at `info` (or `RUST_LOG`) until [`apply`] is given
/// the configuration. Pingora's `log` records come through `tracing` too.
pub fn init() {
    let defaults = LogConfig::default();
    let (filter, filter_handle) = reload::Layer::new(filter_for(&defaults));
    let (output, output_handle) = reload::Layer::new(output_for(LogFormat::Text));
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = HANDLES.set(Handles {
            filter: filter_handle,
            output: output_handle,
        });
        read_access_on();
    }
}

/// Applies the `log` section: the filter, and the format when `format` is true (at start; a
/// reload keeps the format the process started with).
pub fn apply(log: &LogConfig, format: bool) {
    let Some(handles) = HANDLES.get() else {
        return;
    };
    if format {
        match handles.output.reload(output_for(log.format)) {
            Ok(()) => JSON.store(log.format == LogFormat::Json, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "cannot change the log format"),
        }
    }
    if let Err(e) = handles.filter.reload(filter_for(log)) {
        tracing::warn!(error = %e, "cannot change the log level");
    }
    read_access_on();
}

/// The filter: `RUST_LOG` when set, else `log.level`, with the access and audit targets on
/// (or the access log off) unless the directives name them.
fn filter_for(log: &LogConfig) -> EnvFilter {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| log.level.0.clone());
    let access = if log.access { "info" } else { "off" };
    let mut directives = base.clone();
    for (target, level) in [(ACCESS, access), (AUDIT, "info")] {
        if !base.contains(target) {
            directives.push_str(&format!(",{target}={level}"));
        }
    }
    EnvFilter::builder()
        .with_regex(false)
        .parse_lossy(directives)
}

fn output_for(format: LogFormat) -> Output {
    // Every line, Pingora's included, goes through the redaction of credentials.
    let writer = || crate::redact::Redacting(Stderr);
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;

    #[test]
    fn lines_wait_for_a_batch_and_wake_the_writer_once() {
        let lines = Lines::new();
        let line = [b'x'; 1023]
            .iter()
            .copied()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        for _ in 0..FLUSH_BYTES / line.len() - 1 {
            assert!(!lines.push(&line, false));
        }
        assert!(
            !lines.woken.load(Ordering::Acquire),
            "woken before a batch waits"
        );
        assert!(!lines.push(&line, false));
        assert!(
            lines.woken.load(Ordering::Acquire),
            "a full batch wakes the writer"
        );
        let mut out = Vec::new();
        let mut spare = Vec::new();
        lines
            .write_out(&mut out, &mut spare, b"after\n")
            .expect("write");
        assert_eq!(out.len(), FLUSH_BYTES + b"after\n".len());
        assert!(out.ends_with(b"x\nafter\n"));
        assert!(spare.is_empty());
        assert!(lock(&lines.pending).is_empty());
        assert!(!lines.woken.load(Ordering::Acquire));
    }

    #[test]
    fn the_appending_thread_writes_when_the_writer_is_behind_or_missing() {
        let lines = Lines::new();
        let line = vec![b'y'; FLUSH_BYTES];
        assert!(
            lines.push(&line, true),
            "no writer: a batch is written by its maker"
        );
        lines
            .write_out(&mut std::io::sink(), &mut Vec::new(), &[])
            .expect("write");
        for _ in 0..BEHIND_BYTES / FLUSH_BYTES - 1 {
            assert!(!lines.push(&line, false));
        }
        assert!(lines.push(&line, false), "far behind: the maker writes");
    }

    /// A sink shared by the threads of a test.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_out_whole_and_in_the_order_they_were_made() {
        static LINES: Lines = Lines::new();
        static DONE: AtomicBool = AtomicBool::new(false);
        let sink = Shared::default();
        let writer = {
            let mut sink = sink.clone();
            std::thread::spawn(move || {
                let mut spare = Vec::new();
                while !DONE.load(Ordering::Acquire) {
                    LINES.wait(Duration::from_millis(1));
                    LINES.write_out(&mut sink, &mut spare, &[]).expect("write");
                }
            })
        };
        let makers: Vec<_> = (0..3)
            .map(|t| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for n in 0..20_000 {
                        let line = format!("access {t} {n} {}\n", "z".repeat(n % 300));
                        if LINES.push(line.as_bytes(), false) {
                            LINES
                                .write_out(&mut sink, &mut Vec::new(), &[])
                                .expect("write");
                        }
                        if n % 1000 == 0 {
                            // A line of the subscriber's, after every access line made before it.
                            let own = format!("event {t} {n}\n");
                            LINES
                                .write_out(&mut sink, &mut Vec::new(), own.as_bytes())
                                .expect("write");
                        }
                    }
                })
            })
            .collect();
        for m in makers {
            m.join().expect("maker");
        }
        DONE.store(true, Ordering::Release);
        writer.join().expect("writer");
        let mut rest = sink.clone();
        LINES
            .write_out(&mut rest, &mut Vec::new(), &[])
            .expect("write");
        let out = String::from_utf8(lock(&sink.0).clone()).expect("text");
        let mut next_access = [0usize; 3];
        let mut events = 0;
        for l in out.lines() {
            let mut f = l.split(' ');
            let (kind, t, n) = (f.next(), f.next(), f.next());
            let t: usize = t.and_then(|t| t.parse().ok()).expect("thread");
            let n: usize = n.and_then(|n| n.parse().ok()).expect("number");
            match kind {
                Some("access") => {
                    assert_eq!(n, next_access[t], "thread {t}'s lines out of order or lost");
                    assert_eq!(f.next().map_or(0, str::len), n % 300, "a line cut");
                    next_access[t] += 1;
                }
                Some("event") => {
                    assert_eq!(
                        next_access[t],
                        n + 1,
                        "an event before its thread's access line"
                    );
                    events += 1;
                }
                other => panic!("a line mangled: {other:?} in {l}"),
            }
        }
        assert_eq!(next_access, [20_000; 3]);
        assert_eq!(events, 60);
    }

    #[test]
    fn an_unknown_client_is_a_dash() {
        assert_eq!(Client(None).to_string(), "-");
        let ip = "192.0.2.7".parse().expect("ip");
        assert_eq!(Client(Some(ip)).to_string(), "192.0.2.7");
    }

    #[test]
    fn the_access_log_is_switched_by_its_own_directive() {
        // RUST_LOG is not read by the test runner's environment here unless set; the level
        // given wins then.
        if std::env::var("RUST_LOG").is_ok() {
            return;
        }
        let on = filter_for(&LogConfig {
            level: LogLevel("warn".into()),
            ..LogConfig::default()
        })
        .to_string();
        assert!(on.contains("frontdoor::access=info"), "{on}");
        assert!(on.contains("frontdoor::audit=info"), "{on}");
        let off = filter_for(&LogConfig {
            access: false,
            ..LogConfig::default()
        })
        .to_string();
        assert!(off.contains("frontdoor::access=off"), "{off}");
        let named = filter_for(&LogConfig {
            level: LogLevel("info,frontdoor::audit=off".into()),
            ..LogConfig::default()
        })
        .to_string();
        assert!(!named.contains("frontdoor::audit=info"), "{named}");
    }
}
