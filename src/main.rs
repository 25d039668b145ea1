//! The `frontdoor` binary.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: frontdoor::allocator::MiMalloc = frontdoor::allocator::MiMalloc;

fn main() {
    // Before anything is written or any thread exists: files 0600, folders 0700.
    frontdoor::private_fs::restrict_umask();
    frontdoor::logging::init();
    let cli = frontdoor::cli::Cli::parse();
    if let Err(e) = frontdoor::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
