//! The Kafka sink: one message per record, acknowledged before the source
//! position may advance.
mod client;
pub mod delivery;
pub mod encode;

use rdkafka::producer::Producer as _;
use serde::Deserialize;

pub use client::ClientProperties;
pub use client::producer;
pub use delivery::Acks;
use delivery::{Outgoing, Producer, enqueue_all, wire_size};
pub use encode::{KeyWriter, MessageEncoder, ValueFormat};

use crate::record::{Op, Record};
use crate::sinks::{Destination, SinkError};
use crate::transforms::Rejected;

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
    max_message_bytes: usize,
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
            max_message_bytes: config.properties.max_message_bytes(),
        })
    }

    /// Fails fast, naming the brokers, when none of them answers.
    pub async fn check_brokers(&self, brokers: &str) -> Result<(), SinkError> {
        let client = self.producer.client();
        tokio::task::block_in_place(|| client.fetch_metadata(None, std::time::Duration::from_secs(10)))
            .map(|_| ())
            .map_err(|source| SinkError::Unreachable {
                brokers: brokers.to_owned(),
                source,
            })
    }

    /// Produces every record and returns once Kafka acknowledged all of
    /// them; records too large to produce come back for the dead-letter queue.
    pub async fn deliver(&mut self, records: &[Record]) -> Result<Vec<Rejected>, SinkError> {
        let (acks, too_large) = self.enqueue(records).await?;
        acks.wait().await?;
        Ok(too_large)
    }

    /// Hands every record to the producer, in order; the acks come later. A
    /// record whose message would exceed the producer's `message.max.bytes`
    /// is not sent (librdkafka would refuse it, and with it the batch, on
    /// every restart) but handed back, named with the limit.
    pub async fn enqueue(&mut self, records: &[Record]) -> Result<(Acks, Vec<Rejected>), SinkError> {
        let messages = &mut self.messages;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut too_large = Vec::new();
        for record in records {
            self.topic.fill_into(record, &mut self.topic_name);
            let key = messages.write(|out| self.encoder.write_key(record, out));
            let payload = messages.write(|out| self.encoder.write_value(record, now_ms, out));
            let headers = encode::headers(record, &mut self.dedup);
            let size = wire_size(key.as_ref(), payload.as_ref(), &headers);
            if size > self.max_message_bytes {
                too_large.push(Rejected::unwritable(
                    record.clone(),
                    "sink:kafka",
                    format!(
                        "its message for topic `{}` is {size} bytes, over the producer's message.max.bytes of {}: raise \
                         message.max.bytes in the sink's properties (and max.message.bytes on the topic), or shrink the row in a plugin",
                        self.topic_name, self.max_message_bytes
                    ),
                ));
            } else if self.tombstones && record.op == Op::Delete && key.is_some() {
                messages.push(&self.topic_name, key.clone(), payload, headers.clone());
                messages.push(&self.topic_name, key, None, headers);
            } else {
                messages.push(&self.topic_name, key, payload, headers);
            }
        }
        Ok((enqueue_all(&self.producer, messages).await?, too_large))
    }
}
