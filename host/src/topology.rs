//! Runs a pipeline: source → plugin chain → sink, with rejected records to
//! the dead-letter queue, and the source position stored only after both
//! have acknowledged everything up to it (at-least-once).
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::pipeline::{PipelineConfig, SinkConfig, SourceConfig};
use crate::plugin::PluginHost;
use crate::positions::PositionStore;
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::sinks::kafka::KafkaSink;
use crate::sources::binlog::{BinlogCheckpoint, BinlogSource};
use crate::transforms::PluginChain;

/// Records per batch through the plugins and to the sink.
const BATCH_RECORDS: usize = 1000;
/// How long a batch waits to fill before it goes out anyway.
const BATCH_WAIT: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline `{pipeline}`: {message}")]
    Unsupported { pipeline: String, message: String },
    #[error("pipeline source: {0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("pipeline sink: {0}")]
    Sink(#[from] crate::sinks::SinkError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error(transparent)]
    Position(#[from] crate::positions::PositionError),
}

/// Runs until `stop` turns true or a failure that retrying cannot fix.
pub async fn run_pipeline(
    config: &PipelineConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    mut stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    let (SourceConfig::MysqlBinlog(source_config), SinkConfig::Kafka(sink_config)) = (&config.source, &config.sink) else {
        return Err(PipelineError::Unsupported {
            pipeline: config.name.clone(),
            message: "only mysql-binlog -> kafka runs in this version".into(),
        });
    };
    let positions = PositionStore::new(state_dir, &config.name);
    let mut chain = PluginChain::build(&host, &config.plugins)?;
    let sink = KafkaSink::new(sink_config, &config.name)?;
    sink.check_brokers(&sink_config.brokers).await?;
    let dead_letters = DeadLetterQueue::new(&config.dead_letter, &sink_config.brokers, &config.name)?;
    let mut source = BinlogSource::connect(source_config, positions.load::<BinlogCheckpoint>()?).await?;
    tracing::info!(pipeline = %config.name, "running");
    while !*stop.borrow() {
        let batch = tokio::select! {
            batch = source.next_batch(BATCH_RECORDS, BATCH_WAIT) => batch?,
            _ = stop.changed() => break,
        };
        if !batch.records.is_empty() {
            // Plugins run synchronously on this worker; other pipelines keep their threads.
            let out = tokio::task::block_in_place(|| chain.run(batch.records));
            sink.deliver(&out.records).await?;
            dead_letters.send(&out.rejected).await?;
        }
        if let Some(checkpoint) = batch.checkpoint {
            positions.save(&checkpoint)?;
        }
    }
    tracing::info!(pipeline = %config.name, "stopped");
    Ok(())
}
