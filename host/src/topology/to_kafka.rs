//! MySQL → Kafka: source → plugin chain → Kafka, with rejected records to
//! the dead-letter queue, and the source position stored only after both
//! have acknowledged everything up to it (at-least-once).
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::acks::InOrderAcks;
use super::{BatchSource, PipelineError, on_own_thread, read_ahead};
use crate::origin::EchoFilter;
use crate::pipeline::PipelineConfig;
use crate::plugin::PluginHost;
use crate::positions::PositionStore;
use crate::record::Record;
use crate::rejected::Rejected;
use crate::sinks::SinkError;
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::sinks::kafka::{KafkaSink, KafkaSinkConfig};
use crate::sources::SourceConfig;
use crate::sources::{BinlogDistance, MysqlCapture, PollingSource, SourceBatch, SourceError, SourcePosition};
use crate::telemetry::{PipelineTelemetry, State, Ticket};
use crate::transforms::{ChainOutput, PluginChain};

/// Records per batch through the plugins and to the sink. A batch's records,
/// its plugin copy and its messages stay in a core's cache at this size:
/// against 1,000, the stream cost about 3% less CPU per row and the
/// snapshot ran about 5% faster (the 1M-row bench).
pub const BATCH_RECORDS: usize = 500;
/// How long a batch waits to fill before it goes out anyway.
const BATCH_WAIT: Duration = Duration::from_millis(50);
/// Batches handed to Kafka whose acknowledgements are still awaited: the
/// source reads on meanwhile instead of idling for a round trip per batch
/// (16,000 records in flight).
pub const MAX_IN_FLIGHT: usize = 32;
/// Batches each stage may work ahead of the next: the source reads and
/// decodes (a task), the plugins transform (a thread), and this loop encodes
/// and produces, so that no core idles while another works.
const READ_AHEAD: usize = 4;
/// While batches keep coming, a stored position is at most this old: saving
/// each batch's (two fsyncs) on the pipeline's loop held back a snapshot,
/// which has a position per chunk. A restart replays at most this much more.
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// The configured source; boxed, as it is made once per run.
enum Source {
    Capture(Box<MysqlCapture>),
    Polling(Box<PollingSource>),
}

impl Source {
    /// Connects the configured source; None for a source this sink does not take.
    async fn build(
        config: &SourceConfig,
        stored: Option<SourcePosition>,
        pipeline: &str,
        telemetry: &PipelineTelemetry,
    ) -> Result<Option<Self>, SourceError> {
        Ok(match config {
            SourceConfig::MysqlBinlog(c) => {
                let mut capture = MysqlCapture::connect(c, stored, pipeline).await?;
                capture.observe(telemetry);
                Some(Source::Capture(Box::new(capture)))
            }
            SourceConfig::MysqlPoll(c) => Some(Source::Polling(Box::new(PollingSource::connect(c, stored).await?))),
            SourceConfig::Kafka(_) => None,
        })
    }
}

