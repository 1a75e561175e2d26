//! Kafka → MySQL: consumer-group batches → plugin chain → one MySQL
//! transaction holding the rows and the offsets they came from; dead letters
//! are acknowledged before that commit. The broker's group offsets are
//! committed afterwards, as a hint for where reading resumes.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{BatchSource, PipelineError, on_own_thread, read_ahead};
use crate::kafka::Offsets;
use crate::origin::EchoFilter;
use crate::pipeline::PipelineConfig;
use crate::plugin::PluginHost;
use crate::record::Record;
use crate::rejected::Rejected;
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::sinks::mysql::{Applied, ConflictRule, MysqlSink, MysqlSinkConfig, Plan, RowPlanner};
use crate::sources::SourceError;
use crate::sources::kafka::{KafkaBatch, KafkaSource, KafkaSourceConfig, OffsetCommitter};
use crate::telemetry::{PipelineTelemetry, State, Ticket};
use crate::transforms::{ChainOutput, PluginChain};

/// Messages per batch, and how long a batch waits to fill.
const BATCH_RECORDS: usize = 5000;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Batches read and decoded ahead while the sink writes.
const READ_AHEAD: usize = 2;
/// With nothing to write for this long, the sink's connection is pinged: a
/// server that went away is noticed (and the pipeline shows it) before
/// data comes.
const IDLE_PING: Duration = Duration::from_secs(5);

pub async fn run(
    config: &PipelineConfig,
    source_config: &KafkaSourceConfig,
    sink_config: &MysqlSinkConfig,
    host: Arc<PluginHost>,
    stop: watch::Receiver<bool>,
    ran: &AtomicBool,
    telemetry: &PipelineTelemetry,
) -> Result<(), PipelineError> {
    let mut chain = PluginChain::start(host, config.plugins.clone(), telemetry).await?;
    let dead_letters = DeadLetterQueue::new(&config.dead_letter, &source_config.brokers, &source_config.properties, &config.name)?
        .with_on_error(config.on_error)
        .observed(telemetry);
    let mut sink = MysqlSink::connect(sink_config, &config.name, config.site.as_deref())
        .await?
        .observed(telemetry);
    if config.site.is_some() && sink_config.conflict == ConflictRule::SourceWins {
        tracing::warn!(pipeline = %config.name, "conflict = \"source-wins\": when two sites change one key at about the same time, \
            each keeps the other's change and they differ; set conflict = \"last-writer-wins\" and version_column");
    }
    let mut planner = RowPlanner::connect(sink_config, &config.name).await?;
    let source = KafkaSource::connect(source_config, &sink.applied_offsets().await?, telemetry)?;
    let committer = source.committer();
    let echo = EchoFilter::apply(config.site.as_deref());
    // The plugins (on their thread) and the planner work on the next batch
    // while the sink writes this one.
    let mut batches = on_own_thread(
        read_ahead(source, READ_AHEAD, telemetry.clone()),
        READ_AHEAD,
        move |(mut batch, ticket): (KafkaBatch, Ticket)| {
            // Before any plugin: this site's own changes, come back, are applied here already.
            let echoes = echo.as_ref().map_or(0, |echo| echo.retain(&mut batch.records));
            Transformed {
                out: chain.run(batch.records),
                echoes,
                undecodable: batch.undecodable,
                next_offsets: batch.next_offsets,
                ticket,
            }
        },
    );
    let (to_writer, written) = mpsc::channel(1);
    let writer = tokio::spawn(write_batches(sink, dead_letters, committer, written, telemetry.clone()));
    ran.store(true, Ordering::Relaxed);
    telemetry.set_state(State::Running, None);
    tracing::info!(pipeline = %config.name, "running");
    // The reader hands over a batch, empty or not, at least every BATCH_WAIT:
    // a writer that failed is noticed then, not only when data comes.
    let mut echoes = 0u64;
    while !*stop.borrow() && !writer.is_finished() {
        let batch = batches.recv().await.expect("the reader sends its error before it ends")?;
        if batch.next_offsets.is_empty() {
            continue;
        }
        echoes += batch.echoes as u64;
        telemetry.filtered(batch.echoes, batch.out.dropped);
        let mut dead = batch.out.rejected;
        dead.extend(
            batch
                .undecodable
                .into_iter()
                .map(|(record, reason)| Rejected::undecodable(record, "source:kafka", reason)),
        );
        let plan = planner.plan(batch.out.records).await?;
        telemetry.superseded(plan.superseded);
        let write = Write {
            plan,
            dead,
            next_offsets: batch.next_offsets,
            ticket: batch.ticket,
        };
        if to_writer.send(write).await.is_err() {
            break; // the writer failed; its error is returned below
        }
    }
    // The writer finishes what it was handed before it ends.
    drop(to_writer);
    let conflicts = writer.await.expect("the MySQL writer does not panic")?;
    tracing::info!(pipeline = %config.name, echoes_dropped = echoes, conflicts_lost = conflicts, "stopped");
    Ok(())
}

/// A consumed batch after the plugin chain.
struct Transformed {
    out: ChainOutput,
    /// The site's own changes dropped before the plugins.
    echoes: usize,
    undecodable: Vec<(Record, String)>,
    next_offsets: Offsets,
    ticket: Ticket,
}

/// One batch after the plugins, planned for the sink.
struct Write {
    plan: Plan,
    dead: Vec<Rejected>,
    next_offsets: Offsets,
    ticket: Ticket,
}

/// Applies batches in the order they come; after each commit tells the group
/// how far this member got. Returns how many changes lost a conflict.
async fn write_batches(
    mut sink: MysqlSink,
    dead_letters: DeadLetterQueue,
    committer: OffsetCommitter,
    mut batches: mpsc::Receiver<Write>,
    telemetry: PipelineTelemetry,
) -> Result<u64, PipelineError> {
    let pipeline = telemetry.status().name.clone();
    let mut lost = 0u64;
    // Every partition's next offset so far, for the status.
    let mut stored = Offsets::new();
    loop {
        let write = match tokio::time::timeout(IDLE_PING, batches.recv()).await {
            Ok(Some(write)) => write,
            Ok(None) => break,
            Err(_idle) => {
                sink.ping().await?;
                continue;
            }
        };
        let Applied {
            unwritable,
            conflicts,
            written,
        } = sink.apply(&write.plan, &write.next_offsets, &write.dead, &dead_letters).await?;
        telemetry.acknowledged(write.ticket, written);
        stored.extend(write.next_offsets.iter().map(|(k, v)| (k.clone(), *v)));
        let offsets: Vec<String> = stored.iter().map(|((topic, p), next)| format!("{topic}/{p}:{next}")).collect();
        telemetry.stored(format!("offsets {}", offsets.join(" ")));
        if unwritable > 0 {
            tracing::warn!(pipeline = %pipeline, unwritable, "records the MySQL sink could not write went to the dead-letter queue");
        }
        lost += conflicts as u64;
        committer.commit(&write.next_offsets)?;
        tracing::debug!(pipeline = %pipeline, offsets = ?write.next_offsets, dead_letters = write.dead.len(), unwritable, conflicts,
            "batch committed");
    }
    Ok(lost)
}

impl BatchSource for KafkaSource {
    type Batch = KafkaBatch;

    async fn next_batch(&mut self) -> Result<KafkaBatch, SourceError> {
        KafkaSource::next_batch(self, BATCH_RECORDS, BATCH_WAIT).await
    }

    fn contents(batch: &KafkaBatch) -> (&[Record], &[(Record, String)]) {
        (&batch.records, &batch.undecodable)
    }
}
