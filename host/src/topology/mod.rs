//! Runs a pipeline: a source, the plugin chain and a sink, joined so that
//! a source position or offset is stored only once everything before it is
//! safely written.
mod acks;
mod to_kafka;
pub use to_kafka::{BATCH_RECORDS, MAX_IN_FLIGHT};
mod supervise;
mod to_mysql;
pub use supervise::supervise;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::{mpsc, watch};

use crate::pipeline::PipelineConfig;
use crate::plugin::PluginHost;
use crate::record::Record;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::sources::SourceError;
use crate::telemetry::{PipelineTelemetry, Ticket};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Pairing(#[from] crate::pipeline::FileProblem),
    #[error("pipeline source: {0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("pipeline sink: {0}")]
    Sink(#[from] crate::sinks::SinkError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error(transparent)]
    Position(#[from] crate::positions::PositionError),
    #[error("pipeline sink: {0}")]
    MysqlSink(#[from] crate::sinks::mysql::MysqlSinkError),
}

impl PipelineError {
    /// Whether trying again later may succeed: a lost connection, a server
    /// or broker that is down or restarting. Settings, grants, plugins,
    /// positions the server no longer has, and records that `on_error =
    /// "stop"` halts on are not.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.is_transient(),
            PipelineError::Sink(e) => e.is_transient(),
            PipelineError::MysqlSink(e) => e.is_transient(),
            PipelineError::Pairing(_) | PipelineError::Plugin(_) | PipelineError::Position(_) => false,
        }
    }
}

/// Runs until `stop` turns true, the source finishes (snapshot-only), or the
/// first failure; [`supervise`] retries the transient ones.
pub async fn run_pipeline(
    config: &PipelineConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let telemetry = PipelineTelemetry::detached(&config.name);
    run_once(config, host, state_dir, stop, &AtomicBool::new(false), &telemetry).await
}

/// One run of the pipeline; `ran` turns true once it is connected and running.
async fn run_once(
    config: &PipelineConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
    ran: &AtomicBool,
    telemetry: &PipelineTelemetry,
) -> Result<(), PipelineError> {
    config.check_pairing()?;
    match (&config.source, &config.sink) {
        (SourceConfig::Kafka(source), SinkConfig::Mysql(sink)) => to_mysql::run(config, source, sink, host, stop, ran, telemetry).await,
        (_, SinkConfig::Kafka(sink)) => to_kafka::run(config, sink, host, state_dir, stop, ran, telemetry).await,
        (_, SinkConfig::Mysql(_)) => unreachable!("check_pairing refuses a mysql sink without a kafka source"),
    }
}

/// A source whose batches are read on their own task, so reading and
/// decoding run on another core while plugins and the sink work.
trait BatchSource: Send + 'static {
    type Batch: Send + 'static;
    fn next_batch(&mut self) -> impl Future<Output = Result<Self::Batch, SourceError>> + Send;
    /// Nothing comes after this batch.
    fn is_last(_batch: &Self::Batch) -> bool {
        false
    }
    /// The records of a batch, and those it could not decode.
    fn contents(batch: &Self::Batch) -> (&[Record], &[(Record, String)]);
}

/// Runs `work` on every batch of `input`, in order, on a thread of its own,
/// up to `depth` batches ahead of the receiver; ends when `input` ends or
/// the receiver is dropped. For the plugin chain, which is synchronous and
/// may take milliseconds a batch: on a runtime worker it would stall the
/// pipeline's other tasks, and `block_in_place` handed the worker to another
/// thread for every batch, which cost the 1M-row bench's snapshot about a
/// fifth of its CPU per row.
fn on_own_thread<I, O>(
    mut input: mpsc::Receiver<Result<I, SourceError>>,
    depth: usize,
    mut work: impl FnMut(I) -> O + Send + 'static,
) -> mpsc::Receiver<Result<O, SourceError>>
where
    I: Send + 'static,
    O: Send + 'static,
{
    let (tx, rx) = mpsc::channel(depth);
    std::thread::Builder::new()
        .name("sluice-plugins".into())
        .spawn(move || {
            while let Some(batch) = input.blocking_recv() {
                if tx.blocking_send(batch.map(&mut work)).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the plugin thread");
    rx
}

/// Reads up to `depth` batches ahead until the source fails or finishes, or
/// the receiver is dropped (the pipeline stops). Each batch comes with its
/// ticket, to be handed back once the sink has acknowledged it.
fn read_ahead<S: BatchSource>(
    mut source: S,
    depth: usize,
    telemetry: PipelineTelemetry,
) -> mpsc::Receiver<Result<(S::Batch, Ticket), SourceError>> {
    let (tx, rx) = mpsc::channel(depth);
    tokio::spawn(async move {
        loop {
            let batch = source.next_batch().await.map(|batch| {
                let (records, undecodable) = S::contents(&batch);
                let all = records.iter().chain(undecodable.iter().map(|(r, _)| r));
                let ticket = telemetry.read(records.len() + undecodable.len(), all.map(|r| r.ts_ms).min());
                (batch, ticket)
            });
            let last = batch.as_ref().map_or(true, |(batch, _)| S::is_last(batch));
            if tx.send(batch).await.is_err() || last {
                break;
            }
        }
    });
    rx
}