pub async fn run(
    config: &PipelineConfig,
    sink_config: &KafkaSinkConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
    ran: &AtomicBool,
    telemetry: &PipelineTelemetry,
) -> Result<(), PipelineError> {
    let store = PositionStore::new(state_dir, &config.name);
    let mut chain = PluginChain::start(host, config.plugins.clone(), telemetry).await?;
    let site = config.site.as_deref();
    let mut sink = KafkaSink::new(sink_config, &config.name, site)?;
    sink.check_brokers(&sink_config.brokers).await?;
    let dead_letters = DeadLetterQueue::new(&config.dead_letter, &sink_config.brokers, &sink_config.properties, &config.name)?
        .with_on_error(config.on_error)
        .observed(telemetry);
    let Some(source) = Source::build(&config.source, store.load()?, &config.name, telemetry).await? else {
        unreachable!("check_pairing refuses a kafka source with a kafka sink")
    };
    let snapshot = matches!(&source, Source::Capture(capture) if capture.in_snapshot());
    let distance = match (&config.source, telemetry.records_metrics()) {
        (SourceConfig::MysqlBinlog(source), true) => Some(BinlogDistance::watch(source, telemetry.clone())),
        _ => None,
    };
    let mut positions = Positions {
        store,
        saved_at: Instant::now(),
        telemetry: telemetry.clone(),
        distance,
    };
    let forward = match &config.source {
        SourceConfig::MysqlBinlog(source) => source.forward_origins.as_slice(),
        _ => &[],
    };
    let echo = EchoFilter::capture(site, forward);
    let mut batches = on_own_thread(
        read_ahead(source, READ_AHEAD, telemetry.clone()),
        READ_AHEAD,
        move |(mut batch, ticket): (SourceBatch, Ticket)| {
            // Before any plugin: changes another site made, applied here, are
            // that site's to publish.
            let echoes = echo.as_ref().map_or(0, |echo| echo.retain(&mut batch.records));
            let mut out = if batch.records.is_empty() {
                ChainOutput::default()
            } else {
                chain.run(batch.records)
            };
            out.rejected.extend(
                batch
                    .undecodable
                    .into_iter()
                    .map(|(record, reason)| Rejected::undecodable(record, "source:mysql", reason)),
            );
            TransformedBatch {
                out,
                echoes,
                checkpoint: batch.checkpoint,
                finished: batch.finished,
                open: batch.open,
                ticket,
            }
        },
    );
    let mut echoes = 0u64;
    let mut delivery_errors = 0;
    ran.store(true, Ordering::Relaxed);
    telemetry.set_state(if snapshot { State::Snapshot } else { State::Running }, None);
    tracing::info!(pipeline = %config.name, "running");
    let mut in_flight: InOrderAcks<SourcePosition, SinkError> = InOrderAcks::new();
    // Whether the last batch handed over ended inside a transaction: a stop
    // then reads on to its end, so that the stored position covers every
    // record sent and a restart sends none of them again.
    let mut open = false;
    let result = async {
        while !*stop.borrow() || open {
            // Positions are stored in batch order, each once all before it are acked.
            while in_flight.oldest_answered() || in_flight.len() >= MAX_IN_FLIGHT {
                in_flight.settle_oldest().await?;
            }
            if in_flight.is_empty() || positions.saved_at.elapsed() >= SAVE_EVERY {
                positions.save(in_flight.take_acked())?;
            }
            let batch = batches.recv().await.expect("the reader sends its error before it ends")?;
            if batch.finished {
                tracing::info!(pipeline = %config.name, "source finished");
                break;
            }
            open = batch.open;
            let mut out = batch.out;
            echoes += batch.echoes as u64;
            telemetry.filtered(batch.echoes, out.dropped);
            tracing::debug!(pipeline = %config.name, records = out.records.len(), dead_letters = out.rejected.len(),
                echoes = batch.echoes, position = ?batch.checkpoint, "batch");
            let acks = if out.records.is_empty() && out.rejected.is_empty() {
                None
            } else {
                // Dead letters first: with `on_error = "stop"` the queue halts the
                // pipeline before any record of the batch is sent.
                out.rejected.extend(sink.prepare(&out.records));
                let dead = dead_letters.enqueue(&out.rejected).await?;
                let (records, refused) = sink.send(&out.records).await?;
                let refused = if refused.is_empty() {
                    None
                } else {
                    Some(dead_letters.enqueue(&refused).await?)
                };
                Some((records, dead, refused))
            };
            let (ticket, written, acknowledged) = (batch.ticket, out.records.len(), telemetry.clone());
            let waiting = tokio::spawn(async move {
                if let Some((records, dead, refused)) = acks {
                    records.wait().await?;
                    dead.wait().await?;
                    if let Some(refused) = refused {
                        refused.wait().await?;
                    }
                }
                acknowledged.acknowledged(ticket, written);
                Ok(())
            });
            in_flight.push(waiting, batch.checkpoint);
            let (depth, errors) = sink.queue();
            telemetry.kafka_queue(depth);
            telemetry.kafka_delivery_errors(errors - delivery_errors);
            delivery_errors = errors;
        }
        Ok::<_, PipelineError>(())
    }
    .await;
    // After a sink's failure no later position may be stored: the failed
    // batch would be skipped on restart. After a clean stop, or when the
    // source failed (a server restart), what was handed over still gets its
    // acks and its position, so a restart repeats as little as it can.
    if result.as_ref().is_err_and(|e| !matches!(e, PipelineError::Source(_))) {
        return result;
    }
    while !in_flight.is_empty() {
        in_flight.settle_oldest().await?;
    }
    positions.save(in_flight.take_acked())?;
    result?;
    tracing::info!(pipeline = %config.name, echoes_dropped = echoes, "stopped");
    Ok(())
}

impl BatchSource for Source {
    type Batch = SourceBatch;

    async fn next_batch(&mut self) -> Result<SourceBatch, SourceError> {
        match self {
            Source::Capture(source) => source.next_batch(BATCH_RECORDS, BATCH_WAIT).await,
            Source::Polling(source) => source.next_batch(BATCH_RECORDS, BATCH_WAIT).await,
        }
    }

    fn is_last(batch: &SourceBatch) -> bool {
        batch.finished
    }

    fn contents(batch: &SourceBatch) -> (&[Record], &[(Record, String)]) {
        (&batch.records, &batch.undecodable)
    }
}

/// A source's batch after the plugin chain, with the rows the source could
/// not decode among the rejected.
struct TransformedBatch {
    out: ChainOutput,
    /// Changes of other sites dropped before the plugins.
    echoes: usize,
    checkpoint: Option<SourcePosition>,
    finished: bool,
    open: bool,
    ticket: Ticket,
}

/// Where positions are stored, and when they last were.
struct Positions {
    store: PositionStore,
    saved_at: Instant,
    telemetry: PipelineTelemetry,
    distance: Option<BinlogDistance>,
}

impl Positions {
    /// Stores `acked`, the position every acknowledged batch allows, if any.
    fn save(&mut self, acked: Option<SourcePosition>) -> Result<(), crate::positions::PositionError> {
        if let Some(position) = acked {
            self.store.save(&position)?;
            self.telemetry.stored(position.to_string());
            if let (Some(distance), SourcePosition::Binlog(at)) = (&self.distance, &position) {
                distance.stored(at);
            }
        }
        self.saved_at = Instant::now();
        Ok(())
    }
}
