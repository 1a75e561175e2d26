//! `sluice check --connect`: every server a pipeline file names, reached
//! at once, one line each: MySQL's binlog settings, tables and grants for a
//! capture source, the tables of a polling source, a MySQL sink's login,
//! the brokers of each Kafka side. Each check has its own time limit, so
//! the whole takes seconds even when a server is down.
use std::io::Write;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka::ClientProperties;
use crate::pipeline::{PipelineConfig, PipelineFile};
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::sources::binlog;
use crate::sources::polling::PollingSource;

/// A server that answers slower than this counts as unreachable.
const WITHIN: Duration = Duration::from_secs(10);

/// Prints one line per server; returns whether all answered as they should.
pub fn check_servers(file: &PipelineFile, out: &mut dyn Write) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let lines = runtime.block_on(join_all(file.pipelines.iter().flat_map(checks)));
    let mut ok = true;
    for (what, result) in lines {
        match result {
            Ok(detail) => writeln!(out, "{what}: ok ({detail})")?,
            Err(error) => {
                ok = false;
                writeln!(out, "{what}: FAILED: {error}")?;
            }
        }
    }
    Ok(ok)
}

type Check<'a> = std::pin::Pin<Box<dyn Future<Output = (String, Result<String, String>)> + Send + 'a>>;

fn checks(pipeline: &PipelineConfig) -> Vec<Check<'_>> {
    let name = &pipeline.name;
    let mut checks: Vec<Check<'_>> = Vec::new();
    let mut kafka_side = None;
    match &pipeline.source {
        SourceConfig::MysqlBinlog(source) => checks.push(timed(format!("pipeline {name}: source (MySQL binlog)"), async move {
            binlog::check(source)
                .await
                .map(|_| "binlog ROW with full row images, every table present, replication grants".into())
        })),
        SourceConfig::MysqlPoll(source) => checks.push(timed(format!("pipeline {name}: source (MySQL polling)"), async move {
            PollingSource::connect(source, None)
                .await
                .map(|_| "every table and column present, readable".into())
        })),
        SourceConfig::Kafka(source) => {
            kafka_side = Some((&source.brokers, &source.properties));
            checks.push(brokers(
                format!("pipeline {name}: source (Kafka)"),
                &source.brokers,
                &source.properties,
            ));
        }
    }
    match &pipeline.sink {
        SinkConfig::Kafka(sink) => {
            kafka_side = Some((&sink.brokers, &sink.properties));
            checks.push(brokers(format!("pipeline {name}: sink (Kafka)"), &sink.brokers, &sink.properties));
        }
        SinkConfig::Mysql(sink) => checks.push(timed(format!("pipeline {name}: sink (MySQL)"), async move {
            crate::mysql::connect(&sink.url, sink.tls.as_ref())
                .await
                .map(|_| "signed in".into())
        })),
    }
    let dead_letter = &pipeline.dead_letter;
    match (&dead_letter.brokers, kafka_side) {
        (Some(own), _) => checks.push(brokers(format!("pipeline {name}: dead-letter queue"), own, &dead_letter.properties)),
        (None, Some((brokers_of_side, properties))) => {
            let properties = properties.connection().with(&dead_letter.properties);
            checks.push(Box::pin(async move {
                let (what, result) = brokers(format!("pipeline {name}: dead-letter queue"), brokers_of_side, &properties).await;
                (what, result)
            }));
        }
        (None, None) => {}
    }
    checks
}

fn timed<'a, E: std::fmt::Display>(what: String, check: impl Future<Output = Result<String, E>> + Send + 'a) -> Check<'a> {
    Box::pin(async move {
        let result = match tokio::time::timeout(WITHIN, check).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", WITHIN.as_secs())),
        };
        (what, result)
    })
}

/// The brokers' metadata, through a client with the side's properties.
fn brokers<'a>(what: String, brokers: &'a str, properties: &ClientProperties) -> Check<'a> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("group.id", "sluice-check");
    properties.apply(&mut config);
    timed(what, async move {
        let consumer: BaseConsumer = config.create().map_err(|e| format!("cannot create a client for {brokers}: {e}"))?;
        let at = brokers.to_owned();
        let metadata = tokio::task::spawn_blocking(move || crate::kafka::reach(consumer.client(), &at, WITHIN - Duration::from_secs(1)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(format!("{metadata} broker(s) at {brokers}"))
    })
}
