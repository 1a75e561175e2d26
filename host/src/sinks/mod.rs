//! Where records go.
pub mod dead_letter;
pub mod kafka;
pub mod mysql;

use crate::record::{Position, Record};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create the Kafka producer for {brokers}: {source} (check brokers and the client properties)")]
    Client {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("no Kafka broker answers at {brokers}: {source} (check `brokers`, the network and the client properties)")]
    Unreachable {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("Kafka did not accept a record for topic `{topic}`: {source}")]
    Delivery {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// A record's topic or table: the template with `{database}`, `{table}`,
/// `{topic}` (of a Kafka source) and `{pipeline}` filled from the record;
/// a routing plugin's destination wins.
pub fn destination(template: &str, record: &Record, pipeline: &str) -> String {
    if let Some(destination) = &record.destination {
        return destination.clone();
    }
    let schema = record.schema.as_deref();
    let source_topic = match &record.position {
        Position::Kafka { topic, .. } => topic.as_str(),
        _ => "",
    };
    template
        .replace("{database}", schema.map_or("", |s| s.database.as_str()))
        .replace("{table}", schema.map_or("", |s| s.table.as_str()))
        .replace("{topic}", source_topic)
        .replace("{pipeline}", pipeline)
}
