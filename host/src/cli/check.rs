use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::pipeline::{PipelineConfig, PipelineFile, SinkConfig, SourceConfig};
use crate::plugin::{PluginEngine, PluginHost};
use crate::sinks::dead_letter::DeadLetterQueue;
use crate::sinks::kafka::producer;
use crate::sources::MysqlTls;
use crate::sources::kafka::KafkaSource;

/// `sluice check`: parse the file, create every Kafka client and read every
/// TLS file, then start every plugin with its config and limits exactly as
/// `run` would, so a bad key, property, file or plugin fails here. No server
/// is reached, unless `--connect` asks to reach them all.
pub fn run(path: &Path, connect: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    let file = PipelineFile::load(path)?;
    let host = PluginHost::open_only(Arc::new(PluginEngine::new()?), &file.plugin_dir, file.plugin_names())
        .with_context(|| format!("plugin_dir {}", file.plugin_dir.display()))?;
    for pipeline in &file.pipelines {
        check_clients(pipeline).with_context(|| format!("pipeline `{}`", pipeline.name))?;
        for step in &pipeline.plugins {
            let mut runner = host
                .runner(&step.name, step.flat_config(), step.limits)
                .with_context(|| format!("pipeline `{}`, plugin `{}`", pipeline.name, step.name))?;
            let version = runner.version().hash.clone();
            writeln!(out, "pipeline {}: plugin {} version {} ok", pipeline.name, step.name, version)?;
        }
    }
    if connect && !super::connect::check_servers(&file, out)? {
        writeln!(out, "{}: a server did not answer as it should (see above)", path.display())?;
        return Ok(1);
    }
    writeln!(out, "{}: {} pipeline(s) ok", path.display(), file.pipelines.len())?;
    Ok(0)
}

/// librdkafka checks a client's properties, and the files they name, when it
/// creates the client; the MySQL TLS files are read as connecting would.
fn check_clients(pipeline: &PipelineConfig) -> anyhow::Result<()> {
    let tls = |tls: &Option<MysqlTls>, side: &str| {
        tls.as_ref()
            .map_or(Ok(()), MysqlTls::check)
            .map_err(|e| anyhow::anyhow!("{side}: {e}"))
    };
    let kafka_side = match &pipeline.source {
        SourceConfig::MysqlBinlog(source) => tls(&source.tls, "source").map(|()| None)?,
        SourceConfig::MysqlPoll(source) => tls(&source.tls, "source").map(|()| None)?,
        SourceConfig::Kafka(source) => {
            KafkaSource::check(source).context("source")?;
            Some((&source.brokers, &source.properties))
        }
    };
    let kafka_side = match &pipeline.sink {
        SinkConfig::Kafka(sink) => {
            producer(&sink.brokers, &sink.properties).map(drop).context("sink")?;
            Some((&sink.brokers, &sink.properties))
        }
        SinkConfig::Mysql(sink) => tls(&sink.tls, "sink").map(|()| kafka_side)?,
    };
    if let Some((brokers, properties)) = kafka_side {
        DeadLetterQueue::new(&pipeline.dead_letter, brokers, properties, &pipeline.name).context("dead_letter")?;
    }
    Ok(())
}
