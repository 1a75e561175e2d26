//! The Kafka sink: one message per record, acknowledged before the source
//! position may advance.
mod client;
pub mod encode;
pub mod delivery;

use rdkafka::producer::Producer as _;
use serde::Deserialize;

pub use client::ClientProperties;
pub use client::producer;
pub use delivery::Acks;
use delivery::{Outgoing, Producer, enqueue_all};
pub use encode::{MessageEncoder, ValueFormat};

use crate::record::{Op, Record};
use crate::sinks::{Destination, SinkError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    /// Topic per record: `{database}`, `{table}`, `{topic}`, `{pipeline}`;
    /// a routing plugin's destination overrides it.
    #[serde(default = "default_topic")]
    pub topic: String,
    #[serde(default)]
    pub format: ValueFormat,
    /// After each delete, also send a tombstone (null value) for its key,
    /// so log compaction can drop the row.
    #[serde(default)]
    pub tombstones: bool,
    /// librdkafka producer properties, passed through.
    #[serde(default)]
    pub properties: ClientProperties,
}

fn default_topic() -> String {
    "{database}.{table}".into()
}

pub struct KafkaSink {
    producer: Producer,
    topic: Destination,
    encoder: MessageEncoder,
    tombstones: bool,
    /// Scratch space for each message's topic and dedup id, and for each
    /// batch's messages.
    topic_name: String,
    dedup: String,
    messages: Outgoing,
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig, pipeline: &str) -> Result<Self, SinkError> {
        Ok(KafkaSink {
            producer: producer(&config.brokers, &config.properties)?,
            topic: Destination::new(&config.topic, pipeline),
            encoder: MessageEncoder::new(config.format, pipeline),
            tombstones: config.tombstones,
            topic_name: String::new(),
            dedup: String::new(),
            messages: Outgoing::with_capacity(0),
        })
    }

    /// Fails fast, naming the brokers, when none of them answers.
    pub async fn check_brokers(&self, brokers: &str) -> Result<(), SinkError> {
        let client = self.producer.client();
        tokio::task::block_in_place(|| client.fetch_metadata(None, std::time::Duration::from_secs(10)))
            .map(|_| ())
            .map_err(|source| SinkError::Unreachable { brokers: brokers.to_owned(), source })
    }

    /// Produces every record and returns once Kafka acknowledged all of them.
    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        self.enqueue(records).await?.wait().await
    }

    /// Hands every record to the producer, in order; the acks come later.
    pub async fn enqueue(&mut self, records: &[Record]) -> Result<Acks, SinkError> {
        let messages = &mut self.messages;
        let now_ms = chrono::Utc::now().timestamp_millis();
        for record in records {
            self.topic.fill_into(record, &mut self.topic_name);
            let key = messages.write(|out| self.encoder.write_key(record, out));
            let payload = messages.write(|out| self.encoder.write_value(record, now_ms, out));
            let headers = encode::headers(record, &mut self.dedup);
            if self.tombstones && record.op == Op::Delete && key.is_some() {
                messages.push(&self.topic_name, key.clone(), payload, headers.clone());
                messages.push(&self.topic_name, key, None, headers);
            } else {
                messages.push(&self.topic_name, key, payload, headers);
            }
        }
        enqueue_all(&self.producer, messages).await
    }
}
