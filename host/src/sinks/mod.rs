//! Where records go.
pub mod dead_letter;
pub mod kafka;
pub mod mysql;

use serde::Deserialize;

use self::kafka::KafkaSinkConfig;
use self::mysql::MysqlSinkConfig;
use crate::kafka::ClientProperties;
use crate::record::{Position, Record};

/// Where records go.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    Kafka(KafkaSinkConfig),
    /// MySQL tables, written in batches with the consumed offsets.
    Mysql(MysqlSinkConfig),
}

impl SinkConfig {
    /// Checks offline what the sink will read as it starts: its Kafka
    /// client's properties and the files they name, or its URL and TLS files.
    pub fn check(&self) -> Result<(), SinkError> {
        match self {
            SinkConfig::Kafka(c) => {
                Destination::check("topic", &c.topic)?;
                kafka::delivery::check_producer(&c.brokers, &c.properties)?;
            }
            SinkConfig::Mysql(c) => {
                Destination::check("table", &c.table)?;
                c.check_conflict().map_err(SinkError::Settings)?;
                crate::mysql::check_settings(&c.url, c.tls.as_ref())?;
            }
        }
        Ok(())
    }

    /// Makes the files it names relative to `base`, the pipeline file's directory.
    pub(crate) fn rebase(&mut self, base: &std::path::Path) {
        if let SinkConfig::Mysql(MysqlSinkConfig { tls: Some(tls), .. }) = self {
            tls.rebase(base);
        }
    }

    /// The name the pipeline file gives this kind of sink.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::Mysql(_) => "mysql",
        }
    }

    /// The Kafka cluster this sink writes, if it writes one.
    pub fn kafka(&self) -> Option<(&str, &ClientProperties)> {
        match self {
            SinkConfig::Kafka(c) => Some((&c.brokers, &c.properties)),
            SinkConfig::Mysql(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Broker(#[from] crate::kafka::BrokerError),
    #[error(transparent)]
    Mysql(#[from] crate::mysql::MysqlError),
    /// A setting found wrong before anything is made.
    #[error("{0}")]
    Settings(String),
    #[error("a record failed and `on_error = \"stop\"` halts the pipeline: {reason} (in {plugin}, at {position})")]
    Halted { plugin: String, position: String, reason: String },
    #[error("Kafka did not accept a record for topic `{topic}`: {source}")]
    Delivery {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl SinkError {
    /// Whether trying again later may succeed: brokers down or unreachable.
    pub fn is_transient(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode::*;
        match self {
            SinkError::Halted { .. } => false,
            SinkError::Broker(e) => e.is_transient(),
            SinkError::Mysql(e) => e.is_transient(),
            SinkError::Settings(_) => false,
            SinkError::Delivery { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(
                    MessageTimedOut
                        | BrokerTransportFailure
                        | AllBrokersDown
                        | RequestTimedOut
                        | NetworkException
                        | NotLeaderForPartition
                        | LeaderNotAvailable
                        | NotEnoughReplicas
                        | NotEnoughReplicasAfterAppend
                        | BrokerNotAvailable
                        | QueueFull
                )
            ),
        }
    }
}

/// A record's topic or table: a template with `{database}`, `{table}`,
/// `{topic}` (of a Kafka source) and `{pipeline}`, split once so filling it
/// per record is one pass; a routing plugin's destination wins.
pub struct Destination(Vec<Part>);

enum Part {
    Text(String),
    Database,
    Table,
    Topic,
}

impl Destination {
    /// A template names something, and only the placeholders there are.
    pub(crate) fn check(key: &str, template: &str) -> Result<(), SinkError> {
        const PLACEHOLDERS: [&str; 4] = ["{database}", "{table}", "{topic}", "{pipeline}"];
        if template.trim().is_empty() {
            return Err(SinkError::Settings(format!(
                "{key} is empty: give a name, or a template such as {{database}}.{{table}}"
            )));
        }
        let mut rest = template;
        while let Some(at) = rest.find('{') {
            rest = &rest[at..];
            match PLACEHOLDERS.iter().find(|p| rest.starts_with(*p)) {
                Some(p) => rest = &rest[p.len()..],
                None => {
                    let unknown: String = rest.chars().take_while(|&c| c != '}').chain(std::iter::once('}')).collect();
                    return Err(SinkError::Settings(format!(
                        "{key} `{template}`: unknown placeholder {unknown}; there are {}",
                        PLACEHOLDERS.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn new(template: &str, pipeline: &str) -> Self {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while !rest.is_empty() {
            let placeholder = [
                ("{database}", Some(Part::Database)),
                ("{table}", Some(Part::Table)),
                ("{topic}", Some(Part::Topic)),
                ("{pipeline}", None),
            ]
            .into_iter()
            .find(|(name, _)| rest.starts_with(name));
            match placeholder {
                Some((name, part)) => {
                    rest = &rest[name.len()..];
                    match part {
                        None => text.push_str(pipeline),
                        Some(part) => {
                            if !text.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut text)));
                            }
                            parts.push(part);
                        }
                    }
                }
                None => {
                    let c = rest.chars().next().expect("not empty");
                    text.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Destination(parts)
    }

    pub fn fill(&self, record: &Record) -> String {
        let mut name = String::with_capacity(64);
        self.fill_into(record, &mut name);
        name
    }

    /// The record's name, written over `name` (a buffer reused per record).
    pub fn fill_into(&self, record: &Record, name: &mut String) {
        name.clear();
        if let Some(destination) = &record.destination {
            name.push_str(destination);
            return;
        }
        let schema = record.schema.as_deref();
        for part in &self.0 {
            name.push_str(match part {
                Part::Text(text) => text,
                Part::Database => schema.map_or("", |s| s.database.as_str()),
                Part::Table => schema.map_or("", |s| s.table.as_str()),
                Part::Topic => match &record.position {
                    Position::Kafka { topic, .. } => topic,
                    _ => "",
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Op, Schema};

    #[test]
    fn templates_fill_from_the_record_and_routing_wins() {
        let mut record = Record {
            op: Op::Insert,
            position: Position::Kafka {
                topic: "in.orders".into(),
                partition: 0,
                offset: 1,
            },
            ts_ms: 0,
            schema: Some(std::sync::Arc::new(Schema {
                database: "shop".into(),
                table: "orders".into(),
                columns: vec![],
                key: vec![],
            })),
            before: None,
            after: None,
            key: None,
            payload: None,
            headers: Vec::new(),
            destination: None,
        };
        let mut reused = "left over".to_owned();
        let d = Destination::new("{pipeline}-{database}.{table}/{topic}{unknown}é", "p1");
        assert_eq!(d.fill(&record), "p1-shop.orders/in.orders{unknown}é");
        d.fill_into(&record, &mut reused);
        assert_eq!(reused, "p1-shop.orders/in.orders{unknown}é");
        assert_eq!(Destination::new("fixed", "p").fill(&record), "fixed");
        record.destination = Some("routed".into());
        assert_eq!(d.fill(&record), "routed");
        d.fill_into(&record, &mut reused);
        assert_eq!(reused, "routed");
    }
}
