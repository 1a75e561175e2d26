//! The `sluice` command line: argument parsing and dispatch. Each command
//! takes its input and output streams so tests can run it in-process.
mod check;
mod connect;
mod plugin_test;
mod positions;
mod run;
mod scaffold;
mod tail;
mod watch;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plugin::PluginLimits;
use crate::redact::RedactingWriter;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Moves records between MySQL and Kafka through WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Validate a pipeline file and the plugins it uses, without reaching a
    /// server; exit non-zero naming the problem.
    Check {
        config: PathBuf,
        /// Also reach every server the file names: one line each.
        #[arg(long)]
        connect: bool,
    },
    /// Run the pipelines of a file until Ctrl-C.
    Run { config: PathBuf },
    /// Print messages of Kafka topics from the beginning, as JSON lines.
    Tail(TailArgs),
    /// Show, reset or set the source positions pipelines have stored.
    #[command(subcommand)]
    Positions(PositionsCommand),
    /// Measure throughput beside the raw limits of the same machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Run JSON-line records from stdin through a plugin; outputs go to stdout,
    /// per-record errors to stderr; exit 1 when any record failed.
    Test(PluginTestArgs),
    /// Stream JSON-line records from stdin through a plugin of DIR, reloading
    /// it whenever its .wasm changes (the developer's hot-reload loop).
    Watch(PluginWatchArgs),
    /// Scaffold a new plugin crate.
    New {
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PositionsCommand {
    /// Print each pipeline's stored position.
    Show { config: PathBuf },
    /// Forget a pipeline's position: its next run starts as its `snapshot` setting says.
    Reset { config: PathBuf, pipeline: String },
    /// Make a binlog pipeline's next run start at a position.
    Set {
        config: PathBuf,
        pipeline: String,
        /// `FILE:POS`, as SHOW BINARY LOGS names files and offsets.
        #[arg(long)]
        binlog: String,
        /// The GTID state at that position, for pipelines with `gtid = true`.
        #[arg(long)]
        gtid: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PluginTestArgs {
    pub plugin: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
    /// Records per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
}

#[derive(Debug, Args)]
pub struct PluginWatchArgs {
    /// Plugin directory to watch.
    pub dir: PathBuf,
    /// Plugin name (file stem of NAME.wasm).
    pub name: String,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plugin config entry, repeatable: --config mask=phone,ssn
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Memory cap in MiB.
    #[arg(long, default_value_t = PluginLimits::default().memory_mb)]
    pub memory_mb: u32,
    /// Time budget per batch in milliseconds.
    #[arg(long, default_value_t = PluginLimits::default().batch_timeout_ms)]
    pub timeout_ms: u64,
}

impl RunArgs {
    fn limits(&self) -> PluginLimits {
        PluginLimits {
            memory_mb: self.memory_mb,
            batch_timeout_ms: self.timeout_ms,
            ..PluginLimits::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// `host:port[,host:port…]`
    #[arg(long)]
    pub brokers: String,
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Stop after this many messages.
    #[arg(long, default_value_t = usize::MAX)]
    pub max: usize,
    /// Stop after this many seconds (joining a consumer group may take several).
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Rows/s through the plugin host (pass-through and clean) beside native Rust, and reload latency.
    Plugin(crate::bench::PluginBenchArgs),
    /// MySQL binlog -> pass-through plugin -> Kafka, beside bare binlog decode and bare produce rates.
    Cdc(crate::bench::cdc::CdcBenchArgs),
    /// Kafka -> pass-through plugin -> MySQL, beside bare consume and bare multi-row upsert rates.
    Sink(crate::bench::sink::SinkBenchArgs),
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// The log filter when `SLUICE_LOG` sets none. An offline `check`
/// creates Kafka clients only to have librdkafka check their properties:
/// what they then log of brokers they cannot reach says nothing.
pub fn default_log_filter(args: &[OsString]) -> &'static str {
    match args.get(1).and_then(|a| a.to_str()) {
        Some("check") => "info,librdkafka=off,rdkafka=off",
        _ => "info",
    }
}

/// Runs the command line; returns the process exit code. What it writes
/// goes through the redaction, as the log does.
pub fn run(args: impl IntoIterator<Item = OsString>, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let (mut out, mut err) = (RedactingWriter(out), RedactingWriter(err));
    run_redacted(args, input, &mut out, &mut err)
}

fn run_redacted(args: impl IntoIterator<Item = OsString>, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = write!(err, "{}", e.render());
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(&args, input, out, err),
        Command::Plugin(PluginCommand::Watch(args)) => watch::run(&args, input, out),
        Command::Plugin(PluginCommand::New { name, path }) => scaffold::run(&name, path, out),
        Command::Check { config, connect } => check::run(&config, connect, out),
        Command::Run { config } => run::run(&config, err),
        Command::Tail(args) => tail::run(&args, out),
        Command::Positions(command) => positions::run(&command, out),
        Command::Bench(BenchCommand::Plugin(args)) => crate::bench::plugin::run(&args, out),
        Command::Bench(BenchCommand::Cdc(args)) => crate::bench::cdc::run(&args, out),
        Command::Bench(BenchCommand::Sink(args)) => crate::bench::sink::run(&args, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {}", explain(&e));
            1
        }
    }
}

/// The error and its causes, each once: many of our errors already name
/// their cause in their own message, and anyhow's `{:#}` would repeat it.
fn explain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1).map(ToString::to_string) {
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_each_cause_once() {
        let client = crate::sinks::SinkError::Client {
            brokers: "k1:9092".into(),
            source: rdkafka::error::KafkaError::ClientCreation("bad".into()),
        };
        let error = anyhow::Error::from(client).context("pipeline `p`: sink");
        assert_eq!(
            explain(&error),
            "pipeline `p`: sink: cannot create the Kafka producer for k1:9092: Client creation error: bad (check brokers and the client properties)"
        );
        let error = anyhow::Error::from(std::io::Error::other("disk gone")).context("reading state");
        assert_eq!(explain(&error), "reading state: disk gone");
    }
}
