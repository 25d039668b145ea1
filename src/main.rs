//! The `frontdoor` binary.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Before anything is written or any thread exists: files 0600, folders 0700.
    frontdoor::private_fs::restrict_umask();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Every line, Pingora's included, goes through the redaction of credentials.
        .with_writer(|| frontdoor::redact::Redacting(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = frontdoor::cli::Cli::parse();
    if let Err(e) = frontdoor::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
