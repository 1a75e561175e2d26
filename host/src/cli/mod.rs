//! The `sluice` command line: argument parsing and dispatch. Each command
//! takes its input and output streams so tests can run it in-process.
mod check;
mod connect;
mod plugin_test;
mod positions;
mod progress;
mod run;
mod scaffold;
mod status;
mod tail;
mod verify;
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
    /// How log lines are written to stderr: `text`, or `json` (one object a
    /// line, with the pipeline, plugin and position as fields).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// Run the pipelines of a file until Ctrl-C or SIGTERM, serving metrics
    /// and status over HTTP.
    Run {
        config: PathBuf,
        /// Where to serve /metrics, /health, /ready, /status and the status
        /// page, instead of the file's `http`: HOST:PORT, or `off`.
        #[arg(long, env = "SLUICE_HTTP", value_name = "ADDR")]
        http: Option<crate::telemetry::HttpEndpoint>,
    },
    /// Show what a running `sluice run` reports: each pipeline's state,
    /// rate, lag, dead letters, position and plugin versions.
    Status(StatusArgs),
    /// Print messages of Kafka topics from the beginning, as JSON lines.
    Tail(TailArgs),
    /// Show, reset or set the source positions pipelines have stored.
    #[command(subcommand)]
    Positions(PositionsCommand),
    /// Compare tables between two MySQL servers, by checksums each server
    /// computes; exit 1 naming every row that differs.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A pipeline file: ask the `sluice run` serving at its `http` address.
    pub config: Option<PathBuf>,
    /// The address `sluice run` serves at (default 127.0.0.1:9464).
    #[arg(long, conflicts_with = "config")]
    pub url: Option<String>,
    /// Print /status's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A pipeline file: with --pipeline, compare that pipeline's MySQL source
    /// with the MySQL server the file's pipeline reading its topics writes to.
    pub file: Option<PathBuf>,
    /// The pipeline (of FILE) whose source holds the rows that are right.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// The server whose rows are right: mysql://user:password@host:port/
    #[arg(long, conflicts_with = "pipeline")]
    pub source: Option<String>,
    /// The server compared with it (with --pipeline: instead of the one the
    /// file's pipelines write to).
    #[arg(long)]
    pub target: Option<String>,
    /// Tables to compare, database.table, comma-separated or repeated (with
    /// --pipeline: the tables it reads).
    #[arg(long, value_delimiter = ',', conflicts_with = "pipeline")]
    pub tables: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Make the target's differing rows what the source holds, then compare
    /// again: with --pipeline, by sending the source's rows through the
    /// pipeline again (as `read` records, a delete where the source has no
    /// row) for its sink to apply; else by writing the target directly.
    #[arg(long)]
    pub repair: bool,
    /// Rows per checksum chunk.
    #[arg(long, default_value_t = 1000)]
    pub chunk_rows: usize,
    /// How long a differing row is given to settle before it is looked at again.
    #[arg(long, default_value_t = 500)]
    pub recheck_ms: u64,
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
    /// Stop after this many seconds, whether or not `--max` messages came.
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
}

/// A plugin config entry; the value of a credential-like key is masked in
/// all output from here on, as a pipeline file's is.
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if crate::redact::is_secret_name(&key) {
        crate::redact::register(&value);
    }
    Ok((key, value))
}

/// The log filter: `SLUICE_LOG` when set, else `info`. An offline `check`
/// creates Kafka clients only to have librdkafka check their properties:
/// what they then log of brokers they cannot reach says nothing. The wasm
/// compiler's crates log every function they compile at debug level (tens
/// of thousands of lines per plugin): they stay at `warn` unless named.
pub fn log_filter(args: &[OsString], from_env: Option<&str>) -> String {
    const COMPILER: [&str; 4] = ["cranelift", "wasmtime", "regalloc2", "wasmparser"];
    let filter = match (from_env, args.get(1).and_then(|a| a.to_str())) {
        (Some(set), _) if !set.trim().is_empty() => set.trim().to_owned(),
        (_, Some("check")) => "info,librdkafka=off,rdkafka=off".to_owned(),
        _ => "info".to_owned(),
    };
    let quiet: Vec<String> = COMPILER
        .iter()
        .filter(|name| !filter.contains(*name))
        .map(|name| format!(",{name}=warn"))
        .collect();
    filter + &quiet.concat()
}

/// Logs to stderr (above any progress bars), through the redaction, at
/// the level [`log_filter`] gives, as text or, with `--log-format json`,
/// as one JSON object a line.
pub fn install_log(args: &[OsString]) {
    let filter = tracing_subscriber::EnvFilter::new(log_filter(args, std::env::var("SLUICE_LOG").ok().as_deref()));
    let json = Cli::try_parse_from(args).is_ok_and(|cli| cli.log_format == LogFormat::Json);
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, not for a file or a journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| RedactingWriter(progress::LogWriter));
    let _ = if json {
        log.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        log.try_init()
    };
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
    // JSON logs carry the errors too: every line stays a JSON object.
    let json = cli.log_format == LogFormat::Json;
    let result = match cli.command {
        Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(&args, input, out, err),
        Command::Plugin(PluginCommand::Watch(args)) => watch::run(&args, input, out),
        Command::Plugin(PluginCommand::New { name, path }) => scaffold::run(&name, path, out),
        Command::Check { config, connect } => check::run(&config, connect, out),
        Command::Run { config, http } => run::run(&config, http.as_ref(), !json, err),
        Command::Status(args) => status::run(&args, out),
        Command::Tail(args) => tail::run(&args, out),
        Command::Positions(command) => positions::run(&command, out),
        Command::Verify(args) => verify::run(&args, out),
    };
    match result {
        Ok(code) => code,
        Err(e) if json => {
            tracing::error!("{}", explain(&e));
            1
        }
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
    fn the_log_filter_keeps_the_compiler_quiet_unless_named() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            log_filter(&args(&["sluice", "run"]), Some("debug")),
            "debug,cranelift=warn,wasmtime=warn,regalloc2=warn,wasmparser=warn"
        );
        assert_eq!(
            log_filter(&args(&["sluice", "run"]), Some("debug,wasmtime=trace")),
            "debug,wasmtime=trace,cranelift=warn,regalloc2=warn,wasmparser=warn"
        );
        assert!(log_filter(&args(&["sluice", "check"]), None).starts_with("info,librdkafka=off"));
    }

    #[test]
    fn an_error_names_each_cause_once() {
        let client = crate::kafka::BrokerError::Client {
            role: "producer",
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
