//! `sluice-bench`: benchmarks that print Sluice's figure beside the raw
//! limit measured in the same run, on a private MariaDB + Tansu stack.
mod bidi;
mod cdc;
mod latency;
mod plugin;
mod python;
mod rows;
mod sink;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The allocator of the `sluice` binary, so that what is measured is what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "sluice-bench",
    about = "Measure Sluice's throughput beside the raw limits of the same machine"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Rows/s through the plugin host (pass-through and clean) beside native Rust, and reload latency.
    Plugin(plugin::PluginBenchArgs),
    /// MySQL binlog -> pass-through plugin -> Kafka, beside bare binlog decode and bare produce rates.
    Cdc(cdc::CdcBenchArgs),
    /// Kafka -> pass-through plugin -> MySQL, beside bare consume and bare multi-row upsert rates.
    Sink(sink::SinkBenchArgs),
    /// Two MariaDB sites in sync: each direction loaded beside alone, site-to-site latency, verify beside CHECKSUM TABLE.
    Bidi(bidi::BidiBenchArgs),
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    sluice::cli::install_log(&args);
    let cli = Cli::parse_from(args);
    let out = &mut std::io::stdout().lock();
    let result = match &cli.bench {
        Bench::Plugin(args) => plugin::run(args, out),
        Bench::Cdc(args) => cdc::run(args, out),
        Bench::Sink(args) => sink::run(args, out),
        Bench::Bidi(args) => bidi::run(args, out),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The median of one figure over a benchmark's trials (at least one).
fn median<T>(trials: &[T], figure: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = trials.iter().map(figure).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
