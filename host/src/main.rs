use std::io;
use std::process::ExitCode;

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
    sluice::cli::install_log(&args);
    let code = sluice::cli::run(args, &mut io::stdin().lock(), &mut io::stdout().lock(), &mut io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}
