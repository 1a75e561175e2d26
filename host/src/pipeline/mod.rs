//! Pipeline files: what runs, with which plugins, from where to where.
mod config;
mod env;

pub use config::{OnError, PipelineConfig, PipelineFile, PluginStep, Secret, SinkConfig, SourceConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}
