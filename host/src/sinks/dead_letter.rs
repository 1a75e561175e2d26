//! The dead-letter queue: records a plugin rejected (or that could not be
//! written) go to a Kafka topic, as their JSON-lines form, with headers that
//! say which pipeline, plugin and version failed, why, and where the record
//! came from. `sluice plugin test` replays such a record as it is.
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use serde::Deserialize;

use super::SinkError;
use serde_json::json;

use super::kafka::delivery::{Acks, Outgoing, Producer, Written, enqueue_all, wire_size};
use super::kafka::producer;
use crate::formats::debezium::{MessageEncoder, ValueFormat, position_text};
use crate::kafka::ClientProperties;
use crate::pipeline::OnError;
use crate::record::{Position, record_to_json};
use crate::rejected::Rejected;
use crate::telemetry::PipelineTelemetry;

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

impl DeadLetterConfig {
    /// The queue's brokers and client properties, given the pipeline's Kafka side.
    fn client<'a>(&'a self, brokers: &'a str, properties: &ClientProperties) -> (&'a str, ClientProperties) {
        match &self.brokers {
            Some(own) => (own, self.properties.clone()),
            None => (brokers, properties.connection().with(&self.properties)),
        }
    }

    /// Checks offline the topic and the producer the queue would use.
    pub fn check(&self, brokers: &str, properties: &ClientProperties) -> Result<(), SinkError> {
        crate::kafka::check_topic("topic", &self.topic)?;
        let (brokers, properties) = self.client(brokers, properties);
        super::kafka::delivery::check_producer(brokers, &properties)?;
        Ok(())
    }
}

pub struct DeadLetterQueue {
    producer: Producer,
    topic: String,
    pipeline: String,
    /// The producer's `message.max.bytes`: a dead letter over it is cut down.
    max_message_bytes: usize,
    on_error: OnError,
    telemetry: Option<PipelineTelemetry>,
}

/// Bytes of an error message kept in a header; the whole reason is in the log.
const MAX_REASON_BYTES: usize = 1024;

impl DeadLetterQueue {
    /// `brokers` and `properties` are the pipeline's Kafka side (its sink or
    /// source): a secured cluster's settings need not be written twice.
    pub fn new(config: &DeadLetterConfig, brokers: &str, properties: &ClientProperties, pipeline: &str) -> Result<Self, SinkError> {
        let (brokers, properties) = config.client(brokers, properties);
        let producer = producer(brokers, &properties)?;
        Ok(DeadLetterQueue {
            producer,
            topic: config.topic.clone(),
            pipeline: pipeline.into(),
            max_message_bytes: properties.max_message_bytes(),
            on_error: OnError::DeadLetter,
            telemetry: None,
        })
    }

    /// Counts what it is handed, by kind, in the pipeline's telemetry.
    pub fn observed(self, telemetry: &PipelineTelemetry) -> Self {
        DeadLetterQueue {
            telemetry: Some(telemetry.clone()),
            ..self
        }
    }

    /// With `OnError::Stop`, a dead letter halts the pipeline instead.
    pub fn with_on_error(self, on_error: OnError) -> Self {
        DeadLetterQueue { on_error, ..self }
    }

    pub async fn send(&self, rejected: &[Rejected]) -> Result<(), SinkError> {
        self.enqueue(rejected).await?.wait().await
    }

    /// Hands the dead letters to the producer; the acks come later. A dead
    /// letter too large for the queue is cut down to its reason, with where
    /// the record came from, so that it never blocks the pipeline.
    pub async fn enqueue(&self, rejected: &[Rejected]) -> Result<Acks, SinkError> {
        if let (OnError::Stop, Some(first)) = (self.on_error, rejected.first()) {
            return Err(SinkError::Halted {
                plugin: first.plugin.clone(),
                position: position_text(&first.record.position),
                reason: first.failure.to_string(),
            });
        }
        if let Some(telemetry) = &self.telemetry {
            telemetry.dead_lettered(rejected);
        }
        let mut keys = MessageEncoder::new(ValueFormat::Debezium, &self.pipeline);
        let mut messages = Outgoing::with_capacity(rejected.len());
        for r in rejected {
            let kind = r.failure.kind.as_str();
            let position = position_text(&r.record.position);
            tracing::debug!(pipeline = %self.pipeline, plugin = %r.plugin, position = %position, key = %r.record.key_text(),
                "dead letter: {}", r.failure);
            let reason = cut(&r.failure.message, MAX_REASON_BYTES);
            let mut fields = vec![
                ("sluice.pipeline", self.pipeline.clone()),
                ("sluice.plugin", r.plugin.clone()),
                ("sluice.plugin-version", r.version.clone()),
                ("sluice.error-kind", kind.to_owned()),
                // A plugin's reason may quote what it was given, a secret included.
                ("sluice.error", crate::redact::redact(reason).into_owned()),
                ("sluice.position", position.clone()),
            ];
            if let Position::Kafka { topic, partition, offset } = &r.record.position {
                fields.extend([
                    ("sluice.source-topic", topic.clone()),
                    ("sluice.source-partition", partition.to_string()),
                    ("sluice.source-offset", offset.to_string()),
                ]);
            }
            let headers = |extra: &[(&str, String)]| {
                fields
                    .iter()
                    .chain(extra)
                    .fold(OwnedHeaders::new_with_capacity(fields.len() + extra.len()), |h, (k, v)| {
                        h.insert(KafkaHeader {
                            key: k,
                            value: Some(v.as_bytes()),
                        })
                    })
            };
            let key = messages.write(|out| keys.write_key(&r.record, out));
            let payload = messages.write(|out| {
                serde_json::to_writer(out, &record_to_json(&r.record)).expect("writing to a Vec cannot fail");
                true
            });
            let size = wire_size(key.as_ref(), payload.as_ref(), &headers(&[]));
            if size <= self.max_message_bytes {
                messages.push(&self.topic, key, payload, headers(&[]));
                continue;
            }
            // Too large for the queue: the reason and where the record came
            // from, and its key where that alone is small.
            let key_len = key.as_ref().map_or(0, Written::len);
            let key = key.filter(|_| key_len <= self.max_message_bytes / 4);
            let summary = json!({
                "truncated": true,
                "reason": reason,
                "record_bytes": size,
                "max_message_bytes": self.max_message_bytes,
                "position": position,
            });
            let payload = messages.write(|out| {
                serde_json::to_writer(out, &summary).expect("writing to a Vec cannot fail");
                true
            });
            let note = [(
                "sluice.truncated",
                format!("{size} bytes over message.max.bytes {}", self.max_message_bytes),
            )];
            messages.push(&self.topic, key, payload, headers(&note));
        }
        match enqueue_all(&self.producer, &mut messages).await? {
            (acks, refused) if refused.is_empty() => Ok(acks),
            // Each dead letter is cut down below the limit: only a producer
            // whose limit is smaller than its own summary can refuse one.
            (_, _) => Err(SinkError::Delivery {
                topic: self.topic.clone(),
                source: rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
            }),
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
