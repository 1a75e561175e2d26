use std::io;
use std::process::ExitCode;

use sluice::redact::RedactingWriter;
use tracing_subscriber::EnvFilter;

// Records are many small allocations (values, strings) made and freed at high
// rates; mimalloc measured clearly faster than glibc malloc on that pattern.
// It also replaces malloc for the C libraries (the `override` feature):
// librdkafka allocates each message and its headers on the producing thread
// and frees them on the delivery-report thread, which glibc serves through
// locked arenas and consolidation (7% of a snapshot's CPU in a profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::redact::install_panic_hook();
    let args: Vec<_> = std::env::args_os().collect();
    let default_filter = sluice::cli::default_log_filter(&args);
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(|| RedactingWriter(io::stderr()))
        .init();
    let code = sluice::cli::run(args, &mut io::stdin().lock(), &mut io::stdout().lock(), &mut io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}
