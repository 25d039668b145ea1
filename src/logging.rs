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
use std::sync::{Mutex, Once, OnceLock};
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
/// so they are written together: by a thread every [`FLUSH_EVERY`], when [`FLUSH_BYTES`] are
/// waiting, before any other line (so the order of lines stays the order of events), and at
/// exit ([`flush`]).
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The longest an access line waits.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Written at once past this much.
const FLUSH_BYTES: usize = 64 * 1024;

/// Appends one whole line (formatted and redacted by its maker, newline included) to the
/// lines waiting to be written.
pub fn write_line(line: &[u8]) {
    static FLUSHER: Once = Once::new();
    FLUSHER.call_once(|| {
        let started = std::thread::Builder::new()
            .name("frontdoor-log".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the log writer thread; lines are written when more come");
        }
    });
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    pending.extend_from_slice(line);
    if pending.len() >= FLUSH_BYTES {
        write_out(&mut pending);
    }
}

/// Writes the waiting lines out.
pub fn flush() {
    write_out(&mut PENDING.lock().unwrap_or_else(|p| p.into_inner()));
}

fn write_out(pending: &mut Vec<u8>) {
    if !pending.is_empty() {
        let _ = std::io::stderr().lock().write_all(pending);
        pending.clear();
        // A burst's buffer is not kept for ever.
        pending.shrink_to(FLUSH_BYTES * 2);
    }
}

/// stderr for the subscriber's lines, with the waiting access lines written first.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        write_out(&mut pending);
        std::io::stderr().lock().write_all(buf)?;
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
