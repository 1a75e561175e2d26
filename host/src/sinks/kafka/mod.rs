//! The Kafka sink: one message per record, acknowledged before the source
//! position may advance.
pub mod delivery;

use rdkafka::producer::Producer as _;
use serde::Deserialize;

use crate::formats::debezium::{self, MessageEncoder, ValueFormat};
pub use delivery::{Acks, producer};
use delivery::{Outgoing, Producer, enqueue_all, wire_size};

use crate::kafka::ClientProperties;
use crate::record::{Op, Record};
use crate::rejected::Rejected;
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
    max_message_bytes: usize,
    /// Names made legal for Kafka, each warned of once.
    renamed: std::collections::HashSet<String>,
    /// The record each prepared message is of.
    record_of: Vec<usize>,
    site: Option<Box<str>>,
}

/// Kafka takes topic names of `[a-zA-Z0-9._-]`, at most 249 characters:
/// other characters become `_` (as Debezium does), and the first time a
/// name changes it is said, so that a table named `we"ird 表` neither stops
/// its pipeline nor lands somewhere unannounced.
fn legal_topic(name: &mut String, renamed: &mut std::collections::HashSet<String>) {
    use crate::kafka::{MAX_TOPIC_LEN, topic_char};
    if name.len() <= MAX_TOPIC_LEN && name.chars().all(topic_char) {
        return;
    }
    let mut fixed: String = name.chars().map(|c| if topic_char(c) { c } else { '_' }).collect();
    fixed.truncate(MAX_TOPIC_LEN);
    if renamed.insert(name.clone()) {
        tracing::warn!(topic = %fixed, "`{name}` is not a legal Kafka topic name; its records go to `{fixed}`");
    }
    *name = fixed;
}

impl KafkaSink {
    /// A sink whose messages name `site` as the origin of records that name none.
    pub fn new(config: &KafkaSinkConfig, pipeline: &str, site: Option<&str>) -> Result<Self, SinkError> {
        Ok(KafkaSink {
            producer: producer(&config.brokers, &config.properties)?,
            topic: Destination::new(&config.topic, pipeline),
            encoder: MessageEncoder::new(config.format, pipeline).with_site(site),
            site: site.map(Into::into),
            tombstones: config.tombstones,
            topic_name: String::new(),
            dedup: String::new(),
            messages: Outgoing::with_capacity(0),
            max_message_bytes: config.properties.max_message_bytes(),
            renamed: Default::default(),
            record_of: Vec::new(),
        })
    }

    /// Messages handed to the producer and not yet acknowledged, and the
    /// messages Kafka failed to take so far.
    pub fn queue(&self) -> (i64, usize) {
        use rdkafka::producer::Producer as _;
        let errors = self.producer.context().errors.load(std::sync::atomic::Ordering::Relaxed);
        (i64::from(self.producer.in_flight_count()), errors)
    }

    /// Fails fast, naming the brokers, when none of them answers.
    pub async fn check_brokers(&self, brokers: &str) -> Result<(), SinkError> {
        crate::kafka::reach(self.producer.client(), brokers, std::time::Duration::from_secs(10))?;
        Ok(())
    }

    /// Writes every record's message, in order, for [`KafkaSink::send`]. A
    /// record whose message would exceed the producer's `message.max.bytes`
    /// is not written (librdkafka would refuse it, and with it the batch, on
    /// every restart) but handed back, named with the limit.
    pub fn prepare(&mut self, records: &[Record]) -> Vec<Rejected> {
        let messages = &mut self.messages;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut too_large = Vec::new();
        self.record_of.clear();
        for (index, record) in records.iter().enumerate() {
            self.topic.fill_into(record, &mut self.topic_name);
            legal_topic(&mut self.topic_name, &mut self.renamed);
            let key = messages.write(|out| self.encoder.write_key(record, out));
            let payload = messages.write(|out| self.encoder.write_value(record, now_ms, out));
            let headers = debezium::headers(record, self.site.as_deref(), &mut self.dedup);
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
                self.record_of.extend([index, index]);
            } else {
                messages.push(&self.topic_name, key, payload, headers);
                self.record_of.push(index);
            }
        }
        too_large
    }

    /// Hands the messages prepared for `records` to the producer; the acks
    /// come later. A record whose message librdkafka still refuses as too
    /// large comes back for the dead-letter queue.
    pub async fn send(&mut self, records: &[Record]) -> Result<(Acks, Vec<Rejected>), SinkError> {
        let (acks, refused) = enqueue_all(&self.producer, &mut self.messages).await?;
        let mut rejected: Vec<Rejected> = refused
            .into_iter()
            .map(|message| {
                Rejected::unwritable(
                    records[self.record_of[message]].clone(),
                    "sink:kafka",
                    format!(
                        "librdkafka refused its message as over the producer's message.max.bytes of {}",
                        self.max_message_bytes
                    ),
                )
            })
            .collect();
        // A delete and its tombstone are one record.
        rejected.dedup_by(|a, b| a.record.position == b.record.position);
        Ok((acks, rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_topic_names_are_made_legal_once() {
        let mut renamed = Default::default();
        let mut name = "ty.we\"ird 表 name".to_owned();
        legal_topic(&mut name, &mut renamed);
        assert_eq!(name, "ty.we_ird___name");
        let mut fine = "shop.users-1_a".to_owned();
        legal_topic(&mut fine, &mut renamed);
        assert_eq!(fine, "shop.users-1_a");
        let mut long = "x".repeat(300);
        legal_topic(&mut long, &mut renamed);
        assert_eq!(long.len(), 249);
    }
}
