//! Kafka → MySQL: consumer-group batches → plugin chain → one MySQL
//! transaction holding the rows and the offsets they came from; dead letters
//! are acknowledged before that commit. The broker's group offsets are
//! committed afterwards, as a hint for where reading resumes.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{BatchSource, PipelineError, read_ahead};
use crate::pipeline::PipelineConfig;
use crate::plugin::{FailureKind, PluginHost, RecordFailure};
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::sinks::mysql::{MysqlSink, MysqlSinkConfig};
use crate::sources::SourceError;
use crate::sources::kafka::{KafkaBatch, KafkaSource, KafkaSourceConfig};
use crate::transforms::{PluginChain, Rejected};

/// Messages per batch, and how long a batch waits to fill.
const BATCH_RECORDS: usize = 5000;
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Batches read and decoded ahead while the sink writes.
const READ_AHEAD: usize = 2;

pub async fn run(
    config: &PipelineConfig,
    source_config: &KafkaSourceConfig,
    sink_config: &MysqlSinkConfig,
    host: Arc<PluginHost>,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let mut chain = PluginChain::build(&host, &config.plugins)?;
    let dead_letters = DeadLetterQueue::new(&config.dead_letter, &source_config.brokers, &config.name)?;
    let mut sink = MysqlSink::connect(sink_config, &config.name).await?;
    let source = KafkaSource::connect(source_config, &sink.applied_offsets().await?)?;
    let committer = source.committer();
    let mut batches = read_ahead(source, READ_AHEAD);
    tracing::info!(pipeline = %config.name, "running");
    while !*stop.borrow() {
        let batch = batches.recv().await.expect("the reader sends its error before it ends")?;
        if batch.next_offsets.is_empty() {
            continue;
        }
        let out = tokio::task::block_in_place(|| chain.run(batch.records));
        let mut dead = out.rejected;
        dead.extend(batch.undecodable.into_iter().map(|(record, reason)| Rejected {
            record,
            plugin: "source:kafka".into(),
            version: String::new(),
            failure: RecordFailure::new(FailureKind::Undecodable, reason),
        }));
        let unwritable = sink.apply(out.records, &batch.next_offsets, &dead, &dead_letters).await?;
        if unwritable > 0 {
            tracing::warn!(pipeline = %config.name, unwritable, "records the MySQL sink could not write went to the dead-letter queue");
        }
        committer.commit(&batch.next_offsets)?;
    }
    tracing::info!(pipeline = %config.name, "stopped");
    Ok(())
}

impl BatchSource for KafkaSource {
    type Batch = KafkaBatch;

    async fn next_batch(&mut self) -> Result<KafkaBatch, SourceError> {
        KafkaSource::next_batch(self, BATCH_RECORDS, BATCH_WAIT).await
    }
}
