//! Pipeline files: what runs, with which plugins, from where to where.
mod config;
mod env;

pub use config::{OnError, PipelineConfig, PipelineFile, PluginStep};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: FileProblem },
}

/// What makes a pipeline file wrong before anything is checked or reached.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: environment variable {name} is not set (export it, or write $${{ for a literal)")]
    UnsetVariable { key: String, name: String },
    #[error("{key}: `${{` without a closing `}}` (write $${{ for a literal)")]
    UnclosedVariable { key: String },
    #[error("no pipelines: add at least one [[pipeline]] table")]
    NoPipelines,
    #[error("shutdown_timeout_s is 0: give the seconds a stop may take to deliver what was read (default 30)")]
    ShutdownTimeout,
    #[error("pipeline.name: `{0}` is used twice; names must be unique")]
    DuplicateName(String),
    #[error("pipeline.name: `{0}` is not a name: use A-Z a-z 0-9 . _ - (not starting with .)")]
    BadName(String),
    #[error("{key}: `${{}}` names no variable")]
    EmptyVariable { key: String },
    #[error("pipelines `{first}` and `{second}` both read the binlog of {server} with server_id {server_id}: give each its own")]
    SharedServerId {
        first: String,
        second: String,
        server: String,
        server_id: u32,
    },
    #[error("pipeline `{pipeline}`: a {sink} sink takes {takes}, not a {given} source")]
    Pairing {
        pipeline: String,
        sink: &'static str,
        takes: &'static str,
        given: &'static str,
    },
    #[error("site: {0}")]
    BadSite(String),
    #[error("pipeline `{pipeline}`: {message}")]
    Site { pipeline: String, message: String },
    #[error("pipeline `{pipeline}`: plugins.limits of `{plugin}`: {message}")]
    Limits { pipeline: String, plugin: String, message: String },
}

/// A part of a pipeline (its source, sink or dead-letter queue) whose
/// settings fail an offline check.
#[derive(Debug, thiserror::Error)]
#[error("{part}")]
pub struct CheckError {
    pub part: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
