use std::io;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(io::stderr)
        .init();
    let code = sluice::cli::run(std::env::args_os(), &mut io::stdin().lock(), &mut io::stdout().lock(), &mut io::stderr());
    ExitCode::from(code.clamp(0, 255) as u8)
}
