//! Runs a pipeline: a source, the plugin chain and a sink, joined so that
//! a source position or offset is stored only once everything before it is
//! safely written.
mod to_kafka;
mod to_mysql;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::pipeline::{PipelineConfig, SinkConfig, SourceConfig};
use crate::plugin::PluginHost;

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
    #[error("pipeline sink: {0}")]
    MysqlSink(#[from] crate::sinks::mysql::MysqlSinkError),
}

/// Runs until `stop` turns true, the source finishes (snapshot-only), or a
/// failure that retrying cannot fix.
pub async fn run_pipeline(
    config: &PipelineConfig,
    host: Arc<PluginHost>,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<(), PipelineError> {
    match (&config.source, &config.sink) {
        (SourceConfig::Kafka(source), SinkConfig::Mysql(sink)) => to_mysql::run(config, source, sink, host, stop).await,
        (_, SinkConfig::Kafka(sink)) => to_kafka::run(config, sink, host, state_dir, stop).await,
        _ => Err(PipelineError::Unsupported {
            pipeline: config.name.clone(),
            message: "a mysql sink takes a kafka source".into(),
        }),
    }
}
