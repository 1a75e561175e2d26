//! Which two servers and tables `sluice verify FILE --pipeline NAME`
//! compares: the named pipeline's MySQL source, and the MySQL server the
//! pipeline of the same file that reads its topics writes into.
use std::path::Path;

use mysql_async::Conn;

use crate::mysql::catalog::{TableFilter, captured_tables};
use crate::pipeline::{PipelineConfig, PipelineFile};
use crate::record::{Column, Position, Record, Schema};
use crate::secret::Secret;
use crate::sinks::{Destination, SinkConfig};
use crate::sources::SourceConfig;

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(transparent)]
    File(#[from] crate::pipeline::ConfigError),
    #[error("{0}")]
    Pipeline(String),
    #[error(transparent)]
    Mysql(#[from] crate::mysql::MysqlError),
}

/// The named pipeline's MySQL source: its server and the tables it reads.
pub struct PipelineSource {
    pub url: Secret,
    filter: TableFilter,
    /// The topic per table, and the file's Kafka → MySQL pipelines: where
    /// each table's rows are written.
    topic: Destination,
    appliers: Vec<Applier>,
    pipeline: PipelineConfig,
}

struct Applier {
    name: String,
    url: Secret,
    topics: Vec<String>,
    table: Destination,
}

/// One table to compare, under its name on each side.
pub struct TablePair {
    pub source: String,
    pub target: String,
    /// The server it is written into, unless the command line names one.
    pub target_url: Option<Secret>,
}

impl PipelineSource {
    /// Reads `file` for pipeline `name`, which must read MySQL.
    pub fn load(file: &Path, name: &str) -> Result<Self, PairingError> {
        let mut file = PipelineFile::load(file)?;
        let Some(at) = file.pipelines.iter().position(|p| p.name == name) else {
            let names: Vec<&str> = file.pipelines.iter().map(|p| p.name.as_str()).collect();
            return Err(PairingError::Pipeline(format!(
                "no pipeline `{name}` in the file; it has: {}",
                names.join(", ")
            )));
        };
        let pipeline = file.pipelines.remove(at);
        let (url, tables, exclude) = match &pipeline.source {
            SourceConfig::MysqlBinlog(c) => (c.url.clone(), c.tables.clone(), c.exclude.clone()),
            SourceConfig::MysqlPoll(c) => (c.url.clone(), c.tables.iter().map(|t| t.table.clone()).collect(), Vec::new()),
            SourceConfig::Kafka(_) => {
                return Err(PairingError::Pipeline(format!(
                    "pipeline `{name}` reads Kafka: name the pipeline that reads the MySQL whose rows are right, \
                     or give --source, --target and --tables"
                )));
            }
        };
        let SinkConfig::Kafka(sink) = &pipeline.sink else {
            unreachable!("a MySQL source pairs with a Kafka sink")
        };
        Ok(PipelineSource {
            url,
            filter: TableFilter::new(&tables, &exclude),
            topic: Destination::new(&sink.topic, name),
            appliers: file.pipelines.iter().filter_map(applier).collect(),
            pipeline,
        })
    }

    /// The pipeline, whose sink re-emits rows for a repair.
    pub fn pipeline(&self) -> &PipelineConfig {
        &self.pipeline
    }

    /// Every table the source reads, each with where it is written.
    /// `target` names the other server instead of following the topics.
    pub async fn tables(&self, source: &mut Conn, target: Option<&Secret>) -> Result<Vec<TablePair>, PairingError> {
        let mut pairs = Vec::new();
        for info in captured_tables(source, &self.filter).await? {
            let record = named(&info.database, &info.table, None);
            let topic = self.topic.fill(&record);
            let applier = self.appliers.iter().find(|a| a.reads(&topic));
            let pair = match (applier, target) {
                (_, Some(_)) => TablePair {
                    source: info.qualified(),
                    target: info.qualified(),
                    target_url: None,
                },
                (Some(applier), None) => TablePair {
                    source: info.qualified(),
                    target: applier.table.fill(&named(&info.database, &info.table, Some(&topic))),
                    target_url: Some(applier.url.clone()),
                },
                (None, None) => {
                    return Err(PairingError::Pipeline(format!(
                        "no pipeline of the file reads topic `{topic}`, where `{}` sends {}: give --target URL",
                        self.pipeline.name,
                        info.qualified()
                    )));
                }
            };
            if pair.target != pair.source {
                let by = applier.map_or("", |a| a.name.as_str());
                return Err(PairingError::Pipeline(format!(
                    "pipeline `{by}` writes {} into {}: verify compares tables of one name on both servers",
                    pair.source, pair.target
                )));
            }
            pairs.push(pair);
        }
        if pairs.is_empty() {
            return Err(PairingError::Pipeline(format!(
                "pipeline `{}` reads no table that exists on its server",
                self.pipeline.name
            )));
        }
        Ok(pairs)
    }
}

fn applier(pipeline: &PipelineConfig) -> Option<Applier> {
    match (&pipeline.source, &pipeline.sink) {
        (SourceConfig::Kafka(source), SinkConfig::Mysql(sink)) => Some(Applier {
            name: pipeline.name.clone(),
            url: sink.url.clone(),
            topics: source.topics.clone(),
            table: Destination::new(&sink.table, &pipeline.name),
        }),
        _ => None,
    }
}

impl Applier {
    fn reads(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| match t.strip_prefix('^') {
            Some(_) => regex::Regex::new(t).is_ok_and(|re| re.is_match(topic)),
            None => t == topic,
        })
    }
}

/// A record that names `database.table` (and the topic it came from), for
/// filling a topic or table template.
fn named(database: &str, table: &str, topic: Option<&str>) -> Record {
    let schema = Schema {
        database: database.into(),
        table: table.into(),
        columns: Vec::<Column>::new(),
        key: Vec::new(),
    };
    let position = match topic {
        Some(topic) => Position::Kafka {
            topic: topic.into(),
            partition: 0,
            offset: 0,
        },
        None => Position::Other(String::new()),
    };
    Record::read(position, 0, schema.into(), Vec::new())
}
