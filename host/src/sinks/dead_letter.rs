//! The dead-letter queue: records a plugin rejected (or that could not be
//! written) go to a Kafka topic, as their JSON-lines form, with headers that
//! say which pipeline, plugin and version failed, why, and where the record
//! came from. `sluice plugin test` replays such a record as it is.
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use serde::Deserialize;

use super::SinkError;
use super::kafka::delivery::{Acks, Outgoing, Producer, enqueue_all};
use super::kafka::encode::position_text;
use super::kafka::{ClientProperties, MessageEncoder, ValueFormat, producer};
use crate::record::record_to_json;
use crate::transforms::Rejected;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub topic: String,
    /// Defaults to the brokers of the pipeline's Kafka side.
    pub brokers: Option<String>,
    /// On the Kafka side's brokers, added to its `security.protocol`,
    /// `ssl.*` and `sasl.*`; on other brokers, all there is.
    #[serde(default)]
    pub properties: ClientProperties,
}

pub struct DeadLetterQueue {
    producer: Producer,
    topic: String,
    pipeline: String,
}

impl DeadLetterQueue {
    /// `brokers` and `properties` are the pipeline's Kafka side (its sink or
    /// source): a secured cluster's settings need not be written twice.
    pub fn new(config: &DeadLetterConfig, brokers: &str, properties: &ClientProperties, pipeline: &str) -> Result<Self, SinkError> {
        let producer = match &config.brokers {
            Some(own) => producer(own, &config.properties)?,
            None => producer(brokers, &properties.connection().with(&config.properties))?,
        };
        Ok(DeadLetterQueue { producer, topic: config.topic.clone(), pipeline: pipeline.into() })
    }

    pub async fn send(&self, rejected: &[Rejected]) -> Result<(), SinkError> {
        self.enqueue(rejected).await?.wait().await
    }

    /// Hands the dead letters to the producer; the acks come later.
    pub async fn enqueue(&self, rejected: &[Rejected]) -> Result<Acks, SinkError> {
        let mut keys = MessageEncoder::new(ValueFormat::Debezium, &self.pipeline);
        let mut messages = Outgoing::with_capacity(rejected.len());
        for r in rejected {
            let kind = r.failure.kind.as_str();
            let position = position_text(&r.record.position);
            let fields = [
                ("sluice.pipeline", self.pipeline.as_str()),
                ("sluice.plugin", r.plugin.as_str()),
                ("sluice.plugin-version", r.version.as_str()),
                ("sluice.error-kind", kind),
                ("sluice.error", r.failure.message.as_str()),
                ("sluice.position", position.as_str()),
            ];
            let headers = fields
                .iter()
                .fold(OwnedHeaders::new_with_capacity(fields.len()), |h, (k, v)| h.insert(KafkaHeader { key: k, value: Some(v.as_bytes()) }));
            let key = messages.write(|out| keys.write_key(&r.record, out));
            let payload = messages.write(|out| {
                serde_json::to_writer(out, &record_to_json(&r.record)).expect("writing to a Vec cannot fail");
                true
            });
            messages.push(&self.topic, key, payload, headers);
        }
        enqueue_all(&self.producer, &mut messages).await
    }
}
